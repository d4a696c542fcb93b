//! `GET /events`: Server-Sent Events of the caller's jobs (verdict changes and deal-request
//! state changes), read from the store's event log, so a client that reconnects with
//! `Last-Event-ID` gets every event it missed (as long as the log keeps them), on
//! whichever node it reconnects to.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Extension, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::stream::Stream;
use serde::Deserialize;
use utoipa::IntoParams;

use super::error::{ApiError, ErrorBody};
use super::routes::query_error;
use super::Service;
use crate::engine::Caller;

/// How often the log is read while nothing wakes the stream (events of other nodes).
const POLL: Duration = Duration::from_millis(500);
/// Events per read of the log.
const BATCH: u32 = 500;

/// Where the stream starts.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(super) struct EventsQuery {
    /// Start after this event number (as `Last-Event-ID` does; `0`: the whole log kept).
    /// Without either, the stream starts with the next event.
    #[param(minimum = 0)]
    after: Option<i64>,
}

/// The caller's jobs' events as they happen (`text/event-stream`): `event: verdict` or
/// `event: request`, `id:` the event number, `data:` the event as JSON.
#[utoipa::path(
    get,
    path = "/events",
    tag = "jobs",
    params(
        EventsQuery,
        ("Last-Event-ID" = Option<i64>, Header, minimum = 0, description = "Resume after this event"),
    ),
    responses(
        (status = 200, description = "The stream: each event's `data` is an EventRecord", content_type = "text/event-stream", body = super::routes::SseFrame),
        (status = 400, description = "A parameter is not valid", body = ErrorBody),
    )
)]
pub(super) async fn events(
    State(svc): State<Arc<Service>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    q: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let Query(q) = q.map_err(query_error)?;
    let last = match headers.get("last-event-id") {
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    ApiError::invalid(
                        "INVALID_ARGUMENT",
                        "Last-Event-ID",
                        "Last-Event-ID must be an event number",
                    )
                })?,
        ),
        None => None,
    };
    if q.after.is_some_and(|a| a < 0) {
        return Err(ApiError::invalid(
            "INVALID_ARGUMENT",
            "after",
            "after must not be negative",
        ));
    }
    let start = match last.or(q.after) {
        Some(n) => n,
        None => svc.node.last_event().await?,
    };
    let tenant = caller.tenant().map(str::to_string);
    let node = svc.node.clone();
    let mut wake = node.subscribe();
    let mut closing = svc.closing.clone();
    let stream = async_stream(move |tx| async move {
        let mut cursor = start;
        loop {
            match node.events_after(cursor, tenant.as_deref(), BATCH).await {
                Ok(batch) => {
                    let full = batch.len() == BATCH as usize;
                    for e in batch {
                        cursor = e.seq;
                        let ev = Event::default()
                            .id(e.seq.to_string())
                            .event(e.kind.clone())
                            .json_data(&e)
                            .unwrap_or_else(|_| Event::default().comment("unencodable event"));
                        if tx.send(ev).await.is_err() {
                            return;
                        }
                    }
                    if full {
                        continue;
                    }
                }
                Err(e) => {
                    tracing::warn!("event stream: reading the log failed: {e}");
                }
            }
            // This node's own verdicts wake the stream at once; the others' are polled.
            let closed = async {
                match closing.as_mut() {
                    Some(c) => {
                        let _ = c.wait_for(|v| *v).await;
                    }
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = tokio::time::timeout(POLL, wake.recv()) => {}
                _ = closed => return,
            }
            if tx.is_closed() {
                return;
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// A stream fed by a task through a small channel (bounded: a slow client holds at most
/// this many events in memory; the task waits for it).
fn async_stream<F, Fut>(f: F) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Event>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(f(tx));
    futures::stream::unfold(
        rx,
        |mut rx| async move { rx.recv().await.map(|e| (Ok(e), rx)) },
    )
}
