//! `--metrics ADDR`: the daemon and its tenants in Prometheus' text format
//! (OpenMetrics), through prometheus-client. Tenants' values are read at
//! each scrape from what the daemon knows ([`Daemon::list`]), so nothing is
//! counted twice and a removed tenant's series go with it.

use std::fmt;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::daemon::{Daemon, Phase, TenantStatus};

/// The content type of OpenMetrics text, which Prometheus reads.
const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The registry, and the counters the control plane adds to.
pub struct Metrics {
    registry: Registry,
    requests: Family<Vec<(String, String)>, Counter>,
}

/// Reads the daemon's tenants at each scrape.
struct Tenants(Daemon);

impl fmt::Debug for Tenants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tenants")
    }
}

/// One per-tenant series: its name, help, type and how to read it.
struct Series {
    name: &'static str,
    help: &'static str,
    kind: MetricType,
    value: fn(&TenantStatus) -> f64,
}

const SERIES: &[Series] = &[
    Series {
        name: "oasis_tenant_cpu_seconds",
        help: "Time guest code ran",
        kind: MetricType::Counter,
        value: |t| t.usage.cpu_ns as f64 / 1e9,
    },
    Series {
        name: "oasis_tenant_memory_bytes",
        help: "Linear memory of the running instance",
        kind: MetricType::Gauge,
        value: |t| t.usage.memory_bytes as f64,
    },
    Series {
        name: "oasis_tenant_calls",
        help: "Calls into the guest",
        kind: MetricType::Counter,
        value: |t| t.usage.calls as f64,
    },
    Series {
        name: "oasis_tenant_traps",
        help: "Instances that trapped",
        kind: MetricType::Counter,
        value: |t| t.ends.get("trap").copied().unwrap_or(0) as f64,
    },
    Series {
        name: "oasis_tenant_restarts",
        help: "Restarts by the tenant's policy",
        kind: MetricType::Counter,
        value: |t| t.restarts as f64,
    },
    Series {
        name: "oasis_tenant_swaps",
        help: "Deploys that replaced a running instance",
        kind: MetricType::Counter,
        value: |t| t.swaps as f64,
    },
    Series {
        name: "oasis_tenant_net_received_bytes",
        help: "Bytes received from the network",
        kind: MetricType::Counter,
        value: |t| t.usage.net_bytes_in as f64,
    },
    Series {
        name: "oasis_tenant_net_sent_bytes",
        help: "Bytes sent on the network",
        kind: MetricType::Counter,
        value: |t| t.usage.net_bytes_out as f64,
    },
    Series {
        name: "oasis_tenant_output_bytes",
        help: "Bytes written to stdout, stderr and log streams",
        kind: MetricType::Counter,
        value: |t| t.usage.bytes_out as f64,
    },
    Series {
        name: "oasis_tenant_open_sockets",
        help: "Sockets open (listeners and connections)",
        kind: MetricType::Gauge,
        value: |t| t.usage.open_sockets as f64,
    },
    Series {
        name: "oasis_tenant_connections",
        help: "Connections accepted",
        kind: MetricType::Counter,
        value: |t| t.usage.accepted as f64,
    },
    Series {
        name: "oasis_tenant_revision",
        help: "The revision of the tenant's deployment",
        kind: MetricType::Gauge,
        value: |t| t.revision as f64,
    },
];

fn phase_name(phase: &Phase) -> &'static str {
    match phase {
        Phase::Running => "running",
        Phase::Exited => "exited",
        Phase::Failed => "failed",
        Phase::Restarting => "restarting",
        Phase::Stopped => "stopped",
    }
}

impl Collector for Tenants {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> fmt::Result {
        let tenants = self.0.list();
        for series in SERIES {
            let mut family = encoder.encode_descriptor(series.name, series.help, None, series.kind)?;
            for tenant in &tenants {
                let labels = [("tenant", tenant.name.as_str())];
                let value = (series.value)(tenant);
                let metric = family.encode_family(&labels)?;
                match series.kind {
                    MetricType::Counter => ConstCounter::new(value).encode(metric)?,
                    _ => ConstGauge::new(value).encode(metric)?,
                }
            }
        }
        let mut stops = encoder.encode_descriptor(
            "oasis_tenant_ends",
            "Instances that ended, by how",
            None,
            MetricType::Counter,
        )?;
        for tenant in &tenants {
            for (kind, n) in &tenant.ends {
                let labels = [("tenant", tenant.name.as_str()), ("reason", kind)];
                ConstCounter::new(*n).encode(stops.encode_family(&labels)?)?;
            }
        }
        let mut by_phase = encoder.encode_descriptor("oasis_tenants", "Tenants by phase", None, MetricType::Gauge)?;
        for phase in [Phase::Running, Phase::Exited, Phase::Failed, Phase::Restarting, Phase::Stopped] {
            let n = tenants.iter().filter(|t| t.phase == phase).count() as i64;
            ConstGauge::new(n).encode(by_phase.encode_family(&[("phase", phase_name(&phase))])?)?;
        }
        let counts = self.0.counts();
        let deploys = counts.deploys.load(std::sync::atomic::Ordering::Relaxed);
        let c = ConstCounter::new(deploys);
        c.encode(encoder.encode_descriptor("oasis_deploys", "Deploys carried out", None, c.metric_type())?)?;
        Ok(())
    }
}

impl Metrics {
    /// The metrics of `daemon`.
    pub fn new(daemon: Daemon) -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<Vec<(String, String)>, Counter>::default();
        registry.register("oasis_control_requests", "Control API requests, by status", requests.clone());
        registry.register_collector(Box::new(Tenants(daemon)));
        Metrics { registry, requests }
    }

    /// Counts a control request answered with `status`.
    pub fn request(&self, status: u16) {
        self.requests.get_or_create(&vec![("status".to_string(), status.to_string())]).inc();
    }

    /// The metrics in text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("writing to a String cannot fail");
        text
    }

    /// Answers a scrape (`GET /metrics`).
    pub fn respond<B>(&self, request: &Request<B>) -> Response<Full<Bytes>> {
        let (status, content_type, body) = if request.uri().path() != "/metrics" {
            (StatusCode::NOT_FOUND, "text/plain", "metrics are at /metrics\n".to_string())
        } else if request.method() != hyper::Method::GET {
            (StatusCode::METHOD_NOT_ALLOWED, "text/plain", "use GET\n".to_string())
        } else {
            (StatusCode::OK, CONTENT_TYPE, self.render())
        };
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        response
    }
}
