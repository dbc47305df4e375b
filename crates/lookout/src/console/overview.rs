//! The overview page: ingest rate (with a chart of the last hour), stored bytes and compression,
//! tasks running and failed in the last 24 h, failed deliveries. [`IngestHistory`] samples the
//! log store's intake counters every few seconds so the rate and the chart need no scan.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use lookout_logs::LogsService;
use lookout_tasks::model::Status;
use maud::{html, Markup};
use parking_lot::Mutex;

use super::tasks::failed;
use super::timefmt::time;
use super::{blocking, human_bytes, human_duration, Section};
use crate::app::App;
use crate::time_util::now_ms;

const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// One hour of samples.
const SAMPLES: usize = 721;
const DAY_MS: i64 = 86_400_000;

/// The log store's cumulative intake, sampled: (time ms, events, bytes), oldest first.
#[derive(Default)]
pub struct IngestHistory {
    samples: Mutex<VecDeque<(i64, u64, u64)>>,
}

impl IngestHistory {
    /// Starts sampling `logs` (call on the async runtime).
    pub fn start(logs: LogsService) -> Arc<IngestHistory> {
        let history = Arc::new(IngestHistory::default());
        let h = history.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SAMPLE_EVERY);
            loop {
                tick.tick().await;
                let u = logs.store().usage();
                h.record(now_ms(), u.appended_events, u.appended_bytes);
            }
        });
        history
    }

    fn record(&self, at: i64, events: u64, bytes: u64) {
        let mut s = self.samples.lock();
        if s.len() == SAMPLES {
            s.pop_front();
        }
        s.push_back((at, events, bytes));
    }

    /// Events/s and bytes/s over about the last `window_ms` (None before two samples).
    fn rate(&self, window_ms: i64) -> Option<(f64, f64)> {
        let s = self.samples.lock();
        let last = *s.back()?;
        let first = *s.iter().find(|x| x.0 >= last.0 - window_ms)?;
        let secs = (last.0 - first.0) as f64 / 1000.0;
        (secs > 0.0).then(|| ((last.1 - first.1) as f64 / secs, (last.2 - first.2) as f64 / secs))
    }

    /// Events taken in per minute over the last hour, oldest first: (minute start ms, events).
    fn per_minute(&self, now: i64) -> Vec<(i64, u64)> {
        let s = self.samples.lock();
        let minute_now = now - now.rem_euclid(60_000);
        let mut out = Vec::with_capacity(60);
        for i in (0..60).rev() {
            let from = minute_now - i * 60_000;
            let to = from + 60_000;
            // Counter at the last sample before each bound.
            let at = |t: i64| s.iter().take_while(|x| x.0 <= t).last().map(|x| x.1);
            let events = match (at(from).or_else(|| s.front().filter(|x| x.0 < to).map(|x| x.1)), at(to)) {
                (Some(a), Some(b)) => b.saturating_sub(a),
                _ => 0,
            };
            out.push((from, events));
        }
        out
    }
}

/// A bar chart of events per minute (inline SVG: no script needed).
fn chart(series: &[(i64, u64)]) -> Markup {
    let (w, h, bar) = (600.0, 120.0, 10.0);
    let max = series.iter().map(|x| x.1).max().unwrap_or(0).max(1) as f64;
    html! {
        svg #ingest-chart viewBox=(format!("0 0 {w} {}", h + 16.0)) role="img" aria-label="Events ingested per minute, last hour" {
            @for (i, (at, n)) in series.iter().enumerate() {
                @let bh = (*n as f64 / max * h).max(if *n > 0 { 1.0 } else { 0.0 });
                rect x=(i as f64 * bar) y=(h - bh) width=(bar - 2.0) height=(bh) {
                    title { (n) " events in the minute from " (crate::time_util::format_ms(*at)) }
                }
            }
            line x1="0" y1=(h) x2=(w) y2=(h) class="axis" {}
            text x="0" y=(h + 14.0) { "−60 min" }
            text x=(w) y=(h + 14.0) text-anchor="end" { "now" }
            text x=(w) y="10" text-anchor="end" { "max " (max as u64) "/min" }
        }
    }
}

