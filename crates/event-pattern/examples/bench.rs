//! Throughput benchmark: events matched per second on one core, for 10, 1,000 and 10,000
//! realistic rules (ECS, EC2 and custom application events), with [`RuleSet`] and with the
//! `quamina` crate on the same rules and events.
//!
//! `cargo run --release -p lookout-event-pattern --example bench [-- --quick] [-- --runs N]`
//!
//! Columns, all on the same 100 events (about 1.1 KB of JSON each):
//!
//! * **envelope + detail** — `RuleSet::matching_indices_event_into`: the envelope fields
//!   as strings and the detail as JSON text, which is how the server holds a PutEvents
//!   entry: end to end for the server;
//! * **JSON bytes** — `RuleSet::matching_indices_json_into` on the whole event's JSON text
//!   (UTF-8 check included): end to end from bytes;
//! * **Value** — `RuleSet::matching_indices_into` on an already parsed `serde_json::Value`
//!   (what the console's explain path has);
//! * **parse + Value** — `serde_json::from_str` then the Value path: the old end to end;
//! * **quamina 0.7** — the `quamina` crate on the JSON text.
//!
//! Each figure is measured `--runs` times (default 5; 1 with `--quick`) and shown as
//! "best (median)". `--quick` measures briefly with smaller rule sets (under a second in
//! all; the figures are cold and not meaningful, quamina's least of all); it exists so the
//! test suite can keep this example working, including its check that all paths agree.
//!
//! Rates are events per second of CPU time consumed by the benchmark thread (read from
//! `/proc/thread-self/schedstat`, wall-clock time where that is unavailable), so a busy
//! machine distorts them less; the load average is printed alongside. A pool of 100
//! distinct events is cycled: matching sees warm caches, as right after an event arrives.

use lookout_event_pattern::{Envelope, EventPattern, RuleSet};
use quamina::Quamina;
use serde_json::{json, Value};
use std::hint::black_box;
use std::time::{Duration, Instant};

/// A deterministic xorshift generator, so runs are comparable.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// How many distinct clusters, services, instances, ... rules and events draw from. It grows
/// with the rule count so that an event matches about as many rules at every size (a large
/// rule set covers more tenants, not the same few ones many times over).
#[derive(Clone, Copy)]
struct Space {
    clusters: usize,
    services: usize,
    instances: usize,
    skus: usize,
    domains: usize,
    customs: usize,
}

impl Space {
    fn for_rules(n: usize) -> Space {
        let k = (n / 1000).max(1);
        Space {
            clusters: 50 * k,
            services: 400 * k,
            instances: 5000 * k,
            skus: 2000 * k,
            domains: 100 * k,
            customs: 300 * k,
        }
    }
}

const REGIONS: [&str; 4] = ["us-east-1", "us-west-2", "eu-west-1", "ap-south-1"];

fn cluster(i: usize) -> String {
    format!("arn:aws:ecs:us-east-1:123456789012:cluster/cluster-{i}")
}

/// Rule `i` of a realistic mix; only operators both matchers implement are used.
fn rule(i: usize, rng: &mut Rng, sp: Space) -> Value {
    match i % 8 {
        0 => json!({
            "source": ["aws.ecs"],
            "detail-type": ["ECS Task State Change"],
            "detail": {
                "clusterArn": [cluster(rng.below(sp.clusters))],
                "lastStatus": ["STOPPED"],
                "stoppedReason": ["Essential container in task exited"],
                "containers": {"exitCode": [1, 137, 139, 255]}
            }
        }),
        1 => json!({
            "source": ["aws.ecs"],
            "detail-type": ["ECS Task State Change"],
            "detail": {
                "group": [{"prefix": format!("service:svc-{}", rng.below(sp.services))}],
                "desiredStatus": ["STOPPED"]
            }
        }),
        2 => json!({
            "source": ["aws.ecs"],
            "detail-type": ["ECS Task State Change"],
            "detail": {
                "clusterArn": [cluster(rng.below(sp.clusters))],
                "containers": {"exitCode": [{"anything-but": [0]}]}
            }
        }),
        3 => json!({
            "source": ["aws.ec2"],
            "detail-type": ["EC2 Instance State-change Notification"],
            "detail": {
                "state": ["terminated", "stopped"],
                "instance-id": [format!("i-{:017x}", rng.below(sp.instances))]
            }
        }),
        4 => json!({
            "source": ["com.acme.orders"],
            "detail-type": ["OrderPlaced"],
            "detail": {
                "merchant": [format!("m-{}", rng.below(sp.skus))],
                "amount": [{"numeric": [">", (rng.below(1000) * 10) as u64]}],
                "region": [REGIONS[rng.below(4)]]
            }
        }),
        5 => json!({
            "source": ["com.acme.orders"],
            "detail-type": [{"prefix": "Order"}],
            "detail": {
                "customer": {"tier": [{"equals-ignore-case": "GOLD"}]},
                "sku": [format!("SKU-{}", rng.below(sp.skus))]
            }
        }),
        6 => json!({
            "source": ["com.acme.auth"],
            "detail": {
                "user": [{"suffix": format!("@corp{}.example.com", rng.below(sp.domains))}],
                "outcome": ["FAILURE"]
            }
        }),
        _ => json!({
            "source": [{"prefix": "com.acme."}],
            "detail-type": [format!("Custom{}", rng.below(sp.customs))],
            "detail": {"severity": ["HIGH", "CRITICAL"]}
        }),
    }
}

