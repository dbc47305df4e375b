//! Resident memory and CPU time of a process and its descendants, from `/proc`.

use std::collections::HashMap;

/// Clock ticks per second of `/proc/*/stat` times (USER_HZ; 100 on every Linux we run on).
const TICKS_PER_SEC: f64 = 100.0;

fn descendants(pid: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for e in dir.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
            if let Some(ppid) = stat_fields(p).and_then(|f| f.get(1).and_then(|s| s.parse::<u32>().ok())) {
                children.entry(ppid).or_default().push(p);
            }
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        if let Some(c) = children.get(&out[i]) {
            out.extend(c);
        }
        i += 1;
    }
    out
}

/// The fields of /proc/PID/stat after the command name: [state, ppid, ...].
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &s[s.rfind(')')? + 2..];
    Some(rest.split_whitespace().map(str::to_string).collect())
}

fn vm_rss(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse::<u64>().ok().map(|kb| kb * 1024)
}

/// VmRSS in bytes summed over `pid` and its descendants; `None` if `pid` is gone.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let own = vm_rss(pid)?;
    Some(own + descendants(pid).iter().skip(1).filter_map(|&p| vm_rss(p)).sum::<u64>())
}

/// User + system CPU seconds of `pid` and its descendants (children already waited for included).
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let f = stat_fields(pid)?;
    let ticks = |f: &[String]| -> f64 { (11..=14).filter_map(|i| f.get(i)?.parse::<f64>().ok()).sum() };
    let mut total = ticks(&f);
    for p in descendants(pid).into_iter().skip(1) {
        if let Some(f) = stat_fields(p) {
            total += ticks(&f);
        }
    }
    Some(total / TICKS_PER_SEC)
}

/// CPU seconds used by this process so far.
pub fn self_cpu_seconds() -> f64 {
    cpu_seconds(std::process::id()).unwrap_or(0.0)
}
