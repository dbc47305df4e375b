//! `lookout-bench`: the load generator and benchmark driver for lookout's performance suite
//! (`../shared/design/performance.md`). Subcommands:
//!
//! * `gen`    — generate a data set (Zipf streams, Loghub text + JSON, planted needles) as
//!   pre-built PutLogEvents bodies, a manifest of expected counts, and optionally the raw messages;
//! * `ingest` — W1: create the group and streams, build every body before timing, replay them over
//!   C keep-alive connections, report throughput, latency, failures, server RSS and CPU;
//! * `filter` — W3: the four FilterLogEvents queries (first page and all pages) checked against
//!   the expected counts, and `rg -j1` on the same data for the ratio.
//!
//! The client is deliberately cheap: one thread, hand-written HTTP/1.1, no JSON encoding while
//! timing, and only the status code (plus `__type` on errors) read from PutLogEvents answers.

mod filter;
mod gen;
mod http;
mod ingest;
mod procfs;
mod rng;

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "lookout-bench",
    version,
    about = "lookout's load generator and benchmark driver (W1 ingest, W3 filter)"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Generate a data set: pre-built PutLogEvents bodies, a manifest with expected counts, raw messages
    Gen(gen_cmd::GenArgs),
    /// W1: replay pre-built PutLogEvents bodies over C keep-alive connections
    Ingest(ingest::IngestArgs),
    /// W3: FilterLogEvents queries against a group, checked and compared with rg -j1
    Filter(filter::FilterArgs),
}

/// How to generate the data (shared by `gen` and `ingest`).
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Events to generate
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Log streams (Zipf popularity)
    #[arg(long, default_value_t = 1_000)]
    pub streams: usize,
    /// Seed: the same seed (and --end-ms) gives the same bytes
    #[arg(long, default_value_t = 20_260_101)]
    pub seed: u64,
    /// Log group
    #[arg(long)]
    pub group: Option<String>,
    /// Timestamps span this many seconds, evenly by event index (default: 60 for ingest, "now";
    /// 86,100 for gen, 24 h minus a margin)
    #[arg(long)]
    pub span_secs: Option<u64>,
    /// Timeline end in epoch milliseconds (default: now)
    #[arg(long)]
    pub end_ms: Option<i64>,
    /// Zipf exponent of stream popularity
    #[arg(long, default_value_t = 1.0)]
    pub zipf: f64,
    /// Share of events in JSON streams
    #[arg(long, default_value_t = 0.30)]
    pub json_fraction: f64,
    /// Rare huge (~200 KB) messages per million events
    #[arg(long, default_value_t = 1.0)]
    pub huge_per_million: f64,
    /// Directory of the Loghub *_2k.log samples (read in place)
    #[arg(long, env = "LOGHUB_DIR", default_value = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/data/loghub"))]
    pub loghub: PathBuf,
}

impl DataArgs {
    pub fn config(&self, default_group: &str, default_span_secs: u64) -> gen::GenConfig {
        let mut c = gen::GenConfig::new(self.events, self.streams, self.seed);
        c.group = self.group.clone().unwrap_or_else(|| default_group.to_string());
        c.span_ms = self.span_secs.unwrap_or(default_span_secs) as i64 * 1000;
        if let Some(e) = self.end_ms {
            c.end_ms = e;
        }
        c.zipf_s = self.zipf;
        c.json_fraction = self.json_fraction;
        c.huge_per_million = self.huge_per_million;
        c
    }
}

mod gen_cmd {
    use std::fs::File;
    use std::io::{BufWriter, Write};
    use std::path::PathBuf;
    use std::time::Instant;

    use anyhow::{Context, Result};
    use clap::Args;

    use crate::gen::{self, Generator};
    use crate::DataArgs;

    #[derive(Args, Debug)]
    pub struct GenArgs {
        #[command(flatten)]
        pub data: DataArgs,
        /// Output directory: bodies.jsonl (one PutLogEvents body per line) and manifest.json
        #[arg(long)]
        pub out: PathBuf,
        /// Also write the raw messages, one per line, to OUT/raw.log (for rg)
        #[arg(long)]
        pub raw: bool,
        /// Write only manifest.json (and raw.log with --raw), not the bodies
        #[arg(long)]
        pub no_bodies: bool,
        /// Events generated per chunk (every batch closes at a chunk's end)
        #[arg(long, default_value_t = 2_000_000)]
        pub chunk_events: u64,
    }

    pub fn run(a: GenArgs) -> Result<()> {
        let t0 = Instant::now();
        std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
        let systems = gen::load_loghub(&a.data.loghub)?;
        let mut g = Generator::new(a.data.config("/bench/w3", 86_100), systems)?;
        let mut bodies = if a.no_bodies {
            None
        } else {
            Some(BufWriter::with_capacity(1 << 20, File::create(a.out.join("bodies.jsonl"))?))
        };
        let mut raw =
            if a.raw { Some(BufWriter::with_capacity(1 << 20, File::create(a.out.join("raw.log"))?)) } else { None };
        while !g.done() {
            let batches = g.next_chunk(a.chunk_events, raw.as_mut().map(|w| w as &mut dyn Write))?;
            if let Some(w) = bodies.as_mut() {
                for b in batches {
                    w.write_all(&b.body)?;
                    w.write_all(b"\n")?;
                }
            }
        }
        if let Some(mut w) = bodies {
            w.flush()?;
        }
        if let Some(mut w) = raw {
            w.flush()?;
        }
        let mut m = g.manifest();
        m["gen_seconds"] = t0.elapsed().as_secs_f64().into();
        std::fs::write(a.out.join("manifest.json"), serde_json::to_vec_pretty(&m)?)?;
        let e = &g.expected;
        eprintln!(
            "generated {} events ({:.1} MB of messages) in {} batches over {} streams ({} used, {} JSON) in {:.1} s",
            e.events,
            e.message_bytes as f64 / 1e6,
            e.batches,
            g.config().streams,
            g.streams_used(),
            g.json_streams(),
            t0.elapsed().as_secs_f64()
        );
        println!("{}", serde_json::to_string_pretty(&m["expected"])?);
        Ok(())
    }
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Gen(a) => gen_cmd::run(a),
        Cmd::Ingest(a) => ingest::run(a),
        Cmd::Filter(a) => filter::run(a),
    }
}
