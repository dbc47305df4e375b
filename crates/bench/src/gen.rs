//! The data generator of `../shared/design/performance.md`: Zipf stream popularity, lognormal
//! message lengths, ~70 % text from the real Loghub templates and ~30 % JSON, planted needles
//! with exact counts, and pre-built PutLogEvents bodies within CloudWatch's batch limits.
//!
//! Generation is chunked: [`Generator::next_chunk`] produces the events of the next slice of the
//! timeline and closes every batch at the chunk's end (a Vector-style linger), so data sets far
//! larger than memory can be generated, written or replayed chunk by chunk.

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;

use anyhow::{bail, Context, Result};
use memchr::memmem;
use serde_json::{json, Value};

use crate::rng::Rng;

pub const MAX_BATCH_EVENTS: usize = 10_000;
pub const MAX_BATCH_BYTES: usize = 1_048_576;
pub const EVENT_OVERHEAD: usize = 26;
/// CloudWatch's largest event: 256 KiB including the 26 bytes of overhead.
pub const MAX_MESSAGE_BYTES: usize = 262_144 - EVENT_OVERHEAD;
/// The timestamps of one batch may span at most 24 h; stay clear of the edge.
pub const MAX_BATCH_SPAN_MS: i64 = 23 * 3_600_000;

pub const UNIQUE_TOKEN: &str = "UNIQTOKEN7Q3ZV9K";
pub const ERROR_TERM: &str = "ERROR";
pub const JSON_PATTERN: &str = "{ $.status = 503 && $.latency > 1000 }";
pub const REGEX_PATTERN: &str = "%time.?out%";

/// Bytes at the start of each Loghub line (mostly its timestamp) that keep the real values;
/// digit runs (3+) after it get fresh random digits every time the line is used.
const HEADER_KEEP: usize = 24;

// ------------------------------------------------------------------------------------------
// matchers: what the expected counts mean (the same rules as lookout's filter patterns)
// ------------------------------------------------------------------------------------------

/// `needle` occurs in `hay` as a whole word: the characters around it are not alphanumeric
/// (lookout's rule for plain terms, `crates/filter-pattern/src/words.rs`).
pub fn contains_word(hay: &str, needle: &str) -> bool {
    let nb = needle.len();
    let mut from = 0;
    while let Some(found) = memmem::find(&hay.as_bytes()[from..], needle.as_bytes()) {
        let start = from + found;
        let end = start + nb;
        let before_ok = !hay[..start].chars().next_back().is_some_and(char::is_alphanumeric);
        let after_ok = !hay[end..].chars().next().is_some_and(char::is_alphanumeric);
        if before_ok && after_ok {
            return true;
        }
        from = start + 1;
    }
    false
}

/// The regex `time.?out` found anywhere (`.` is any character but a newline).
pub fn matches_time_out(s: &str) -> bool {
    for pos in memmem::find_iter(s.as_bytes(), b"time") {
        let rest = &s[pos + 4..];
        if rest.starts_with("out") {
            return true;
        }
        let mut chars = rest.chars();
        if let Some(c) = chars.next() {
            if c != '\n' && chars.as_str().starts_with("out") {
                return true;
            }
        }
    }
    false
}

/// `{ $.status = 503 && $.latency > 1000 }` on a message.
pub fn matches_json_condition(s: &str) -> bool {
    if !s.starts_with('{') {
        return false;
    }
    let Ok(Value::Object(m)) = serde_json::from_str::<Value>(s) else {
        return false;
    };
    let num = |k: &str| m.get(k).and_then(Value::as_f64);
    num("status") == Some(503.0) && num("latency").is_some_and(|l| l > 1000.0)
}

// ------------------------------------------------------------------------------------------
// templates
// ------------------------------------------------------------------------------------------

/// One Loghub line split around its variable digit runs: `parts.len() == runs.len() + 1`.
#[derive(Debug, Clone)]
pub struct Template {
    parts: Vec<String>,
    runs: Vec<usize>,
}

