//! W1 ingest: create the group and its streams, build every request before timing, then replay
//! them over C keep-alive connections as fast as the server takes them.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::{json, Value};

use crate::gen::{self, Generator};
use crate::http::{build_request, parse_endpoint, Conn};
use crate::{percentile, procfs, DataArgs};

#[derive(Args, Debug)]
pub struct IngestArgs {
    #[command(flatten)]
    pub data: DataArgs,
    /// Server endpoint
    #[arg(long, default_value = "http://127.0.0.1:4566")]
    pub endpoint: String,
    /// Concurrent keep-alive connections
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// Replay the bodies written by `gen --out DIR` instead of generating
    #[arg(long)]
    pub bodies: Option<PathBuf>,
    /// Generate and replay in chunks of this many events (default: all at once, every body built
    /// before timing); only replay time counts. For data sets larger than memory.
    #[arg(long)]
    pub chunk_events: Option<u64>,
    /// Server process id: sample its RSS (and its children's) during and after, and its CPU time
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Write every figure as JSON here
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write the manifest (expected counts of every needle) here
    #[arg(long)]
    pub manifest: Option<PathBuf>,
    /// Write the raw messages, one per line, here (for rg)
    #[arg(long)]
    pub raw_out: Option<PathBuf>,
    /// Pause after a ThrottlingException before retrying, in milliseconds
    #[arg(long, default_value_t = 20)]
    pub throttle_sleep_ms: u64,
    /// Do not create the group and streams (they exist)
    #[arg(long)]
    pub skip_setup: bool,
    /// Open loop: offer this many MB/s of message bytes (requests sent on a fixed schedule, each
    /// latency measured from its scheduled send time) instead of sending as fast as answered
    #[arg(long)]
    pub rate_mb: Option<f64>,
    /// Write one line per acknowledged request here (`done_ms latency_ms events bytes`), to see
    /// when slow requests happened
    #[arg(long)]
    pub samples_out: Option<PathBuf>,
}

/// Per successful request: completion time (µs since the first replay started), latency (µs),
/// and the batch's events and message bytes.
#[derive(Clone, Copy)]
struct Sample {
    done_us: u64,
    lat_us: u64,
    events: usize,
    bytes: usize,
}

#[derive(Default)]
struct Outcome {
    samples: Vec<Sample>,
    failures: BTreeMap<String, u64>,
    failure_examples: Vec<String>,
    failed_idx: Vec<usize>,
    throttled: u64,
    reconnects: u64,
}

impl Outcome {
    fn merge(&mut self, o: Outcome) {
        self.samples.extend(o.samples);
        for (k, v) in o.failures {
            *self.failures.entry(k).or_default() += v;
        }
        for e in o.failure_examples {
            if self.failure_examples.len() < 10 {
                self.failure_examples.push(e);
            }
        }
        self.failed_idx.extend(o.failed_idx);
        self.throttled += o.throttled;
        self.reconnects += o.reconnects;
    }

    fn fail(&mut self, idx: usize, kind: String, detail: String) {
        *self.failures.entry(kind.clone()).or_default() += 1;
        self.failed_idx.push(idx);
        if self.failure_examples.len() < 10 {
            self.failure_examples.push(format!("request {idx}: {kind}: {detail}"));
        }
    }
}

struct Work {
    reqs: Vec<Vec<u8>>,
    /// (events, message bytes) per request
    meta: Vec<(usize, usize)>,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_current_thread().enable_all().build()?)
}

