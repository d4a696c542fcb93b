//! The node as an HTTP service: one axum router built from a [`RaasNode`], served by
//! `raas serve`, by [`serve`] (which `node.serve()` in Node calls), or mounted in a host's
//! own server. The OpenAPI 3.1 document at `/openapi.json` is generated from the handlers
//! (`utoipa`), so it cannot drift from them.
//!
//! Native only, behind the `http` feature: the browser package never carries it.

mod auth;
mod data;
mod error;
mod events;
mod gateway;
mod kit;
mod routes;
mod upload;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use tokio::sync::oneshot;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use axum::Router;
pub use error::{ApiError, ErrorBody, ErrorDetail};
pub use kit::{KitDealInfo, KitDealStatus, KitRegistered};
pub use routes::{Alive, CidStatusView, History, JobPage, Ready, Registrations, Requests, Retried};

use crate::engine::{EngineError, HttpSettings, RaasNode};

/// What the handlers share.
pub(crate) struct Service {
    node: Arc<RaasNode>,
    settings: HttpSettings,
    limiters: auth::Limiters,
    /// True once the server closes: long-lived answers (`GET /events`) end then, so a
    /// graceful shutdown does not wait for them.
    closing: Option<tokio::sync::watch::Receiver<bool>>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "raas",
        description = "Replication, renewal and repair of Filecoin storage deals: register jobs on a CID, watch them, see their deal requests."
    ),
    tags(
        (name = "jobs", description = "Jobs on CIDs"),
        (name = "requests", description = "Deal requests (admin)"),
        (name = "status", description = "A CID's deals and jobs"),
        (name = "data", description = "A file's bytes, verified against its CID"),
        (name = "kit", description = "The reference starter kit's routes, for its frontend and scripts"),
        (name = "ops", description = "Liveness, readiness, the API document"),
    ),
    modifiers(&KeyedRoutes, &Links)
)]
struct ApiDoc;

/// OpenAPI links from a registration to what can be done with the job it returns, so
/// stateful clients (Schemathesis' stateful phase among them) can follow them.
struct Links;

impl utoipa::Modify for Links {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::link::LinkBuilder;
        use utoipa::openapi::RefOr;
        let Some(post) = doc
            .paths
            .paths
            .get_mut("/register_jobs")
            .and_then(|p| p.post.as_mut())
        else {
            return;
        };
        for status in ["200", "201"] {
            if let Some(RefOr::T(r)) = post.responses.responses.get_mut(status) {
                for (name, op) in [
                    ("GetJob", "get_job"),
                    ("JobHistory", "job_history"),
                    ("JobRequests", "job_requests"),
                    ("CancelJob", "cancel_job"),
                ] {
                    r.links.insert(
                        name.into(),
                        RefOr::T(
                            LinkBuilder::new()
                                .operation_id(op)
                                .parameter("id", "$response.body#/registrations/0/job/jobId")
                                .build(),
                        ),
                    );
                }
            }
        }
    }
}

/// Documents the API key on every route but the open ones, with the answers every such
/// route can give: 401 (no key, or not valid), 429 (over the key's rate).
struct KeyedRoutes;

impl utoipa::Modify for KeyedRoutes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder};
        use utoipa::openapi::security::{SecurityRequirement, SecurityScheme};
        use utoipa::openapi::{RefOr, ResponseBuilder};
        let comps = doc.components.get_or_insert_with(Default::default);
        comps.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        comps.add_security_scheme(
            "apiKey",
            SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::new("X-API-Key"))),
        );
        let error = |desc: &str| {
            RefOr::T(
                ResponseBuilder::new()
                    .description(desc)
                    .content(
                        "application/json",
                        utoipa::openapi::ContentBuilder::new()
                            .schema(Some(utoipa::openapi::Ref::from_schema_name("ErrorBody")))
                            .build(),
                    )
                    .build(),
            )
        };
        for (path, item) in doc.paths.paths.iter_mut() {
            if auth::OPEN_ROUTES.contains(&path.as_str()) {
                continue;
            }
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.delete,
                &mut item.put,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                op.security = Some(vec![
                    SecurityRequirement::new("bearer", Vec::<String>::new()),
                    SecurityRequirement::new("apiKey", Vec::<String>::new()),
                ]);
                let r = &mut op.responses.responses;
                r.entry("401".into()).or_insert_with(|| {
                    error("No API key, or not a valid one (once any key exists)")
                });
                r.entry("429".into())
                    .or_insert_with(|| error("Over the key's rate: see Retry-After"));
            }
        }
    }
}

/// Routes without the request time limit.
const LONG_ROUTES: [&str; 2] = ["/upload", "/api/uploadFile"];