impl Template {
    pub fn parse(line: &str) -> Self {
        let bytes = line.as_bytes();
        let mut i = HEADER_KEEP.min(line.len());
        while !line.is_char_boundary(i) {
            i += 1;
        }
        let (mut parts, mut runs, mut lit_start) = (Vec::new(), Vec::new(), 0);
        while i < bytes.len() {
            if bytes[i].is_ascii_digit() {
                let mut j = i;
                while j < bytes.len() && bytes[j].is_ascii_digit() {
                    j += 1;
                }
                if j - i >= 3 {
                    parts.push(line[lit_start..i].to_string());
                    runs.push(j - i);
                    lit_start = j;
                }
                i = j;
            } else {
                i += 1;
            }
        }
        parts.push(line[lit_start..].to_string());
        Self { parts, runs }
    }

    pub fn render(&self, rng: &mut Rng, out: &mut String) {
        out.push_str(&self.parts[0]);
        for (n, lit) in self.runs.iter().zip(&self.parts[1..]) {
            let mut left = *n;
            while left > 0 {
                let mut r = rng.next_u64();
                for _ in 0..left.min(18) {
                    out.push(char::from(b'0' + (r % 10) as u8));
                    r /= 10;
                    left -= 1;
                }
            }
            out.push_str(lit);
        }
    }

    fn literal_text(&self) -> String {
        self.parts.join(" ")
    }
}

/// One Loghub system: its lines, in file order.
#[derive(Debug, Clone)]
pub struct System {
    pub name: String,
    pub lines: Vec<Template>,
}

impl System {
    pub fn from_lines(name: &str, text: &str) -> Self {
        let lines = text
            .lines()
            .map(|l| l.trim_end_matches('\r'))
            .filter(|l| !l.trim().is_empty())
            .map(Template::parse)
            .collect();
        Self { name: name.to_string(), lines }
    }
}

/// Reads `DIR/*.log` (the Loghub 2k samples), in name order.
pub fn load_loghub(dir: &Path) -> Result<Vec<System>> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .with_context(|| format!("reading the Loghub directory {} (set --loghub)", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("no *.log files in {} (set --loghub)", dir.display());
    }
    let mut systems = Vec::new();
    for f in files {
        let bytes = std::fs::read(&f).with_context(|| format!("reading {}", f.display()))?;
        let text = String::from_utf8_lossy(&bytes);
        let stem = f.file_stem().and_then(|s| s.to_str()).unwrap_or("log");
        let name = stem.split('_').next().unwrap_or(stem).to_ascii_lowercase();
        let sys = System::from_lines(&name, &text);
        if sys.lines.is_empty() {
            continue;
        }
        systems.push(sys);
    }
    Ok(systems)
}

// ------------------------------------------------------------------------------------------
// configuration, expected counts, batches
// ------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct GenConfig {
    pub events: u64,
    pub streams: usize,
    pub seed: u64,
    pub group: String,
    /// Timestamps run evenly (by event index) from `end_ms - span_ms` to `end_ms`.
    pub end_ms: i64,
    pub span_ms: i64,
    /// Zipf exponent of stream popularity (stream k has weight 1 / (k+1)^s).
    pub zipf_s: f64,
    /// Share of events in JSON streams (streams are text or JSON, assigned by popularity).
    pub json_fraction: f64,
    /// Target share of events matching the term `ERROR` (natural occurrences plus planted).
    pub error_fraction: f64,
    /// Share of text events given a planted `timeout` / `time out` (or a near miss).
    pub timeout_fraction: f64,
    /// Median and p99 of the text message length (lognormal; JSON messages are longer, so the
    /// median of all messages comes out near 120 B).
    pub median_len: f64,
    pub p99_len: f64,
    /// Rare huge messages (~200 KB) per million events.
    pub huge_per_million: f64,
}

