//! Prometheus metrics at `GET /metrics` (text exposition format 0.0.4): API requests by service,
//! operation and HTTP status with a latency histogram (recorded by the front), and, read when
//! scraped, the log store's intake, size and WAL syncs, event and SNS deliveries, and tasks by
//! state. Owns only the request counters.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use parking_lot::RwLock;

use crate::app::App;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

/// Which API operation a response answered (set by the front on API responses).
#[derive(Debug, Clone)]
pub struct OperationLabel {
    pub service: &'static str,
    pub operation: String,
}

#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

/// Request counters, keyed by (service, operation); each holds its status counts and latencies.
#[derive(Default)]
pub struct RequestMetrics {
    by_operation: RwLock<HashMap<(&'static str, String), OperationMetrics>>,
}

#[derive(Default)]
struct OperationMetrics {
    by_status: RwLock<HashMap<u16, AtomicU64>>,
    latency: Histogram,
}

/// Operation names come from clients: keep the label set bounded.
const MAX_OPERATIONS: usize = 512;

impl RequestMetrics {
    pub fn record(&self, label: &OperationLabel, status: u16, elapsed: Duration) {
        let key = (label.service, label.operation.clone());
        {
            let map = self.by_operation.read();
            if let Some(m) = map.get(&key) {
                m.observe(status, elapsed);
                return;
            }
        }
        let mut map = self.by_operation.write();
        let key = if map.len() >= MAX_OPERATIONS && !map.contains_key(&key) {
            (label.service, "other".to_owned())
        } else {
            key
        };
        map.entry(key).or_default().observe(status, elapsed);
    }