fn api(
    node: Arc<RaasNode>,
    closing: Option<tokio::sync::watch::Receiver<bool>>,
) -> (Router, utoipa::openapi::OpenApi) {
    let settings = node.settings().http.clone();
    let limit = settings.body_limit;
    let svc = Arc::new(Service {
        node,
        settings,
        limiters: auth::Limiters::default(),
        closing,
    });
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(routes::register_jobs))
        .routes(routes!(routes::list_jobs))
        .routes(routes!(routes::get_job, routes::cancel_job))
        .routes(routes!(routes::job_history))
        .routes(routes!(routes::job_requests))
        .routes(routes!(routes::list_requests))
        .routes(routes!(routes::retry_request))
        .routes(routes!(routes::cid_status))
        .routes(routes!(data::retrieve))
        .routes(routes!(gateway::ipfs))
        .routes(routes!(upload::upload))
        .routes(routes!(upload::list_pins))
        .routes(routes!(upload::pin, upload::unpin))
        .routes(routes!(events::events))
        .routes(routes!(routes::metrics))
        .routes(routes!(kit::register_job))
        .routes(routes!(kit::deal_status))
        .routes({
            // A file upload is bounded by the node's upload limit, not the API's body limit.
            let (schemas, paths, method) = routes!(kit::upload_file);
            let max = usize::try_from(svc.node.settings().max_upload_bytes).unwrap_or(usize::MAX);
            (schemas, paths, method.layer(DefaultBodyLimit::max(max)))
        })
        .routes(routes!(routes::healthz))
        .routes(routes!(routes::readyz))
        .with_state(svc.clone())
        .split_for_parts();
    let router =
        router
            .layer(DefaultBodyLimit::max(limit))
            .layer(axum::middleware::from_fn_with_state(
                svc,
                auth::authenticate,
            ));
    (router, doc)
}

/// The CORS layer of an allow-list (none when the list is empty: no cross-origin calls).
fn cors(origins: &[String]) -> Option<tower_http::cors::CorsLayer> {
    use axum::http::{header, HeaderName, HeaderValue, Method};
    use tower_http::cors::{AllowOrigin, CorsLayer};
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect::<Vec<_>>(),
        )
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("x-api-key"),
                HeaderName::from_static("last-event-id"),
            ])
            .expose_headers([header::RETRY_AFTER])
            .max_age(std::time::Duration::from_secs(600)),
    )
}

/// The API document (OpenAPI 3.1), as served at `/openapi.json`.
pub fn openapi(node: Arc<RaasNode>) -> utoipa::openapi::OpenApi {
    api(node, None).1
}

/// The whole API as one router, with `/openapi.json`, the body limit, the request time
/// limit and JSON errors for unknown routes and methods.
pub fn router(node: Arc<RaasNode>) -> Router {
    // Mounted in a host's server, which owns its shutdown: streams end with their clients.
    router_closing(node, None)
}

fn router_closing(
    node: Arc<RaasNode>,
    closing: Option<tokio::sync::watch::Receiver<bool>>,
) -> Router {
    let timeout = node.settings().http.request_timeout;
    let cors = cors(&node.settings().http.cors_origins);
    let counted = node.clone();
    let (router, doc) = api(node, closing);
    let doc = Arc::new(doc);
    let router = router
        .route(
            "/openapi.json",
            axum::routing::get(move || {
                let doc = doc.clone();
                async move { axum::Json(doc.as_ref().clone()) }
            }),
        )
        .fallback(|| async { ApiError::not_found("no such route") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "METHOD_NOT_ALLOWED",
                "this route does not take that method",
            )
        })
        .layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| async move {
                // Uploads and pins take as long as the file does; an upload ends when its
                // body stalls for this long instead.
                let path = req.uri().path();
                if LONG_ROUTES.contains(&path) || path.starts_with("/pins/") {
                    return next.run(req).await;
                }
                match tokio::time::timeout(timeout, next.run(req)).await {
                    Ok(r) => r,
                    Err(_) => axum::response::IntoResponse::into_response(ApiError::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "REQUEST_TIMEOUT",
                        format!("no answer within {} s", timeout.as_secs()),
                    )),
                }
            },
        ));
    // Every answer counted, by route template (never the raw path: it holds ids and CIDs).
    let router = router.layer(axum::middleware::from_fn(
        move |req: axum::extract::Request, next: axum::middleware::Next| {
            let node = counted.clone();
            async move {
                let started = std::time::Instant::now();
                let route = req
                    .extensions()
                    .get::<axum::extract::MatchedPath>()
                    .map_or("unmatched", |p| p.as_str())
                    .to_string();
                let method = req.method().as_str().to_string();
                let res = next.run(req).await;
                node.metrics().http_request(
                    crate::engine::HttpLabels {
                        route,
                        method,
                        status: res.status().as_u16(),
                    },
                    started.elapsed(),
                );
                res
            }
        },
    ));
    // CORS outermost, over the fallbacks too: a browser's preflight is answered before
    // any key is asked for.
    match cors {
        Some(c) => router.layer(c),
        None => router,
    }
}

/// An answer of the router to one request handed over by a host's own server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: Vec<u8>,
}