impl GenConfig {
    pub fn new(events: u64, streams: usize, seed: u64) -> Self {
        Self {
            events,
            streams,
            seed,
            group: "/bench/w1".to_string(),
            end_ms: now_ms(),
            span_ms: 60_000,
            zipf_s: 1.0,
            json_fraction: 0.30,
            error_fraction: 0.01,
            timeout_fraction: 0.005,
            median_len: 90.0,
            p99_len: 1000.0,
            huge_per_million: 1.0,
        }
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Exact counts of what was generated (the expected answers of the W3 queries).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    pub events: u64,
    pub message_bytes: u64,
    pub text_events: u64,
    pub json_events: u64,
    pub huge_events: u64,
    /// events matching the term `UNIQTOKEN7Q3ZV9K` (exactly 1)
    pub unique: u64,
    /// events matching the term `ERROR`
    pub error: u64,
    /// events matching `{ $.status = 503 && $.latency > 1000 }`
    pub json_match: u64,
    /// events matching `%time.?out%`
    pub timeout: u64,
    pub batches: u64,
    pub body_bytes: u64,
    pub max_batch_events: u64,
    /// largest batch by the CloudWatch measure (message bytes + 26 per event)
    pub max_batch_bytes: u64,
    pub min_ts: i64,
    pub max_ts: i64,
}

impl Expected {
    pub fn to_json(&self) -> Value {
        json!({
            "events": self.events, "message_bytes": self.message_bytes,
            "text_events": self.text_events, "json_events": self.json_events, "huge_events": self.huge_events,
            "unique": self.unique, "error": self.error, "json_match": self.json_match, "timeout": self.timeout,
            "batches": self.batches, "body_bytes": self.body_bytes,
            "max_batch_events": self.max_batch_events, "max_batch_bytes": self.max_batch_bytes,
            "min_ts": self.min_ts, "max_ts": self.max_ts,
        })
    }
}

/// One pre-built PutLogEvents body.
#[derive(Debug, Clone)]
pub struct Batch {
    pub stream: usize,
    pub first_ts: i64,
    pub events: usize,
    pub message_bytes: usize,
    pub body: Vec<u8>,
}

struct OpenBatch {
    first_ts: i64,
    events: usize,
    message_bytes: usize,
    body: Vec<u8>,
}

struct StreamState {
    name: String,
    system: usize,
    json: bool,
    cursor: usize,
    /// probability of planting `ERROR` in a text event of this stream
    plant_error: f64,
    open: Option<OpenBatch>,
    used: bool,
}

// ------------------------------------------------------------------------------------------
// the generator
// ------------------------------------------------------------------------------------------

pub struct Generator {
    cfg: GenConfig,
    systems: Vec<System>,
    streams: Vec<StreamState>,
    cum: Vec<f64>,
    rng: Rng,
    next: u64,
    unique_at: u64,
    sigma: f64,
    scratch: String,
    pub expected: Expected,
}

const STATUSES: &[(u32, f64)] =
    &[(200, 78.0), (201, 5.0), (204, 3.0), (301, 2.0), (400, 2.0), (404, 4.0), (429, 1.0), (500, 0.3), (503, 0.7)];
const METHODS: &[&str] = &["GET", "GET", "GET", "POST", "PUT", "DELETE"];
const PATHS: &[&str] = &[
    "/api/v1/orders",
    "/api/v1/users",
    "/api/v2/search",
    "/healthz",
    "/api/v1/cart",
    "/login",
    "/api/v1/payments",
    "/static/app.js",
];
const SERVICES: &[&str] = &["checkout", "search", "auth", "billing", "gateway", "inventory", "notify"];
const EXTRA_FIELDS: usize = 13;
const TIMEOUT_WORDS: &[&str] = &[
    "timeout",
    "time out",
    "time-out",
    "timeout=30s",
    "read timeout",
    // near misses the regex must not count
    "timed out",
    "Timeout",
    "time  out",
];

impl Generator {
    pub fn new(cfg: GenConfig, systems: Vec<System>) -> Result<Self> {
        if systems.is_empty() {
            bail!("no template systems");
        }
        if cfg.streams == 0 {
            bail!("need at least one stream");
        }
        for sys in &systems {
            for t in &sys.lines {
                if t.literal_text().contains(UNIQUE_TOKEN) {
                    bail!("the unique token {UNIQUE_TOKEN} already occurs in the {} templates", sys.name);
                }
            }
        }
        let mut rng = Rng::new(cfg.seed);
        let weights: Vec<f64> = (0..cfg.streams).map(|k| 1.0 / ((k + 1) as f64).powf(cfg.zipf_s)).collect();
        let total: f64 = weights.iter().sum();
        let mut cum = Vec::with_capacity(cfg.streams);
        let mut acc = 0.0;
        for w in &weights {
            acc += w / total;
            cum.push(acc);
        }
        // natural rate of ERROR lines per system, so planting tops each stream up to the target
        let natural: Vec<f64> = systems
            .iter()
            .map(|s| {
                let n = s.lines.iter().filter(|t| contains_word(&t.literal_text(), ERROR_TERM)).count();
                n as f64 / s.lines.len() as f64
            })
            .collect();
        let mut order: Vec<usize> = (0..systems.len()).collect();
        rng.shuffle(&mut order);
        // JSON or text per stream: in popularity order, a stream is JSON when that keeps the JSON
        // share of the streams so far closer to json_fraction. The share of events is then close
        // to json_fraction, JSON streams are spread over the whole popularity range, and a stream
        // keeps one format (grouping by stream stays realistic)
        let (mut json_share, mut prefix) = (0.0, 0.0);
        let mut streams = Vec::with_capacity(cfg.streams);
        for (k, w) in weights.iter().enumerate() {
            let w = w / total;
            prefix += w;
            let goal = cfg.json_fraction * prefix;
            let json = (json_share + w - goal).abs() < (json_share - goal).abs();
            if json {
                json_share += w;
            }
            let system = order[k % order.len()];
            let sys = &systems[system];
            let tag = rng.next_u64() & 0xffff_ffff_ffff;
            let name = if json {
                format!("{}-json/{k:05}/{tag:012x}", SERVICES[k % SERVICES.len()])
            } else {
                format!("{}/{k:05}/{tag:012x}", sys.name)
            };
            let nat = natural[system];
            let plant_error = ((cfg.error_fraction - nat) / (1.0 - nat)).max(0.0);
            let cursor = rng.index(sys.lines.len());
            streams.push(StreamState { name, system, json, cursor, plant_error, open: None, used: false });
        }
        let unique_at = if cfg.events > 0 { rng.below(cfg.events) } else { u64::MAX };
        let sigma = (cfg.p99_len / cfg.median_len).ln() / 2.326;
        let expected = Expected { min_ts: i64::MAX, max_ts: i64::MIN, ..Expected::default() };
        Ok(Self { cfg, systems, streams, cum, rng, next: 0, unique_at, sigma, scratch: String::new(), expected })
    }