    fn render(&self, out: &mut String) {
        let map = self.by_operation.read();
        let mut keys: Vec<&(&'static str, String)> = map.keys().collect();
        keys.sort();
        out.push_str("# HELP lookout_requests_total API requests answered, by service, operation and HTTP status.\n");
        out.push_str("# TYPE lookout_requests_total counter\n");
        for k in &keys {
            let m = &map[*k];
            let statuses = m.by_status.read();
            let mut codes: Vec<&u16> = statuses.keys().collect();
            codes.sort();
            for code in codes {
                let _ = writeln!(
                    out,
                    "lookout_requests_total{{service=\"{}\",operation=\"{}\",code=\"{code}\"}} {}",
                    k.0,
                    escape(&k.1),
                    statuses[code].load(Ordering::Relaxed)
                );
            }
        }
        out.push_str(
            "# HELP lookout_request_duration_seconds Time to answer API requests, by service and operation.\n",
        );
        out.push_str("# TYPE lookout_request_duration_seconds histogram\n");
        for k in &keys {
            let h = &map[*k].latency;
            let labels = format!("service=\"{}\",operation=\"{}\"", k.0, escape(&k.1));
            let mut cumulative = 0;
            for (i, le) in BUCKETS.iter().enumerate() {
                cumulative += h.buckets[i].load(Ordering::Relaxed);
                let _ = writeln!(out, "lookout_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {cumulative}");
            }
            let count = h.count.load(Ordering::Relaxed);
            let _ = writeln!(out, "lookout_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {count}");
            let _ = writeln!(
                out,
                "lookout_request_duration_seconds_sum{{{labels}}} {}",
                h.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
            );
            let _ = writeln!(out, "lookout_request_duration_seconds_count{{{labels}}} {count}");
        }
    }
}

impl OperationMetrics {
    fn observe(&self, status: u16, elapsed: Duration) {
        {
            let s = self.by_status.read();
            if let Some(c) = s.get(&status) {
                c.fetch_add(1, Ordering::Relaxed);
            } else {
                drop(s);
                self.by_status.write().entry(status).or_default().fetch_add(1, Ordering::Relaxed);
            }
        }
        let secs = elapsed.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|le| secs <= *le) {
            self.latency.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.latency.count.fetch_add(1, Ordering::Relaxed);
        self.latency.sum_micros.fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }
}

/// A label value with `\`, `"` and newlines escaped.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

fn gauge(out: &mut String, name: &str, help: &str, kind: &str, samples: &[(&str, u64)]) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
    for (labels, v) in samples {
        if labels.is_empty() {
            let _ = writeln!(out, "{name} {v}");
        } else {
            let _ = writeln!(out, "{name}{{{labels}}} {v}");
        }
    }
}

/// `GET /metrics`.
pub async fn serve(State(app): State<App>) -> Response {
    let mut out = String::with_capacity(16 * 1024);
    app.metrics.render(&mut out);
    let logs = app.logs.clone();
    let usage = crate::blocking::run(move || logs.store().usage()).await.unwrap_or_default();
    gauge(
        &mut out,
        "lookout_ingest_events_total",
        "Log events appended since start.",
        "counter",
        &[("", usage.appended_events)],
    );
    gauge(
        &mut out,
        "lookout_ingest_bytes_total",
        "Bytes of log messages appended since start.",
        "counter",
        &[("", usage.appended_bytes)],
    );
    let admission = app.logs.admission_counts();
    gauge(
        &mut out,
        "lookout_ingest_admission_waits_total",
        "PutLogEvents batches that found the store without room (flushes behind) and waited for it.",
        "counter",
        &[("", admission.waited)],
    );
    gauge(
        &mut out,
        "lookout_ingest_admission_throttled_total",
        "PutLogEvents batches answered ThrottlingException because the store had no room in time.",
        "counter",
        &[("", admission.throttled)],
    );
    gauge(
        &mut out,
        "lookout_wal_syncs_total",
        "Write-ahead-log fsyncs (group commits) since start.",
        "counter",
        &[("", usage.wal_syncs)],
    );
    gauge(
        &mut out,
        "lookout_store_raw_bytes",
        "Bytes of log messages held in parts (uncompressed).",
        "gauge",
        &[("", usage.raw_bytes)],
    );
    gauge(&mut out, "lookout_store_disk_bytes", "Bytes of part files on disk.", "gauge", &[("", usage.stored_bytes)]);
    gauge(
        &mut out,
        "lookout_store_memory_bytes",
        "Bytes of log messages not yet flushed to parts.",
        "gauge",
        &[("", usage.memory_bytes)],
    );
    gauge(
        &mut out,
        "lookout_store_block_cache_bytes",
        "Bytes of decoded blocks cached for reads (at most 64 MiB).",
        "gauge",
        &[("", usage.block_cache_bytes)],
    );
    gauge(
        &mut out,
        "lookout_store_bloom_cache_bytes",
        "Bytes of parts' blooms cached for reads (at most 32 MiB).",
        "gauge",
        &[("", usage.bloom_cache_bytes)],
    );
    gauge(
        &mut out,
        "lookout_store_block_index_cache_bytes",
        "Bytes of parts' block indexes cached for reads (at most 64 MiB; open parts keep only their key range and streams).",
        "gauge",
        &[("", usage.block_index_cache_bytes)],
    );
    gauge(
        &mut out,
        "lookout_store_scan_cursor_bytes",
        "Bytes held by scan cursors: what a FilterLogEvents page leaves for the next page of the same query (at most 64 MiB).",
        "gauge",
        &[("", usage.scan_cursor_bytes)],
    );
    gauge(
        &mut out,
        "lookout_store_scan_cursors_resumed_total",
        "FilterLogEvents pages that continued from the previous page's cursor instead of reading its blocks again.",
        "counter",
        &[("", usage.scan_cursors_resumed)],
    );
    let pending = app.events.pending_deliveries();
    let retrying = pending.iter().filter(|d| d.attempts > 0).count() as u64;
    gauge(
        &mut out,
        "lookout_event_deliveries_pending",
        "EventBridge deliveries waiting for an attempt; retrying = attempted at least once.",
        "gauge",
        &[("state=\"new\"", pending.len() as u64 - retrying), ("state=\"retrying\"", retrying)],
    );
    // Counted as they happen: reading the finished store at every scrape made memory grow.
    let (succeeded, dead, failed_attempts) = app.events.delivery_counts();
    gauge(
        &mut out,
        "lookout_event_deliveries_total",
        "EventBridge deliveries finished since start, by outcome.",
        "counter",
        &[("outcome=\"succeeded\"", succeeded), ("outcome=\"dead_lettered\"", dead)],
    );
    gauge(
        &mut out,
        "lookout_event_delivery_failed_attempts_total",
        "EventBridge delivery attempts that failed since start (retried or dead-lettered).",
        "counter",
        &[("", failed_attempts)],
    );
    let sns_failed = app.notify.failed_deliveries().await.map(|v| v.len() as u64).unwrap_or(0);
    gauge(
        &mut out,
        "lookout_sns_deliveries",
        "SNS deliveries waiting (pending) or given up after their last attempt (failed).",
        "gauge",
        &[("state=\"pending\"", app.notify.pending_deliveries() as u64), ("state=\"failed\"", sns_failed)],
    );
    let mut by_state: std::collections::BTreeMap<&'static str, u64> = std::collections::BTreeMap::new();
    for t in app.tasks.all_tasks() {
        *by_state.entry(t.last_status.as_str()).or_default() += 1;
    }
    let labels: Vec<(String, u64)> = by_state.into_iter().map(|(s, n)| (format!("status=\"{s}\""), n)).collect();
    let samples: Vec<(&str, u64)> = labels.iter().map(|(l, n)| (l.as_str(), *n)).collect();
    gauge(&mut out, "lookout_tasks", "ECS tasks lookout remembers, by last status.", "gauge", &samples);
    (StatusCode::OK, [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], out).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_and_histograms_render_in_prometheus_text_format() {
        let m = RequestMetrics::default();
        let put = OperationLabel { service: "logs", operation: "PutLogEvents".into() };
        m.record(&put, 200, Duration::from_millis(3));
        m.record(&put, 200, Duration::from_millis(30));
        m.record(&put, 400, Duration::from_secs(20));
        m.record(&OperationLabel { service: "sns", operation: "Pub\"lish".into() }, 200, Duration::from_micros(10));
        let mut out = String::new();
        m.render(&mut out);
        assert!(
            out.contains("lookout_requests_total{service=\"logs\",operation=\"PutLogEvents\",code=\"200\"} 2\n"),
            "{out}"
        );
        assert!(out.contains("lookout_requests_total{service=\"logs\",operation=\"PutLogEvents\",code=\"400\"} 1\n"));
        assert!(out.contains("operation=\"Pub\\\"lish\""), "label values are escaped");
        assert!(out.contains(
            "lookout_request_duration_seconds_bucket{service=\"logs\",operation=\"PutLogEvents\",le=\"0.005\"} 1\n"
        ));
        assert!(out.contains(
            "lookout_request_duration_seconds_bucket{service=\"logs\",operation=\"PutLogEvents\",le=\"0.05\"} 2\n"
        ));
        assert!(out.contains(
            "lookout_request_duration_seconds_bucket{service=\"logs\",operation=\"PutLogEvents\",le=\"10\"} 2\n"
        ));
        assert!(out.contains(
            "lookout_request_duration_seconds_bucket{service=\"logs\",operation=\"PutLogEvents\",le=\"+Inf\"} 3\n"
        ));
        assert!(out.contains("lookout_request_duration_seconds_count{service=\"logs\",operation=\"PutLogEvents\"} 3\n"));
    }

    #[test]
    fn client_chosen_operation_names_are_bounded() {
        let m = RequestMetrics::default();
        for i in 0..(MAX_OPERATIONS + 50) {
            m.record(&OperationLabel { service: "logs", operation: format!("Op{i}") }, 400, Duration::ZERO);
        }
        assert!(m.by_operation.read().len() <= MAX_OPERATIONS + 1);
    }
}