fn ecs_event(rng: &mut Rng, sp: Space) -> Value {
    let task = format!("{:032x}", rng.next());
    let exit = [0, 0, 0, 1, 137][rng.below(5)];
    let service = rng.below(sp.services);
    json!({
        "version": "0",
        "id": format!("{:08x}-aaaa-bbbb-cccc-{:012x}", rng.next() as u32, rng.next() & 0xffff_ffff_ffff),
        "detail-type": "ECS Task State Change",
        "source": "aws.ecs",
        "account": "123456789012",
        "time": "2024-05-01T12:00:00Z",
        "region": "us-east-1",
        "resources": [format!("arn:aws:ecs:us-east-1:123456789012:task/cluster-1/{task}")],
        "detail": {
            "attachments": [{
                "id": "1789bcae-ddfb-4d10-8ebe-8ac87ddba5b8",
                "type": "eni",
                "status": "ATTACHED",
                "details": [
                    {"name": "subnetId", "value": "subnet-abcd1234"},
                    {"name": "networkInterfaceId", "value": "eni-abcd1234"},
                    {"name": "macAddress", "value": "0a:0b:0c:0d:0e:0f"},
                    {"name": "privateIPv4Address", "value": "10.0.0.139"}
                ]
            }],
            "availabilityZone": "us-east-1b",
            "clusterArn": cluster(rng.below(sp.clusters)),
            "containers": [
                {
                    "containerArn": format!("arn:aws:ecs:us-east-1:123456789012:container/{task}/app"),
                    "exitCode": exit,
                    "lastStatus": "STOPPED",
                    "name": "app",
                    "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:latest",
                    "taskArn": format!("arn:aws:ecs:us-east-1:123456789012:task/{task}"),
                    "networkInterfaces": [{"attachmentId": "1789bcae", "privateIpv4Address": "10.0.0.139"}],
                    "cpu": "0"
                },
                {
                    "containerArn": format!("arn:aws:ecs:us-east-1:123456789012:container/{task}/sidecar"),
                    "exitCode": 0,
                    "lastStatus": "STOPPED",
                    "name": "sidecar",
                    "image": "public.ecr.aws/envoy:v1.29",
                    "cpu": "0"
                }
            ],
            "createdAt": "2024-05-01T11:58:00.000Z",
            "launchType": "FARGATE",
            "cpu": "256",
            "memory": "512",
            "desiredStatus": "STOPPED",
            "group": format!("service:svc-{service}"),
            "lastStatus": "STOPPED",
            "overrides": {"containerOverrides": [{"name": "app"}, {"name": "sidecar"}]},
            "connectivity": "CONNECTED",
            "stoppedReason": "Essential container in task exited",
            "stopCode": "EssentialContainerExited",
            "taskArn": format!("arn:aws:ecs:us-east-1:123456789012:task/{task}"),
            "taskDefinitionArn": "arn:aws:ecs:us-east-1:123456789012:task-definition/app:42",
            "updatedAt": "2024-05-01T12:00:00.000Z",
            "version": 4
        }
    })
}

fn ec2_event(rng: &mut Rng, sp: Space) -> Value {
    json!({
        "version": "0",
        "id": "7bf73129-1428-4cd3-a780-95db273d1602",
        "detail-type": "EC2 Instance State-change Notification",
        "source": "aws.ec2",
        "account": "123456789012",
        "time": "2024-05-01T12:00:00Z",
        "region": "us-east-1",
        "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-abcd1111"],
        "detail": {
            "instance-id": format!("i-{:017x}", rng.below(sp.instances)),
            "state": (["pending", "running", "stopping", "stopped", "terminated"][rng.below(5)])
        }
    })
}