    pub fn config(&self) -> &GenConfig {
        &self.cfg
    }

    pub fn stream_names(&self) -> Vec<String> {
        self.streams.iter().map(|s| s.name.clone()).collect()
    }

    pub fn streams_used(&self) -> usize {
        self.streams.iter().filter(|s| s.used).count()
    }

    pub fn json_streams(&self) -> usize {
        self.streams.iter().filter(|s| s.json).count()
    }

    pub fn done(&self) -> bool {
        self.next >= self.cfg.events
    }

    fn pick_stream(&mut self) -> usize {
        let x = self.rng.f64();
        self.cum.partition_point(|&c| c <= x).min(self.cum.len() - 1)
    }

    fn timestamp(&self, i: u64) -> i64 {
        let n = self.cfg.events.max(2) - 1;
        let start = self.cfg.end_ms - self.cfg.span_ms;
        start + ((i128::from(self.cfg.span_ms) * i128::from(i)) / i128::from(n)) as i64
    }

    /// Generates events up to `max_events` further along the timeline; writes each message and a
    /// newline to `raw` if given; returns the chunk's batches sorted by first timestamp. Every
    /// batch is closed at the chunk's end.
    pub fn next_chunk(&mut self, max_events: u64, mut raw: Option<&mut dyn Write>) -> io::Result<Vec<Batch>> {
        let end = self.cfg.events.min(self.next.saturating_add(max_events.max(1)));
        let mut out = Vec::new();
        let mut msg = std::mem::take(&mut self.scratch);
        for i in self.next..end {
            let k = self.pick_stream();
            let ts = self.timestamp(i);
            msg.clear();
            self.message(k, i == self.unique_at, &mut msg);
            if let Some(w) = raw.as_deref_mut() {
                w.write_all(msg.as_bytes())?;
                w.write_all(b"\n")?;
            }
            self.append(k, ts, &msg, &mut out);
        }
        self.scratch = msg;
        self.next = end;
        for k in 0..self.streams.len() {
            if let Some(open) = self.streams[k].open.take() {
                out.push(self.close(k, open));
            }
        }
        out.sort_by_key(|b| (b.first_ts, b.stream));
        Ok(out)
    }