/// `GET /` and `GET /console/`.
pub async fn page(State(app): State<App>) -> Response {
    let now = now_ms();
    let logs = app.logs.clone();
    let (usage, groups) = blocking(move || {
        let groups = logs.store().list_groups(None, &|_| true, usize::MAX);
        (logs.store().usage(), groups.len())
    })
    .await;
    let tasks = app.tasks.all_tasks();
    let running = tasks.iter().filter(|t| t.last_status != Status::Stopped).count();
    let recent: Vec<_> = tasks.iter().filter(|t| t.created_at_ms >= now - DAY_MS).collect();
    let failed_tasks: Vec<_> = recent.iter().filter(|t| failed(t)).collect();
    // Counted as they happen (reading the finished store on every view made memory grow).
    let dead = app.events.delivery_counts().1 as usize;
    let retrying = app.events.pending_deliveries().iter().filter(|d| d.attempts > 0).count();
    let sns_failed = app.notify.failed_deliveries().await.map(|v| v.len()).unwrap_or(0);
    let rate = app.console.ingest.rate(60_000);
    let series = app.console.ingest.per_minute(now);
    let held = usage.raw_bytes + usage.memory_bytes;
    page_markup(html! {
        div #overview {
            h1 { "Overview" }
            div.cards {
                div.card {
                    h2 { "Ingest" }
                    p.big { span data-stat="ingest-rate" { (rate.map_or("0".into(), |r| format!("{:.0}", r.0))) } " events/s" }
                    p { (rate.map_or("—".into(), |r| format!("{}/s", human_bytes(r.1 as u64)))) " over the last minute · "
                        (usage.appended_events) " events since start" }
                }
                div.card {
                    h2 { "Stored" }
                    p.big { span data-stat="stored-bytes" data-bytes=(usage.stored_bytes) { (human_bytes(usage.stored_bytes)) } " on disk" }
                    p {
                        (human_bytes(held)) " of messages in " (groups) " groups"
                        @if usage.stored_bytes > 0 { " · compressed " (format!("{:.1}×", usage.raw_bytes as f64 / usage.stored_bytes as f64)) }
                        @if usage.memory_bytes > 0 { " · " (human_bytes(usage.memory_bytes)) " not yet flushed" }
                    }
                }
                div.card {
                    h2 { "Tasks" }
                    p.big { span data-stat="tasks-running" { (running) } " running" }
                    p { span data-stat="tasks-failed" class=[(!failed_tasks.is_empty()).then_some("error")] { (failed_tasks.len()) } " failed of " (recent.len()) " in the last 24 h" }
                }
                div.card {
                    h2 { "Deliveries" }
                    p.big { span data-stat="failed-deliveries" class=[(dead + sns_failed > 0).then_some("error")] { (dead + sns_failed) } " failed" }
                    p { (dead) " event deliveries dead-lettered since lookout started · " (sns_failed) " SNS deliveries gave up · " (retrying) " retrying" }
                }
            }
            h2 { "Events ingested per minute" }
            (chart(&series))
            @if !failed_tasks.is_empty() {
                h2 { "Failed tasks, last 24 h" }
                table #failed-tasks {
                    thead { tr { th { "Task" } th { "Definition" } th { "Exit" } th { "Stopped" } th { "Reason" } } }
                    tbody {
                        @for t in failed_tasks.iter().take(10) {
                            tr {
                                td { a href=(format!("/console/tasks/{}", t.id)) { (t.id) } }
                                td { (t.family) ":" (t.revision) }
                                td.num { (t.containers.iter().filter_map(|c| c.exit_code).map(|c| c.to_string()).collect::<Vec<_>>().join(", ")) }
                                td { @if let Some(s) = t.stopped_at_ms { (time(s)) " " small { "(ran " (human_duration(s - t.started_at_ms.unwrap_or(s))) ")" } } }
                                td { (t.stopped_reason.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
        }
    })
}

fn page_markup(content: Markup) -> Response {
    super::page(StatusCode::OK, "Overview", Section::Overview, content)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_minutes_come_from_counter_differences() {
        let h = IngestHistory::default();
        assert!(h.rate(60_000).is_none());
        let t0: i64 = 1_800_000_000_000; // a whole minute
        h.record(t0, 100, 1000);
        h.record(t0 + 30_000, 400, 4000);
        h.record(t0 + 60_000, 700, 7000);
        let (ev, by) = h.rate(60_000).unwrap();
        assert!((ev - 10.0).abs() < 1e-9 && (by - 100.0).abs() < 1e-9, "{ev} {by}");
        let minutes = h.per_minute(t0 + 61_000);
        assert_eq!(minutes.len(), 60);
        assert_eq!(minutes[58], (t0, 600));
        assert_eq!(minutes[59].1, 0);
        assert!(chart(&minutes).into_string().contains("id=\"ingest-chart\""));
    }
}