fn custom_event(rng: &mut Rng, sp: Space) -> Value {
    match rng.below(3) {
        0 => json!({
            "version": "0", "id": "x", "source": "com.acme.orders",
            "detail-type": (["OrderPlaced", "OrderShipped"][rng.below(2)]),
            "account": "123456789012", "time": "2024-05-01T12:00:00Z", "region": "us-east-1", "resources": [],
            "detail": {
                "orderId": format!("o-{}", rng.next() % 1_000_000),
                "merchant": format!("m-{}", rng.below(sp.skus)),
                "amount": (rng.below(20_000) as f64) / 2.0,
                "region": REGIONS[rng.below(4)],
                "sku": format!("SKU-{}", rng.below(sp.skus)),
                "customer": {"id": "c-1", "tier": (["gold", "Silver", "GOLD"][rng.below(3)])},
                "items": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 2}]
            }
        }),
        1 => json!({
            "version": "0", "id": "y", "source": "com.acme.auth", "detail-type": "Login",
            "account": "123456789012", "time": "2024-05-01T12:00:00Z", "region": "us-east-1", "resources": [],
            "detail": {
                "user": format!("user{}@corp{}.example.com", rng.below(1000), rng.below(sp.domains)),
                "outcome": (["SUCCESS", "FAILURE"][rng.below(2)]),
                "ip": "203.0.113.9"
            }
        }),
        _ => json!({
            "version": "0", "id": "z", "source": "com.acme.monitor",
            "detail-type": format!("Custom{}", rng.below(sp.customs)),
            "account": "123456789012", "time": "2024-05-01T12:00:00Z", "region": "us-east-1", "resources": [],
            "detail": {"severity": (["LOW", "HIGH", "CRITICAL"][rng.below(3)]), "message": "disk almost full"}
        }),
    }
}

fn events(n: usize, rng: &mut Rng, sp: Space) -> Vec<Value> {
    (0..n)
        .map(|i| match i % 4 {
            0 | 1 => ecs_event(rng, sp),
            2 => ec2_event(rng, sp),
            _ => custom_event(rng, sp),
        })
        .collect()
}

/// CPU time used by this thread so far, in nanoseconds, when the kernel reports it.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat").ok()?.split_whitespace().next()?.parse().ok()
}

/// Runs `f` over the items repeatedly for about `budget` of wall time; returns
/// (items per CPU second, matches per item).
fn measure<T>(items: &[T], budget: Duration, mut f: impl FnMut(&T) -> usize) -> (f64, f64) {
    let cpu0 = thread_cpu_ns();
    let start = Instant::now();
    let (mut done, mut matched) = (0usize, 0usize);
    while start.elapsed() < budget {
        for item in items {
            matched += f(item);
        }
        done += items.len();
    }
    let wall = start.elapsed().as_secs_f64();
    let secs = match (cpu0, thread_cpu_ns()) {
        (Some(a), Some(b)) if b > a => (b - a) as f64 / 1e9,
        _ => wall,
    };
    (done as f64 / secs, matched as f64 / done as f64)
}

fn rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2} M/s", r / 1e6)
    } else {
        format!("{:.0} k/s", r / 1e3)
    }
}

/// "best (median)" of several measurements of a rate.
fn best_median(mut rates: Vec<f64>) -> String {
    rates.sort_by(|a, b| b.total_cmp(a));
    if rates.len() == 1 {
        return rate(rates[0]);
    }
    format!("{} ({})", rate(rates[0]), rate(rates[rates.len() / 2]))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_owned())
}

/// An event as the server holds it: envelope fields and the detail's JSON text.
struct Parts {
    scalars: [String; 7],
    resources: Vec<String>,
    detail: String,
}

impl Parts {
    fn of(event: &Value) -> Parts {
        let field = |key: &str| event[key].as_str().expect("envelope string").to_owned();
        Parts {
            scalars: ["version", "id", "detail-type", "source", "account", "time", "region"].map(field),
            resources: event["resources"]
                .as_array()
                .expect("resources")
                .iter()
                .map(|r| r.as_str().expect("resource").to_owned())
                .collect(),
            detail: event["detail"].to_string(),
        }
    }

