//! Shared endpoints (the DealStatus RPC, Lotus) as the node sees them. When one fails as a
//! whole, the sweep pauses and backs off as a whole: the jobs it was checking are put back
//! as they were, and none of them counts the outage as a failure of its own.

use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

use super::backoff::backoff;

/// A shared endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum Endpoint {
    /// The FEVM JSON-RPC endpoint of the DealStatus contract.
    DealStatus,
    /// The Lotus JSON-RPC endpoint.
    Lotus,
    /// The node's store (down while it is unreachable or its disk is full).
    Store,
}

impl Endpoint {
    /// Its name in JSON, metrics labels and `/readyz` (`dealStatus`, `lotus`, `store`).
    pub fn name(self) -> &'static str {
        match self {
            Endpoint::DealStatus => "dealStatus",
            Endpoint::Lotus => "lotus",
            Endpoint::Store => "store",
        }
    }
}

/// How an endpoint is doing, as `stats()` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct EndpointStatus {
    /// Which.
    pub endpoint: Endpoint,
    /// Whether its last use succeeded.
    pub up: bool,
    /// Down since (ms since the Unix epoch).
    pub down_since_ms: Option<i64>,
    /// Failed sweeps in a row.
    pub failures: u32,
    /// The last error (code: message).
    pub last_error: Option<String>,
    /// No sweep before this time (ms since the Unix epoch), while down.
    pub retry_at_ms: Option<i64>,
    /// The last head read from it (epoch or block; none for the store).
    pub head: Option<i64>,
    /// Times its head went back (a reorg, or a lagging server behind a load balancer).
    pub head_regressions: u64,
}

/// The endpoints of one node.
#[derive(Debug)]
pub(crate) struct Outages {
    state: Mutex<Vec<EndpointStatus>>,
    base: Duration,
    max: Duration,
}

impl Outages {
    pub(crate) fn new(lotus: bool, base: Duration, max: Duration) -> Self {
        let mut v = vec![EndpointStatus::up(Endpoint::DealStatus)];
        if lotus {
            v.push(EndpointStatus::up(Endpoint::Lotus));
        }
        v.push(EndpointStatus::up(Endpoint::Store));
        Outages {
            state: Mutex::new(v),
            base,
            max,
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Vec<EndpointStatus>) -> T) -> T {
        match self.state.lock() {
            Ok(mut g) => f(&mut g),
            Err(p) => f(&mut p.into_inner()),
        }
    }

    /// Every endpoint's status.
    pub(crate) fn snapshot(&self) -> Vec<EndpointStatus> {
        self.with(|v| v.clone())
    }

    /// Whether `endpoint` is down now.
    pub(crate) fn is_down(&self, endpoint: Endpoint) -> bool {
        self.with(|v| v.iter().any(|e| e.endpoint == endpoint && !e.up))
    }

    /// The earliest time a sweep may run (`None`: now).
    pub(crate) fn paused_until(&self, now_ms: i64) -> Option<i64> {
        self.with(|v| {
            v.iter()
                .filter_map(|e| e.retry_at_ms)
                .filter(|&t| t > now_ms)
                .max()
        })
    }

    /// Records a failure of `endpoint`; returns the status when it just went down.
    pub(crate) fn down(
        &self,
        endpoint: Endpoint,
        error: String,
        now_ms: i64,
        jitter: f64,
    ) -> Option<EndpointStatus> {
        let (base, max) = (self.base, self.max);
        self.with(|v| {
            let e = v.iter_mut().find(|e| e.endpoint == endpoint)?;
            let was_up = e.up;
            e.up = false;
            e.failures = e.failures.saturating_add(1);
            e.down_since_ms.get_or_insert(now_ms);
            e.last_error = Some(error);
            let wait = backoff(e.failures, base, max, jitter);
            e.retry_at_ms = Some(now_ms.saturating_add(super::clock::ms(wait)));
            was_up.then(|| e.clone())
        })
    }

    /// Records a success of `endpoint`; returns the status when it just came back.
    pub(crate) fn up(&self, endpoint: Endpoint) -> Option<EndpointStatus> {
        self.with(|v| {
            let e = v.iter_mut().find(|e| e.endpoint == endpoint)?;
            if e.up {
                return None;
            }
            let back = EndpointStatus {
                up: true,
                ..e.clone()
            };
            *e = EndpointStatus {
                head: e.head,
                head_regressions: e.head_regressions,
                ..EndpointStatus::up(endpoint)
            };
            Some(back)
        })
    }

    /// Records the head read from `endpoint`; returns the previous one when this one is
    /// lower (the head went back).
    pub(crate) fn note_head(&self, endpoint: Endpoint, head: i64) -> Option<i64> {
        self.with(|v| {
            let e = v.iter_mut().find(|e| e.endpoint == endpoint)?;
            let before = e.head.replace(head);
            match before {
                Some(b) if head < b => {
                    e.head_regressions = e.head_regressions.saturating_add(1);
                    Some(b)
                }
                _ => None,
            }
        })
    }
}

impl EndpointStatus {
    fn up(endpoint: Endpoint) -> Self {
        EndpointStatus {
            endpoint,
            up: true,
            down_since_ms: None,
            failures: 0,
            last_error: None,
            retry_at_ms: None,
            head: None,
            head_regressions: 0,
        }
    }
}
