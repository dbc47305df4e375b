//! Micro-benchmark of JSON-pattern matching throughput (ignored by default):
//! `cargo test --release -p lookout-filter --test json_throughput -- --ignored --nocapture`.
//!
//! ~50 MB of generated messages per mix: 10 % plain text, 90 % JSON objects that do not match
//! `{ $.status = 503 && $.latency > 1000 }` (plus a handful that do). Mixes differ in how many
//! of the JSON messages carry the selected keys (with non-matching values), which decides how
//! much the key prefilter can reject before parsing.

use std::time::Instant;

use lookout_filter::FilterPattern;

const PATTERN: &str = "{ $.status = 503 && $.latency > 1000 }";
const TARGET_BYTES: usize = 50 * 1024 * 1024;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `keyed_percent` of the JSON messages are access logs with `status` and `latency`.
fn generate(keyed_percent: u64) -> (Vec<String>, usize) {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ keyed_percent);
    let mut messages = Vec::new();
    let mut bytes = 0;
    let paths = ["/api/v1/items", "/api/v1/users/42", "/healthz", "/static/app.js", "/login"];
    let levels = ["INFO", "DEBUG", "WARN", "ERROR"];
    while bytes < TARGET_BYTES {
        let roll = rng.below(100);
        let n = rng.next();
        let message = if roll < 10 {
            format!(
                "2024-05-{:02}T12:{:02}:{:02}.{:03}Z {} request {} handled in {}ms by worker-{} path={}",
                1 + n % 28,
                n % 60,
                (n >> 8) % 60,
                (n >> 16) % 1000,
                levels[(n >> 24) as usize % 4],
                n >> 32,
                (n >> 12) % 5000,
                (n >> 20) % 16,
                paths[(n >> 28) as usize % 5]
            )
        } else if rng.below(100) < keyed_percent {
            // Access log carrying both keys; only 1 in 1000 actually matches.
            let matching = rng.below(1000) == 0;
            let status = if matching { 503 } else { [200, 201, 204, 301, 404, 500, 503][(n % 7) as usize] };
            let latency = if matching || status != 503 { 1 + (n >> 8) % 5000 } else { (n >> 8) % 1000 };
            format!(
                r#"{{"timestamp":"2024-05-01T12:00:{:02}Z","level":"{}","requestId":"{:016x}","method":"GET","path":"{}","status":{},"latency":{},"bytes":{},"user":{{"id":{},"agent":"Mozilla/5.0 (X11; Linux x86_64)"}}}}"#,
                n % 60,
                levels[(n >> 3) as usize % 4],
                n,
                paths[(n >> 5) as usize % 5],
                status,
                latency,
                (n >> 16) % 100_000,
                (n >> 40) % 10_000
            )
        } else {
            format!(
                r#"{{"timestamp":"2024-05-01T12:00:{:02}Z","level":"{}","logger":"app.worker.{}","thread":"pool-{}","message":"processed batch {} with {} records in {} ms","tags":["etl","nightly"],"host":{{"name":"ip-10-0-{}-{}","az":"eu-west-1a"}}}}"#,
                n % 60,
                levels[(n >> 3) as usize % 4],
                (n >> 7) % 16,
                (n >> 11) % 8,
                n >> 32,
                (n >> 14) % 10_000,
                (n >> 20) % 5000,
                (n >> 24) % 256,
                (n >> 32) % 256
            )
        };
        bytes += message.len();
        messages.push(message);
    }
    (messages, bytes)
}

/// Splits the messages over two threads (the target machine has 2 cores) and returns
/// (matches, MB/s).
fn scan(pattern: &FilterPattern, messages: &[String], bytes: usize, threads: usize) -> (usize, f64) {
    let chunk = messages.len().div_ceil(threads);
    let mut best = f64::MAX;
    let mut hits = 0;
    for _ in 0..3 {
        let start = Instant::now();
        hits = std::thread::scope(|s| {
            let handles: Vec<_> = messages
                .chunks(chunk)
                .map(|part| s.spawn(move || part.iter().filter(|m| pattern.matches(m)).count()))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum::<usize>()
        });
        best = best.min(start.elapsed().as_secs_f64());
    }
    (hits, bytes as f64 / 1e6 / best)
}

#[test]
#[ignore = "benchmark; run with --release -- --ignored --nocapture"]
fn json_pattern_throughput() {
    let pattern = FilterPattern::parse(PATTERN).unwrap();
    for keyed_percent in [0, 25, 50, 100] {
        let (messages, bytes) = generate(keyed_percent);
        for threads in [1, 2] {
            let (hits, mb_s) = scan(&pattern, &messages, bytes, threads);
            println!(
                "{PATTERN}: {:.1} MB, {}% of JSON messages carry status+latency, {threads} thread(s): {mb_s:.0} MB/s ({hits} matches)",
                bytes as f64 / 1e6,
                keyed_percent
            );
        }
    }
}