    fn append(&mut self, k: usize, ts: i64, msg: &str, out: &mut Vec<Batch>) {
        let size = msg.len() + EVENT_OVERHEAD;
        let full = self.streams[k].open.as_ref().is_some_and(|o| {
            o.events >= MAX_BATCH_EVENTS
                || o.message_bytes + o.events * EVENT_OVERHEAD + size > MAX_BATCH_BYTES
                || ts - o.first_ts > MAX_BATCH_SPAN_MS
        });
        if full {
            let open = self.streams[k].open.take().expect("open batch");
            out.push(self.close(k, open));
        }
        let group = &self.cfg.group;
        let st = &mut self.streams[k];
        st.used = true;
        let open = st.open.get_or_insert_with(|| {
            let mut body = Vec::with_capacity(16 * 1024);
            body.extend_from_slice(b"{\"logGroupName\":");
            serde_json::to_writer(&mut body, group).expect("write to Vec");
            body.extend_from_slice(b",\"logStreamName\":");
            serde_json::to_writer(&mut body, &st.name).expect("write to Vec");
            body.extend_from_slice(b",\"logEvents\":[");
            OpenBatch { first_ts: ts, events: 0, message_bytes: 0, body }
        });
        if open.events > 0 {
            open.body.push(b',');
        }
        open.body.extend_from_slice(b"{\"timestamp\":");
        open.body.extend_from_slice(ts.to_string().as_bytes());
        open.body.extend_from_slice(b",\"message\":");
        serde_json::to_writer(&mut open.body, msg).expect("write to Vec");
        open.body.push(b'}');
        open.events += 1;
        open.message_bytes += msg.len();
        let e = &mut self.expected;
        e.events += 1;
        e.message_bytes += msg.len() as u64;
        e.min_ts = e.min_ts.min(ts);
        e.max_ts = e.max_ts.max(ts);
    }

    fn close(&mut self, k: usize, mut open: OpenBatch) -> Batch {
        open.body.extend_from_slice(b"]}");
        let e = &mut self.expected;
        e.batches += 1;
        e.body_bytes += open.body.len() as u64;
        e.max_batch_events = e.max_batch_events.max(open.events as u64);
        e.max_batch_bytes = e.max_batch_bytes.max((open.message_bytes + open.events * EVENT_OVERHEAD) as u64);
        Batch {
            stream: k,
            first_ts: open.first_ts,
            events: open.events,
            message_bytes: open.message_bytes,
            body: open.body,
        }
    }

    fn message(&mut self, k: usize, unique: bool, out: &mut String) {
        if self.streams[k].json {
            self.json_message(k, unique, out);
            self.expected.json_events += 1;
        } else {
            self.text_message(k, unique, out);
            self.expected.text_events += 1;
        }
        let e = &mut self.expected;
        e.unique += u64::from(contains_word(out, UNIQUE_TOKEN));
        e.error += u64::from(contains_word(out, ERROR_TERM));
        e.timeout += u64::from(matches_time_out(out));
    }

    /// Consecutive lines of the stream's system, joined by spaces up to a lognormal length.
    fn render_text(&mut self, k: usize, target: usize, out: &mut String) {
        let st = &mut self.streams[k];
        let sys = &self.systems[st.system];
        loop {
            sys.lines[st.cursor % sys.lines.len()].render(&mut self.rng, out);
            st.cursor += 1;
            if out.len() * 4 >= target * 3 {
                break;
            }
            out.push(' ');
        }
        if out.len() > target {
            let mut cut = target;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
        }
    }

    fn target_len(&mut self) -> usize {
        if self.cfg.huge_per_million > 0.0 && self.rng.chance(self.cfg.huge_per_million / 1e6) {
            self.expected.huge_events += 1;
            return 150_000 + self.rng.index(100_000);
        }
        (self.rng.lognormal(self.cfg.median_len, self.sigma) as usize).clamp(20, 64 * 1024)
    }

    fn text_message(&mut self, k: usize, unique: bool, out: &mut String) {
        let target = self.target_len();
        self.render_text(k, target, out);
        let plant_error = self.streams[k].plant_error;
        if self.rng.chance(plant_error) && !contains_word(out, ERROR_TERM) {
            self.insert_word(out, ERROR_TERM);
        }
        if self.rng.chance(self.cfg.timeout_fraction) {
            let w = *self.rng.pick(TIMEOUT_WORDS);
            self.insert_word(out, w);
        }
        if unique {
            self.insert_word(out, UNIQUE_TOKEN);
        }
        if out.len() > MAX_MESSAGE_BYTES {
            let mut cut = MAX_MESSAGE_BYTES;
            while !out.is_char_boundary(cut) {
                cut -= 1;
            }
            out.truncate(cut);
        }
    }