    fn envelope(&self) -> Envelope<'_, String> {
        let [version, id, detail_type, source, account, time, region] = &self.scalars;
        Envelope { version, id, detail_type, source, account, time, region, resources: &self.resources }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let runs: usize = args
        .iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(if quick { 1 } else { 5 })
        .max(1);
    let (sizes, budget): (&[usize], Duration) = if quick {
        (&[10, 100, 1000], Duration::from_millis(30))
    } else {
        (&[10, 1_000, 10_000], Duration::from_millis(600))
    };
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let sample = events(100, &mut rng, Space::for_rules(1000));
    let bytes: usize = sample.iter().map(|e| e.to_string().len()).sum();
    println!(
        "One core, CPU time; 100 distinct events per row ({} bytes of JSON on average), ECS/EC2/custom mix; best (median) of {runs} run(s); load average {} at start.",
        bytes / sample.len(),
        load_average()
    );
    println!();
    println!(
        "| rules | envelope + detail | JSON bytes | Value (pre-parsed) | serde_json parse + Value | quamina 0.7 (bytes) | matches/event (ours / quamina) | build (ours / quamina) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for &n in sizes {
        let space = Space::for_rules(n);
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let events = events(100, &mut rng, space);
        let texts: Vec<String> = events.iter().map(Value::to_string).collect();
        let parts: Vec<Parts> = events.iter().map(Parts::of).collect();
        let mut rng = Rng(42 + n as u64);
        let rules: Vec<Value> = (0..n).map(|i| rule(i, &mut rng, space)).collect();
        let texts_rules: Vec<String> = rules.iter().map(Value::to_string).collect();

        let t = Instant::now();
        let patterns: Vec<EventPattern> =
            texts_rules.iter().map(|r| EventPattern::parse(r).expect("valid rule")).collect();
        let set = RuleSet::new(patterns.iter().enumerate());
        let ours_build = t.elapsed();

        let t = Instant::now();
        let mut q = Quamina::<usize>::new();
        for (i, r) in texts_rules.iter().enumerate() {
            q.add_pattern(i, r).expect("quamina accepts the rule");
        }
        let q_build = t.elapsed();

        // All paths must give the same answers, event by event.
        let mut out = Vec::new();
        let mut other = Vec::new();
        for ((e, t), p) in events.iter().zip(&texts).zip(&parts) {
            set.matching_indices_into(e, &mut out);
            set.matching_indices_json_into(t.as_bytes(), &mut other).expect("valid JSON");
            assert_eq!(out, other, "JSON text and Value paths disagree on {t}");
            set.matching_indices_event_into(&p.envelope(), &p.detail, &mut other).expect("valid JSON");
            assert_eq!(out, other, "envelope and Value paths disagree on {t}");
        }

        let (mut by_event, mut by_bytes, mut by_value, mut by_parse, mut by_quamina) =
            (vec![], vec![], vec![], vec![], vec![]);
        let mut ours_m = 0.0;
        let mut theirs_m = None;
        let mut quamina_panics = false;
        for _ in 0..runs {
            let (r, m) = measure(&parts, budget, |p| {
                set.matching_indices_event_into(black_box(&p.envelope()), black_box(&p.detail), &mut out)
                    .expect("json");
                out.len()
            });
            by_event.push(r);
            ours_m = m;
            by_bytes.push(
                measure(&texts, budget, |t| {
                    set.matching_indices_json_into(black_box(t).as_bytes(), &mut out).expect("json");
                    out.len()
                })
                .0,
            );
            by_value.push(
                measure(&events, budget, |e| {
                    set.matching_indices_into(black_box(e), &mut out);
                    out.len()
                })
                .0,
            );
            by_parse.push(
                measure(&texts, budget, |t| {
                    let v: Value = serde_json::from_str(black_box(t)).expect("json");
                    set.matching_indices_into(&v, &mut out);
                    out.len()
                })
                .0,
            );
            if quamina_panics {
                continue;
            }
            // quamina 0.7 panics on large rule sets ("per-state field_transitions.len() fits
            // in u8"); report that instead of a figure.
            let default_hook = std::panic::take_hook();
            std::panic::set_hook(Box::new(|_| {}));
            let quamina = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                measure(&texts, budget, |t| {
                    q.matches_for_event(black_box(t).as_bytes()).expect("quamina matches").len()
                })
            }));
            std::panic::set_hook(default_hook);
            match quamina {
                Ok((r, m)) => {
                    by_quamina.push(r);
                    theirs_m = Some(m);
                }
                Err(_) => quamina_panics = true,
            }
        }
        let theirs = if quamina_panics { "panics".to_owned() } else { best_median(by_quamina) };
        let theirs_m = theirs_m.map_or("—".to_owned(), |m| format!("{m:.2}"));
        println!(
            "| {n} | {} | {} | {} | {} | {theirs} | {ours_m:.2} / {theirs_m} | {:.1} ms / {:.1} ms |",
            best_median(by_event),
            best_median(by_bytes),
            best_median(by_value),
            best_median(by_parse),
            ours_build.as_secs_f64() * 1e3,
            q_build.as_secs_f64() * 1e3
        );
    }
    println!();
    println!("load average {} at end.", load_average());
}