/// Sends one request to each of `items`, concurrently over `clients` connections; an error answer
/// whose `__type` is in `ok_types` counts as success. Returns failures as messages.
pub async fn call_all(
    addr: SocketAddr,
    clients: usize,
    reqs: Vec<Vec<u8>>,
    ok_types: &'static [&'static str],
) -> Vec<String> {
    let reqs = Arc::new(reqs);
    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for _ in 0..clients.max(1).min(reqs.len().max(1)) {
        let (reqs, next, errors) = (reqs.clone(), next.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::new(addr);
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= reqs.len() {
                    break;
                }
                let err = match conn.request(&reqs[i]).await {
                    Ok(r) if r.status == 200 => None,
                    Ok(r) => match r.error_type() {
                        Some(t) if ok_types.contains(&t.as_str()) => None,
                        t => Some(format!("HTTP {} {}: {}", r.status, t.unwrap_or_default(), snippet(&r.body))),
                    },
                    Err(e) => Some(format!("transport: {e}")),
                };
                if let Some(e) = err {
                    errors.lock().expect("lock").push(e);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let e = errors.lock().expect("lock").clone();
    e
}

pub fn snippet(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned()
}

async fn setup(addr: SocketAddr, host: &str, group: &str, streams: &[String], clients: usize) -> Result<()> {
    let body = serde_json::to_vec(&json!({ "logGroupName": group }))?;
    let errs =
        call_all(addr, 1, vec![build_request(host, "CreateLogGroup", &body)], &["ResourceAlreadyExistsException"])
            .await;
    if let Some(e) = errs.first() {
        bail!("CreateLogGroup {group}: {e}");
    }
    let reqs = streams
        .iter()
        .map(|s| {
            let body = serde_json::to_vec(&json!({ "logGroupName": group, "logStreamName": s })).expect("json");
            build_request(host, "CreateLogStream", &body)
        })
        .collect();
    let errs = call_all(addr, clients, reqs, &["ResourceAlreadyExistsException"]).await;
    if !errs.is_empty() {
        bail!("CreateLogStream: {} failures, first: {}", errs.len(), errs[0]);
    }
    Ok(())
}

async fn replay(
    conns: Vec<Conn>,
    work: Arc<Work>,
    t0: Instant,
    throttle_sleep: Duration,
    rate_mb: Option<f64>,
) -> (Vec<Conn>, Outcome) {
    // open loop: request i is due when the message bytes before it, at the offered rate, are sent
    let due: Option<Arc<Vec<Instant>>> = rate_mb.map(|r| {
        let mut before = 0.0;
        Arc::new(
            work.meta
                .iter()
                .map(|&(_, bytes)| {
                    let at = t0 + Duration::from_secs_f64(before / (r * 1e6));
                    before += bytes as f64;
                    at
                })
                .collect(),
        )
    });
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for mut conn in conns {
        let (work, next, due) = (work.clone(), next.clone(), due.clone());
        tasks.push(tokio::spawn(async move {
            let mut out = Outcome::default();
            let reconnects0 = conn.reconnects;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= work.reqs.len() {
                    break;
                }
                let scheduled = due.as_ref().map(|d| d[i]);
                if let Some(at) = scheduled {
                    tokio::time::sleep_until(at.into()).await;
                }
                loop {
                    let start = scheduled.unwrap_or_else(Instant::now);
                    match conn.request(&work.reqs[i]).await {
                        Ok(r) if r.status == 200 => {
                            let end = Instant::now();
                            if memchr::memmem::find(&r.body, b"rejectedLogEventsInfo").is_some() {
                                out.fail(i, "rejectedLogEventsInfo".into(), snippet(&r.body));
                            } else {
                                let (events, bytes) = work.meta[i];
                                out.samples.push(Sample {
                                    done_us: end.duration_since(t0).as_micros() as u64,
                                    lat_us: end.duration_since(start).as_micros() as u64,
                                    events,
                                    bytes,
                                });
                            }
                        }
                        Ok(r) => {
                            let t = r.error_type().unwrap_or_default();
                            if t == "ThrottlingException" {
                                out.throttled += 1;
                                tokio::time::sleep(throttle_sleep).await;
                                continue;
                            }
                            out.fail(i, format!("HTTP {} {t}", r.status), snippet(&r.body));
                        }
                        Err(e) => out.fail(i, format!("transport {:?}", e.kind()), e.to_string()),
                    }
                    break;
                }
            }
            out.reconnects = conn.reconnects - reconnects0;
            (conn, out)
        }));
    }
    let mut conns = Vec::new();
    let mut outcome = Outcome::default();
    for t in tasks {
        let (c, o) = t.await.expect("replay task");
        conns.push(c);
        outcome.merge(o);
    }
    (conns, outcome)
}

/// Samples the server's RSS every 100 ms on its own thread.
struct RssSampler {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<(u64, Vec<(f64, u64)>)>,
}

impl RssSampler {
    fn start(pid: u32, t0: Instant) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::spawn(move || {
            let (mut max, mut series, mut last_push) = (0u64, Vec::new(), f64::NEG_INFINITY);
            while !s.load(Ordering::Relaxed) {
                if let Some(r) = procfs::rss_bytes(pid) {
                    max = max.max(r);
                    let at = t0.elapsed().as_secs_f64();
                    if at - last_push >= 1.0 {
                        series.push((at, r));
                        last_push = at;
                    }
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            (max, series)
        });
        Self { stop, handle }
    }

    fn finish(self) -> (u64, Vec<(f64, u64)>) {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}

fn load_bodies(dir: &std::path::Path, host: &str) -> Result<(Value, Work)> {
    let m: Value = serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).context("reading manifest.json")?)?;
    let f = BufReader::with_capacity(1 << 20, File::open(dir.join("bodies.jsonl")).context("opening bodies.jsonl")?);
    let mut work = Work { reqs: Vec::new(), meta: Vec::new() };
    for line in f.split(b'\n') {
        let line = line?;
        if line.is_empty() {
            continue;
        }
        // events and message bytes, for the figures (parsed once, before timing)
        let v: Value = serde_json::from_slice(&line)?;
        let evs = v["logEvents"].as_array().map(Vec::as_slice).unwrap_or_default();
        let bytes = evs.iter().map(|e| e["message"].as_str().map_or(0, str::len)).sum();
        work.meta.push((evs.len(), bytes));
        work.reqs.push(build_request(host, "PutLogEvents", &line));
    }
    Ok((m, work))
}

fn ms(us: f64) -> f64 {
    (us / 1000.0 * 1000.0).round() / 1000.0
}

pub fn run(a: IngestArgs) -> Result<()> {
    let (addr, host) = parse_endpoint(&a.endpoint)?;
    let rt = runtime()?;
    let t_gen = Instant::now();
    // the data: from `gen --out`, or generated here (all at once unless --chunk-events)
    let (mut generator, mut preloaded, stream_names, group) = if let Some(dir) = &a.bodies {
        let (m, work) = load_bodies(dir, &host)?;
        let names: Vec<String> = m["stream_names"]
            .as_array()
            .map(|v| v.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
            .unwrap_or_default();
        let group = m["group"].as_str().unwrap_or("/bench/w1").to_string();
        (None, Some((m, work)), names, group)
    } else {
        let systems = gen::load_loghub(&a.data.loghub)?;
        let g = Generator::new(a.data.config("/bench/w1", 60), systems)?;
        let names = g.stream_names();
        let group = g.config().group.clone();
        (Some(g), None, names, group)
    };
    let mut raw = match &a.raw_out {
        Some(p) => {
            Some(BufWriter::with_capacity(1 << 20, File::create(p).with_context(|| format!("{}", p.display()))?))
        }
        None => None,
    };
    let chunk = a.chunk_events.unwrap_or(u64::MAX);
    let preloaded_manifest = preloaded.as_ref().map(|(m, _)| m.clone());
    let mut make_chunk = |generator: &mut Option<Generator>| -> Result<Option<Work>> {
        if let Some((_, w)) = preloaded.take() {
            return Ok(Some(w));
        }
        let Some(g) = generator.as_mut() else { return Ok(None) };
        if g.done() {
            return Ok(None);
        }
        let batches = g.next_chunk(chunk, raw.as_mut().map(|w| w as &mut dyn Write))?;
        let meta = batches.iter().map(|b| (b.events, b.message_bytes)).collect();
        let reqs = batches.into_iter().map(|b| build_request(&host, "PutLogEvents", &b.body)).collect();
        Ok(Some(Work { reqs, meta }))
    };
    let mut pending = make_chunk(&mut generator)?;
    let mut gen_seconds = t_gen.elapsed().as_secs_f64();
    eprintln!(
        "[ingest] {} requests built in {gen_seconds:.2} s (first chunk); {} streams in {group}",
        pending.as_ref().map_or(0, |w| w.reqs.len()),
        stream_names.len()
    );

    let t_setup = Instant::now();
    if !a.skip_setup {
        rt.block_on(setup(addr, &host, &group, &stream_names, a.clients))?;
    }
    let setup_seconds = t_setup.elapsed().as_secs_f64();

    // connect every client before timing
    let mut conns: Vec<Conn> = (0..a.clients.max(1)).map(|_| Conn::new(addr)).collect();
    rt.block_on(async {
        for c in &mut conns {
            c.connect().await?;
        }
        anyhow::Ok(())
    })?;

    let (mut server_cpu, mut client_cpu) = (a.server_pid.map(|_| 0.0), 0.0);
    let t0 = Instant::now();
    let sampler = a.server_pid.map(|p| RssSampler::start(p, t0));
    let mut total = Outcome::default();
    let (mut replay_secs, mut requests, mut chunks) = (0.0, 0usize, 0usize);
    let (mut events_ok, mut bytes_ok, mut events_sent) = (0u64, 0u64, 0u64);
    let mut timeline: BTreeMap<u64, (u64, u64, u64, u64)> = BTreeMap::new(); // second → (req, events, bytes, max µs)
    let throttle_sleep = Duration::from_millis(a.throttle_sleep_ms);
    let mut replay_t0 = Instant::now();
    let mut offset_us = 0u64;
    while let Some(work) = pending.take() {
        let work = Arc::new(work);
        let tr = Instant::now();
        if chunks == 0 {
            replay_t0 = tr;
        }
        // CPU figures cover the replays only, not the generation of later chunks
        let server_cpu0 = a.server_pid.and_then(procfs::cpu_seconds);
        let client_cpu0 = procfs::self_cpu_seconds();
        let (c, outcome) = rt.block_on(replay(std::mem::take(&mut conns), work.clone(), tr, throttle_sleep, a.rate_mb));
        let secs = tr.elapsed().as_secs_f64();
        client_cpu += procfs::self_cpu_seconds() - client_cpu0;
        if let (Some(total), Some(before), Some(after)) =
            (server_cpu.as_mut(), server_cpu0, a.server_pid.and_then(procfs::cpu_seconds))
        {
            *total += after - before;
        }
        conns = c;
        replay_secs += secs;
        chunks += 1;
        requests += work.reqs.len();
        events_sent += work.meta.iter().map(|m| m.0 as u64).sum::<u64>();
        let mut outcome = outcome;
        for s in &mut outcome.samples {
            s.done_us += offset_us;
            events_ok += s.events as u64;
            bytes_ok += s.bytes as u64;
            let e = timeline.entry(s.done_us / 1_000_000).or_default();
            e.0 += 1;
            e.1 += s.events as u64;
            e.2 += s.bytes as u64;
            e.3 = e.3.max(s.lat_us);
        }
        offset_us += (secs * 1e6) as u64;
        total.merge(outcome);
        drop(work);
        let tg = Instant::now();
        pending = make_chunk(&mut generator)?;
        if pending.is_some() {
            gen_seconds += tg.elapsed().as_secs_f64();
            eprintln!("[ingest] chunk {chunks}: {events_ok} events acknowledged so far, {replay_secs:.1} s replaying");
        }
    }
    let wall_seconds = replay_t0.elapsed().as_secs_f64();
    let rss_after = a.server_pid.and_then(procfs::rss_bytes);
    if let Some(w) = raw.as_mut() {
        w.flush()?;
    }
    std::thread::sleep(Duration::from_millis(if a.server_pid.is_some() { 1000 } else { 0 }));
    let rss_after_1s = a.server_pid.and_then(procfs::rss_bytes);
    let (rss_max, rss_series) = sampler.map(RssSampler::finish).unwrap_or_default();

    let mut lats: Vec<f64> = total.samples.iter().map(|s| s.lat_us as f64).collect();
    lats.sort_by(f64::total_cmp);
    let mean = if lats.is_empty() { f64::NAN } else { lats.iter().sum::<f64>() / lats.len() as f64 };
    if let Some(p) = &a.samples_out {
        let mut out = String::from("done_ms latency_ms events bytes\n");
        for s in &total.samples {
            out.push_str(&format!(
                "{:.3} {:.3} {} {}\n",
                s.done_us as f64 / 1e3,
                s.lat_us as f64 / 1e3,
                s.events,
                s.bytes
            ));
        }
        std::fs::write(p, out)?;
    }
    let mut slowest: Vec<Sample> = total.samples.clone();
    slowest.sort_by_key(|s| std::cmp::Reverse(s.lat_us));
    slowest.truncate(10);
    let failed = total.failed_idx.len();

    let manifest = match (&generator, preloaded_manifest) {
        (Some(g), _) => g.manifest(),
        (None, Some(m)) => m,
        (None, None) => json!({}),
    };
    if let Some(p) = &a.manifest {
        std::fs::write(p, serde_json::to_vec_pretty(&manifest)?)?;
    }
    let mut workload = manifest.clone();
    if let Some(o) = workload.as_object_mut() {
        o.remove("stream_names");
    }
    let secs = replay_secs;
    let report = json!({
        "endpoint": a.endpoint,
        "clients": a.clients,
        "offered_mb_per_s": a.rate_mb,
        "workload": workload,
        "chunks": chunks,
        "gen_seconds": gen_seconds,
        "setup_seconds": setup_seconds,
        "seconds": secs,
        "wall_seconds": wall_seconds,
        "requests": requests,
        "events_sent": events_sent,
        "events_acknowledged": events_ok,
        "message_bytes_acknowledged": bytes_ok,
        "events_per_s": events_ok as f64 / secs,
        "mb_per_s": bytes_ok as f64 / secs / 1e6,
        "requests_per_s": total.samples.len() as f64 / secs,
        "latency_ms": {
            "p50": ms(percentile(&lats, 50.0)), "p90": ms(percentile(&lats, 90.0)),
            "p99": ms(percentile(&lats, 99.0)), "p999": ms(percentile(&lats, 99.9)),
            "max": ms(lats.last().copied().unwrap_or(f64::NAN)), "mean": ms(mean),
        },
        "failed_requests": failed,
        "failures_by_kind": total.failures,
        "failure_examples": total.failure_examples,
        "throttled": total.throttled,
        "reconnects": total.reconnects,
        "client_cpu_seconds": client_cpu,
        "server": {
            "pid": a.server_pid,
            "cpu_seconds": server_cpu,
            "cores_busy": server_cpu.map(|c| c / secs),
            "rss_max_during_bytes": a.server_pid.map(|_| rss_max),
            "rss_after_bytes": rss_after,
            "rss_after_1s_bytes": rss_after_1s,
            "rss_series": rss_series.iter().map(|(t, r)| json!([((t * 10.0).round() / 10.0), r])).collect::<Vec<_>>(),
        },
        "timeline": timeline.iter().map(|(s, (r, e, b, m))| json!({
            "second": s, "requests": r, "events": e, "mb": (*b as f64 / 1e4).round() / 100.0, "max_latency_ms": ms(*m as f64),
        })).collect::<Vec<_>>(),
        "slowest": slowest.iter().map(|s| json!({
            "at_s": (s.done_us as f64 / 1e4).round() / 100.0, "ms": ms(s.lat_us as f64), "events": s.events,
        })).collect::<Vec<_>>(),
    });
    print_summary(&report);
    if let Some(p) = &a.json {
        std::fs::write(p, serde_json::to_vec_pretty(&report)?)?;
        eprintln!("[ingest] wrote {}", p.display());
    }
    if failed > 0 {
        bail!("{failed} PutLogEvents requests failed");
    }
    Ok(())
}

fn print_summary(r: &Value) {
    let l = &r["latency_ms"];
    let mb = |v: &Value| v.as_f64().map_or("—".to_string(), |b| format!("{:.0} MB", b / 1e6));
    println!(
        "W1 ingest: {} events in {:.2} s = {:.0} events/s, {:.1} MB/s (message bytes), {} requests, {} clients{}",
        r["events_acknowledged"],
        r["seconds"].as_f64().unwrap_or(0.0),
        r["events_per_s"].as_f64().unwrap_or(0.0),
        r["mb_per_s"].as_f64().unwrap_or(0.0),
        r["requests"],
        r["clients"],
        r["offered_mb_per_s"].as_f64().map_or(String::new(), |m| format!(", open loop at {m} MB/s offered"))
    );
    println!(
        "  PutLogEvents latency ms: p50 {} p90 {} p99 {} p99.9 {} max {}",
        l["p50"], l["p90"], l["p99"], l["p999"], l["max"]
    );
    println!(
        "  failed {} {} throttled {} reconnects {}; client CPU {:.2} s",
        r["failed_requests"],
        r["failures_by_kind"],
        r["throttled"],
        r["reconnects"],
        r["client_cpu_seconds"].as_f64().unwrap_or(0.0)
    );
    let s = &r["server"];
    if !s["pid"].is_null() {
        println!(
            "  server: CPU {:.1} s ({:.2} cores busy), RSS max during {}, after {}, 1 s later {}",
            s["cpu_seconds"].as_f64().unwrap_or(f64::NAN),
            s["cores_busy"].as_f64().unwrap_or(f64::NAN),
            mb(&s["rss_max_during_bytes"]),
            mb(&s["rss_after_bytes"]),
            mb(&s["rss_after_1s_bytes"])
        );
    }
    if let Some(t) = r["timeline"].as_array() {
        let per_s: Vec<String> = t.iter().map(|e| format!("{}", e["mb"].as_f64().unwrap_or(0.0).round())).collect();
        println!("  MB/s per second: [{}]", per_s.join(" "));
    }
}