    /// Inserts ` word` before a random space (so it stands as a word of its own).
    fn insert_word(&mut self, out: &mut String, word: &str) {
        let spaces: Vec<usize> = memchr::memchr_iter(b' ', out.as_bytes()).collect();
        if spaces.is_empty() {
            out.push(' ');
            out.push_str(word);
        } else {
            let at = spaces[self.rng.index(spaces.len())];
            out.insert_str(at, &format!(" {word}"));
        }
    }

    fn json_message(&mut self, k: usize, unique: bool, out: &mut String) {
        let rng = &mut self.rng;
        let total: f64 = STATUSES.iter().map(|s| s.1).sum();
        let mut x = rng.f64() * total;
        let mut status = 200;
        for &(s, w) in STATUSES {
            if x < w {
                status = s;
                break;
            }
            x -= w;
        }
        let latency = rng.lognormal(545.0, 1.2) as u64;
        let level = if status >= 500 {
            "ERROR"
        } else if status >= 400 {
            "WARN"
        } else if rng.chance(0.1) {
            "DEBUG"
        } else {
            "INFO"
        };
        if status == 503 && latency > 1000 {
            self.expected.json_match += 1;
        }
        let r = |rng: &mut Rng, bits: u32| rng.next_u64() & ((1u64 << bits) - 1);
        let _ = write!(
            out,
            "{{\"level\":\"{level}\",\"status\":{status},\"latency\":{latency},\"requestId\":\"{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}\",\"ip\":\"{}.{}.{}.{}\"",
            r(rng, 32),
            r(rng, 16),
            r(rng, 12),
            0x8000 | r(rng, 14),
            r(rng, 48),
            1 + rng.below(223),
            rng.below(256),
            rng.below(256),
            1 + rng.below(254)
        );
        // 0..=12 of the extra fields, in a random order
        let mut extras: [usize; EXTRA_FIELDS] = std::array::from_fn(|i| i);
        rng.shuffle(&mut extras);
        // mostly a few extra fields, sometimes all of them (5 to 20 fields in all)
        let n_extra = ((-(1.0 - rng.f64()).ln() * 3.0) as usize).min(EXTRA_FIELDS);
        for &f in &extras[..n_extra] {
            let _ = match f {
                0 => write!(out, ",\"service\":\"{}\"", SERVICES[k % SERVICES.len()]),
                1 => write!(out, ",\"region\":\"{}\"", rng.pick(&["us-east-1", "eu-west-1", "ap-south-1"])),
                2 => write!(out, ",\"host\":\"ip-10-{}-{}-{}\"", rng.below(256), rng.below(256), rng.below(256)),
                3 => write!(out, ",\"pod\":\"web-{:010x}\"", r(rng, 40)),
                4 => write!(out, ",\"traceId\":\"1-{:08x}-{:016x}{:08x}\"", r(rng, 32), rng.next_u64(), r(rng, 32)),
                5 => write!(out, ",\"spanId\":\"{:016x}\"", rng.next_u64()),
                6 => write!(out, ",\"userId\":{}", 1 + rng.below(5_000_000)),
                7 => write!(out, ",\"bytes\":{}", rng.lognormal(3000.0, 1.5) as u64),
                8 => write!(out, ",\"retry\":{}", rng.below(4)),
                9 => write!(out, ",\"cache\":\"{}\"", rng.pick(&["hit", "miss", "stale"])),
                10 => write!(out, ",\"version\":\"1.{}.{}\"", rng.below(20), rng.below(10)),
                11 => write!(
                    out,
                    ",\"ua\":\"{}\"",
                    rng.pick(&["curl/8.5.0", "Mozilla/5.0 (X11; Linux x86_64)", "aws-sdk-go/1.55.5", "Boto3/1.43.11"])
                ),
                _ => write!(out, ",\"tls\":{}", rng.chance(0.5)),
            };
        }
        if rng.chance(0.7) {
            let _ = write!(out, ",\"method\":\"{}\",\"path\":\"{}\"", rng.pick(METHODS), rng.pick(PATHS));
        }
        if unique {
            let _ = write!(out, ",\"marker\":\"{UNIQUE_TOKEN}\"");
        }
        if self.rng.chance(0.3) {
            let mut text = String::new();
            self.render_text(k, 160, &mut text);
            out.push_str(",\"msg\":");
            out.push_str(&serde_json::to_string(&text).expect("string to JSON"));
        }
        out.push('}');
    }