/// Hands one request to the router and returns its whole answer: how `node.handler()`
/// serves the API inside an Express, Fastify or `node:http` app. `uri` is the path and
/// query below the mount point (`/jobs?limit=5`).
pub async fn respond(
    router: &Router,
    method: &str,
    uri: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
) -> Result<Reply, EngineError> {
    use tower::ServiceExt;
    let bad = |field: &'static str, reason: String| EngineError::InvalidArgument { field, reason };
    let mut req = axum::http::Request::builder()
        .method(
            axum::http::Method::from_bytes(method.as_bytes())
                .map_err(|e| bad("method", e.to_string()))?,
        )
        .uri(uri);
    for (k, v) in headers {
        req = req.header(k.as_str(), v.as_str());
    }
    let req = req
        .body(axum::body::Body::from(body))
        .map_err(|e| bad("request", e.to_string()))?;
    let res = match router.clone().oneshot(req).await {
        Ok(r) => r,
        Err(never) => match never {},
    };
    // A stream has no whole answer: `GET /events` needs a server of ours.
    if res
        .headers()
        .get(axum::http::header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"text/event-stream"))
    {
        let body = serde_json::to_vec(&serde_json::json!({"error": {
            "code": "STREAM_NOT_SUPPORTED",
            "message": "GET /events streams: serve it with node.serve() or raas serve, not through node.handler()",
        }}))
        .unwrap_or_default();
        return Ok(Reply {
            status: 501,
            headers: vec![("content-type".into(), "application/json".into())],
            body,
        });
    }
    let status = res.status().as_u16();
    let headers = res
        .headers()
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_string(), v.to_str().ok()?.to_string())))
        .collect();
    // The router's answers are bounded (pages of at most 1 000 jobs, the API document).
    let body = axum::body::to_bytes(res.into_body(), 64 << 20)
        .await
        .map_err(|e| EngineError::Internal {
            reason: format!("reading the answer: {e}"),
        })?
        .to_vec();
    Ok(Reply {
        status,
        headers,
        body,
    })
}

/// A running server.
#[derive(Debug)]
pub struct Server {
    /// Where it listens (`http://127.0.0.1:PORT`).
    pub url: String,
    /// The bound address.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), std::io::Error>>>,
}

impl Server {
    /// Stops accepting, lets requests in flight finish, then returns.
    pub async fn close(mut self) -> Result<(), EngineError> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        match self.task.take() {
            Some(t) => match t.await {
                Ok(r) => r.map_err(|e| EngineError::Internal {
                    reason: format!("http server: {e}"),
                }),
                Err(e) => Err(EngineError::Internal {
                    reason: format!("http server task: {e}"),
                }),
            },
            None => Ok(()),
        }
    }
}

/// Where to listen; unset fields come from the node's `http` settings.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Address (default: the node's `http.host`, `127.0.0.1`).
    pub host: Option<String>,
    /// Port (default: the node's `http.port`; 0 picks a free one).
    pub port: Option<u16>,
}

/// Binds and serves the API on the current tokio runtime. Refuses a non-loopback address
/// while no API key exists, unless the node's `http.auth` is `"none"` (an open API must
/// be asked for, and only for development).
pub async fn serve(node: Arc<RaasNode>, opts: ServeOptions) -> Result<Server, EngineError> {
    let http = node.settings().http.clone();
    let host = opts.host.unwrap_or(http.host.clone());
    let port = opts.port.unwrap_or(http.port);
    let ip: std::net::IpAddr = match host.as_str() {
        "localhost" => std::net::IpAddr::from([127, 0, 0, 1]),
        h => h.parse().map_err(|_| EngineError::InvalidArgument {
            field: "host",
            reason: format!("{h:?} is not an IP address"),
        })?,
    };
    // Read now on any address: what the store says about keys is then known should it be
    // out before the first request (the API keeps its rules through an outage).
    let keys = node.keys_required().await?;
    if !ip.is_loopback() && !http.auth_none && !keys {
        return Err(EngineError::InvalidArgument {
            field: "host",
            reason: format!(
                "{ip} is not a loopback address, and the API has no keys: make one (`raas keys create`), or set http.auth to \"none\" to serve it open (development only)"
            ),
        });
    }
    let listener = tokio::net::TcpListener::bind((ip, port))
        .await
        .map_err(|e| EngineError::InvalidArgument {
            field: "port",
            reason: format!("cannot listen on {ip}:{port}: {e}"),
        })?;
    let addr = listener.local_addr().map_err(|e| EngineError::Internal {
        reason: format!("listener address: {e}"),
    })?;
    let (stop, stopped) = oneshot::channel::<()>();
    let (closing, closing_rx) = tokio::sync::watch::channel(false);
    let app = router_closing(node, Some(closing_rx));
    let task = tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
                let _ = closing.send(true);
            })
            .await
    });
    let url = match addr {
        SocketAddr::V6(a) => format!("http://[{}]:{}", a.ip(), a.port()),
        SocketAddr::V4(a) => format!("http://{a}"),
    };
    tracing::info!(%url, "serving the API");
    Ok(Server {
        url,
        addr,
        stop: Some(stop),
        task: Some(task),
    })
}
