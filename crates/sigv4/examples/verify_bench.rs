//! How much verifying a signature costs per request: `cargo run --release -p lookout-sigv4
//! --example verify_bench`. Prints verifications per second and the body bytes hashed per second
//! for PutLogEvents-like bodies of 1 KiB, 64 KiB and 1 MiB (the SHA-256 of the body dominates).

use std::time::{Duration, Instant, SystemTime};

fn main() {
    let now = SystemTime::now();
    println!("| body | verifications/s | body MB/s |");
    println!("|---:|---:|---:|");
    for size in [1usize << 10, 64 << 10, 1 << 20] {
        let body: Vec<u8> = (0..size).map(|i| b"abcdefghijklmnopqrstuvwxyz0123456789 "[i % 37]).collect();
        let base = [
            ("host", "127.0.0.1:4566"),
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", "Logs_20140328.PutLogEvents"),
        ];
        let added = lookout_sigv4::sign("POST", "/", "", &base, &body, "test", "test", "us-east-1", "logs", now);
        let mut headers: Vec<(String, String)> = base.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        headers.extend(added);
        let header_refs: Vec<(&str, &[u8])> = headers.iter().map(|(k, v)| (k.as_str(), v.as_bytes())).collect();
        let req = lookout_sigv4::Request { method: "POST", path: "/", query: "", headers: &header_refs, body: &body };
        let secret = |_: &str| Some("test".to_owned());
        let started = Instant::now();
        let mut n = 0u64;
        while started.elapsed() < Duration::from_millis(700) {
            lookout_sigv4::verify(&req, now, &secret).expect("a request it signed verifies");
            n += 1;
        }
        let secs = started.elapsed().as_secs_f64();
        println!("| {} KiB | {:.0} | {:.0} |", size >> 10, n as f64 / secs, n as f64 * size as f64 / secs / 1e6);
    }
}