    /// Everything a run needs to know about the data (written as `manifest.json`).
    pub fn manifest(&self) -> Value {
        let c = &self.cfg;
        json!({
            "group": c.group,
            "seed": c.seed,
            "events": c.events,
            "streams": c.streams,
            "streams_with_events": self.streams_used(),
            "json_streams": self.json_streams(),
            "zipf_s": c.zipf_s,
            "end_ms": c.end_ms,
            "span_ms": c.span_ms,
            "json_fraction_target": c.json_fraction,
            "median_len": c.median_len,
            "p99_len": c.p99_len,
            "huge_per_million": c.huge_per_million,
            "expected": self.expected.to_json(),
            "patterns": {
                "unique": UNIQUE_TOKEN, "error": ERROR_TERM, "json_match": JSON_PATTERN, "timeout": REGEX_PATTERN,
            },
            "stream_names": self.stream_names(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn systems() -> Vec<System> {
        let a = "2015-10-18 18:01:47,978 INFO [main] Created MRAppMaster for application appattempt_1445144423722_0020_000001\n\
                 2015-10-18 18:01:48,963 ERROR [main] Executing with tokens: 12345\n\
                 2015-10-18 18:01:50,353 WARN [main] connection timeout after 30000 ms to host 10.190.173.170\n\
                 2015-10-18 18:01:51,001 INFO [main] Kind: YARN_AM_RM_TOKEN, Service: , Ident: (appAttemptId { application_id { id: 20 } })\n";
        let b = "Dec 10 06:55:46 LabSZ sshd[24200]: reverse mapping checking getaddrinfo for ns.marryaldkfaczcz.com [173.234.31.186] failed - POSSIBLE BREAK-IN ATTEMPT!\n\
                 Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186\n\
                 Dec 10 07:02:47 LabSZ sshd[24203]: Connection closed by 212.47.254.145 [preauth] \u{e9}t\u{e9}\n";
        vec![System::from_lines("hadoop", a), System::from_lines("openssh", b)]
    }

    fn generate(cfg: GenConfig, chunk: u64) -> (Vec<Batch>, Vec<u8>, Expected) {
        let mut g = Generator::new(cfg, systems()).unwrap();
        let mut raw = Vec::new();
        let mut all = Vec::new();
        while !g.done() {
            all.extend(g.next_chunk(chunk, Some(&mut raw)).unwrap());
        }
        (all, raw, g.expected.clone())
    }

    fn cfg(events: u64, streams: usize, seed: u64) -> GenConfig {
        let mut c = GenConfig::new(events, streams, seed);
        c.end_ms = 1_800_000_000_000;
        c.span_ms = 86_400_000 - 600_000;
        c
    }

    #[test]
    fn batches_respect_the_limits_and_counts_are_exact() {
        let mut c = cfg(60_000, 50, 3);
        c.huge_per_million = 500.0; // ~30 huge messages: the byte limit must bind
        c.median_len = 400.0;
        let (batches, raw, e) = generate(c, 25_000);
        assert!(e.huge_events > 0);
        let (mut events, mut unique, mut error, mut json_match, mut timeout, mut bytes) = (0, 0, 0, 0, 0, 0);
        for b in &batches {
            let v: Value = serde_json::from_slice(&b.body).unwrap();
            let evs = v["logEvents"].as_array().unwrap();
            assert_eq!(evs.len(), b.events);
            assert!(evs.len() <= MAX_BATCH_EVENTS);
            let mut size = 0;
            let mut last = i64::MIN;
            for ev in evs {
                let m = ev["message"].as_str().unwrap();
                let ts = ev["timestamp"].as_i64().unwrap();
                assert!(ts >= last, "timestamps non-decreasing within a batch");
                last = ts;
                assert!(m.len() <= MAX_MESSAGE_BYTES && !m.contains('\n'));
                size += m.len() + EVENT_OVERHEAD;
                bytes += m.len() as u64;
                events += 1;
                unique += u64::from(contains_word(m, UNIQUE_TOKEN));
                error += u64::from(contains_word(m, ERROR_TERM));
                json_match += u64::from(matches_json_condition(m));
                timeout += u64::from(matches_time_out(m));
            }
            assert!(size <= MAX_BATCH_BYTES, "batch of {size} bytes");
            assert!(last - b.first_ts <= 24 * 3_600_000);
        }
        assert!(e.max_batch_bytes > MAX_BATCH_BYTES as u64 / 2, "the byte limit was exercised");
        assert_eq!(events, 60_000);
        assert_eq!((events, bytes), (e.events, e.message_bytes));
        assert_eq!(unique, 1);
        assert_eq!((unique, error, json_match, timeout), (e.unique, e.error, e.json_match, e.timeout));
        assert!(json_match > 0 && timeout > 0);
        // the raw file holds the same messages, one per line
        assert_eq!(raw.iter().filter(|&&b| b == b'\n').count() as u64, events);
        assert_eq!(raw.len() as u64, bytes + events);
    }

    #[test]
    fn count_limit_binds_with_small_messages() {
        let mut c = cfg(30_000, 1, 5);
        c.median_len = 30.0;
        c.p99_len = 60.0;
        c.huge_per_million = 0.0;
        let (batches, _, e) = generate(c, 1_000_000);
        assert_eq!(e.max_batch_events, MAX_BATCH_EVENTS as u64);
        assert!(batches.iter().all(|b| b.events <= MAX_BATCH_EVENTS));
        assert!(batches.windows(2).all(|w| w[0].first_ts <= w[1].first_ts));
    }

    #[test]
    fn deterministic_by_seed() {
        let (a, ra, ea) = generate(cfg(20_000, 100, 11), 7_000);
        let (b, rb, eb) = generate(cfg(20_000, 100, 11), 7_000);
        let (c, _, _) = generate(cfg(20_000, 100, 12), 7_000);
        assert_eq!(ea, eb);
        assert_eq!(ra, rb);
        assert_eq!(a.len(), b.len());
        assert!(a.iter().zip(&b).all(|(x, y)| x.body == y.body));
        assert!(a.len() != c.len() || a.iter().zip(&c).any(|(x, y)| x.body != y.body));
    }

    #[test]
    fn matchers() {
        assert!(contains_word("[ERROR] x", "ERROR"));
        assert!(contains_word("user_ERROR", "ERROR"));
        assert!(!contains_word("ERRORS", "ERROR"));
        assert!(!contains_word("xERROR ERRORy", "ERROR"));
        assert!(contains_word("xERROR ERROR", "ERROR"));
        assert!(matches_time_out("read timeout"));
        assert!(matches_time_out("time out"));
        assert!(matches_time_out("time-out"));
        assert!(matches_time_out("timeéout"));
        assert!(!matches_time_out("timed out"));
        assert!(!matches_time_out("Timeout"));
        assert!(!matches_time_out("time  out"));
        assert!(matches_json_condition(r#"{"status":503,"latency":1001}"#));
        assert!(!matches_json_condition(r#"{"status":503,"latency":1000}"#));
        assert!(!matches_json_condition(r#"{"status":"503","latency":2000}"#));
    }

    #[test]
    fn real_loghub_if_present() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/loghub");
        let Ok(systems) = load_loghub(&dir) else { return };
        let mut g = Generator::new(cfg(50_000, 1_000, 1), systems).unwrap();
        let mut lens = Vec::new();
        let mut raw = Vec::new();
        while !g.done() {
            g.next_chunk(50_000, Some(&mut raw)).unwrap();
        }
        for line in raw.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            lens.push(line.len());
        }
        lens.sort_unstable();
        let median = lens[lens.len() / 2];
        assert!((80..250).contains(&median), "median length {median}");
        let e = &g.expected;
        assert_eq!(e.unique, 1);
        let json_share = e.json_events as f64 / e.events as f64;
        assert!((0.2..0.4).contains(&json_share), "JSON share {json_share}");
        let err_share = e.error as f64 / e.events as f64;
        assert!((0.007..0.02).contains(&err_share), "ERROR share {err_share}");
    }
}
