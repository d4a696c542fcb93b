//! The node's Prometheus metrics (`prometheus-client`: an explicit registry per node, so a
//! host's own metrics and recorder are never touched). Counters and histograms are
//! updated as work happens; the gauges of jobs, requests and endpoints are read from the
//! store and the outage tracker when scraped. Labels are route templates, endpoint names
//! and stable codes: never a CID, a key or a URL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use super::check::CycleReport;
use super::delivery::DeliveryReport;
use super::source::{ChainSource, Head, Reads, SourceError, SourceFuture};
use crate::chain::evm::{Deal, DealRead};
use crate::chain::health::HealthReport;
use crate::error::ErrorCode;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Outcome {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChainCall {
    endpoint: &'static str,
    method: &'static str,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabel {
    endpoint: &'static str,
    method: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct JobLabels {
    state: String,
    status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UpLabel {
    endpoint: String,
}

/// An HTTP request's labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    /// The route template (`/jobs/{id}`), or `unmatched`.
    pub route: String,
    /// The method.
    pub method: String,
    /// The status code.
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: String,
}

fn seconds_histogram() -> Histogram {
    // 1 ms to ~65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

/// The metrics of one node.
pub struct Metrics {
    registry: Registry,
    checks: Family<Outcome, Counter>,
    sweeps: Counter,
    sweep_seconds: Histogram,
    chain_calls: Family<ChainCall, Counter>,
    chain_seconds: Family<EndpointLabel, Histogram>,
    deliveries: Family<Outcome, Counter>,
    delivery_seconds: Histogram,
    requests_created: Counter,
    http: Family<HttpLabels, Counter>,
    http_seconds: Family<RouteLabel, Histogram>,
    jobs: Family<JobLabels, Gauge>,
    requests: Family<StateLabel, Gauge>,
    endpoint_up: Family<UpLabel, Gauge>,
    head_regressions: Family<UpLabel, Counter>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A registry with every metric of the node, prefixed `raas_`.
    pub fn new() -> Self {
        let mut r = Registry::with_prefix("raas");
        let m = Metrics {
            checks: Family::default(),
            sweeps: Counter::default(),
            sweep_seconds: seconds_histogram(),
            chain_calls: Family::default(),
            chain_seconds: Family::new_with_constructor(seconds_histogram),
            deliveries: Family::default(),
            delivery_seconds: seconds_histogram(),
            requests_created: Counter::default(),
            http: Family::default(),
            http_seconds: Family::new_with_constructor(seconds_histogram),
            jobs: Family::default(),
            requests: Family::default(),
            endpoint_up: Family::default(),
            head_regressions: Family::default(),
            registry: Registry::default(),
        };
        r.register(
            "checks",
            "Job checks by outcome (satisfied, short, retired, error, deferred, lease_lost)",
            m.checks.clone(),
        );
        r.register("sweeps", "Sweeps of due jobs", m.sweeps.clone());
        r.register(
            "sweep_seconds",
            "Time of a sweep of due jobs",
            m.sweep_seconds.clone(),
        );
        r.register(
            "chain_requests",
            "Chain reads by endpoint, method and outcome (ok or an error code)",
            m.chain_calls.clone(),
        );
        r.register(
            "chain_request_seconds",
            "Time of a chain read (a batch of calls)",
            m.chain_seconds.clone(),
        );
        r.register(
            "deliveries",
            "Deal-request deliveries by outcome (delivered, failed, dead, lease_lost)",
            m.deliveries.clone(),
        );
        r.register(
            "delivery_seconds",
            "Time of one delivery attempt to the hook",
            m.delivery_seconds.clone(),
        );
        r.register(
            "deal_requests_created",
            "Deal requests made for shortfalls",
            m.requests_created.clone(),
        );
        r.register(
            "http_requests",
            "HTTP API requests by route, method and status",
            m.http.clone(),
        );
        r.register(
            "http_request_seconds",
            "Time to answer an HTTP API request",
            m.http_seconds.clone(),
        );
        r.register(
            "jobs",
            "Jobs by state and last check status, when scraped",
            m.jobs.clone(),
        );
        r.register(
            "deal_requests",
            "Deal requests by state, when scraped",
            m.requests.clone(),
        );
        r.register(
            "endpoint_up",
            "1 when this node sees the endpoint answering, 0 when down",
            m.endpoint_up.clone(),
        );
        r.register(
            "head_regressions",
            "Times an endpoint's head went back (a reorg, or a lagging server)",
            m.head_regressions.clone(),
        );
        Metrics { registry: r, ..m }
    }

    pub(super) fn sweep(&self, r: &CycleReport, elapsed: Duration) {
        self.sweeps.inc();
        self.sweep_seconds.observe(elapsed.as_secs_f64());
        for (outcome, n) in [
            ("satisfied", r.satisfied),
            ("short", r.short),
            ("retired", r.retired),
            ("error", r.failed),
            ("deferred", r.deferred),
            ("lease_lost", r.lease_lost),
        ] {
            if n > 0 {
                self.checks
                    .get_or_create(&Outcome {
                        outcome: outcome.into(),
                    })
                    .inc_by(n);
            }
        }
        self.requests_created.inc_by(r.requests_created);
    }

    pub(super) fn delivery(&self, r: &DeliveryReport, elapsed: Duration) {
        self.delivery_seconds.observe(elapsed.as_secs_f64());
        for (outcome, n) in [
            ("delivered", r.delivered),
            ("failed", r.failed.saturating_sub(r.dead)),
            ("dead", r.dead),
            ("lease_lost", r.lease_lost),
        ] {
            if n > 0 {
                self.deliveries
                    .get_or_create(&Outcome {
                        outcome: outcome.into(),
                    })
                    .inc_by(n);
            }
        }
    }

    /// Counts one HTTP request.
    pub fn http_request(&self, labels: HttpLabels, elapsed: Duration) {
        self.http_seconds
            .get_or_create(&RouteLabel {
                route: labels.route.clone(),
            })
            .observe(elapsed.as_secs_f64());
        self.http.get_or_create(&labels).inc();
    }

    fn chain_call<T>(
        &self,
        endpoint: &'static str,
        method: &'static str,
        started: Instant,
        r: &Result<T, SourceError>,
    ) {
        self.chain_seconds
            .get_or_create(&EndpointLabel { endpoint, method })
            .observe(started.elapsed().as_secs_f64());
        let outcome = match r {
            Ok(_) => "ok".to_string(),
            Err(e) => e.code().to_string(),
        };
        self.chain_calls
            .get_or_create(&ChainCall {
                endpoint,
                method,
                outcome,
            })
            .inc();
    }

    pub(super) fn head_regression(&self, endpoint: super::outage::Endpoint) {
        self.head_regressions
            .get_or_create(&UpLabel {
                endpoint: endpoint.name().to_string(),
            })
            .inc();
    }

    pub(super) fn set_store(
        &self,
        jobs: &[(String, String, i64)],
        requests: &[(String, i64)],
        endpoints: &[(String, bool)],
    ) {
        self.jobs.clear();
        for (state, status, n) in jobs {
            self.jobs
                .get_or_create(&JobLabels {
                    state: state.clone(),
                    status: status.clone(),
                })
                .set(*n);
        }
        self.requests.clear();
        for (state, n) in requests {
            self.requests
                .get_or_create(&StateLabel {
                    state: state.clone(),
                })
                .set(*n);
        }
        self.set_endpoints(endpoints);
    }

    /// The endpoint gauges alone (the store's gauges keep their values while it is out).
    pub(super) fn set_endpoints(&self, endpoints: &[(String, bool)]) {
        for (endpoint, up) in endpoints {
            self.endpoint_up
                .get_or_create(&UpLabel {
                    endpoint: endpoint.clone(),
                })
                .set(i64::from(*up));
        }
    }

    /// The metrics in the OpenMetrics text format Prometheus scrapes.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}

/// A [`ChainSource`] that counts and times every read of the one it wraps.
pub(super) struct Metered {
    pub(super) inner: Arc<dyn ChainSource>,
    pub(super) metrics: Arc<Metrics>,
}

impl ChainSource for Metered {
    fn head(&self) -> SourceFuture<'_, Result<Head, SourceError>> {
        Box::pin(async move {
            let t = Instant::now();
            let r = self.inner.head().await;
            let endpoint = if self.inner.has_lotus() {
                "lotus"
            } else {
                "dealStatus"
            };
            self.metrics.chain_call(endpoint, "head", t, &r);
            r
        })
    }

    fn deal_sets<'a>(
        &'a self,
        reads: &'a [(String, DealRead)],
        head: &'a Head,
    ) -> SourceFuture<'a, Reads<Vec<Deal>>> {
        Box::pin(async move {
            let t = Instant::now();
            let r = self.inner.deal_sets(reads, head).await;
            self.metrics.chain_call("dealStatus", "deals", t, &r);
            r
        })
    }

    fn deal_health<'a>(
        &'a self,
        head: &'a Head,
        deals: &'a [(u64, Option<i64>)],
    ) -> SourceFuture<'a, Reads<HealthReport>> {
        Box::pin(async move {
            let t = Instant::now();
            let r = self.inner.deal_health(head, deals).await;
            if !deals.is_empty() {
                self.metrics.chain_call("lotus", "dealHealth", t, &r);
            }
            r
        })
    }

    fn has_lotus(&self) -> bool {
        self.inner.has_lotus()
    }
}
