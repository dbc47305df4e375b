//! The behavioural test suite every `LogStore` implementation must pass (run by each backend's
//! tests through `logstore_test_suite!`). Each case gets a fresh directory and a factory that can
//! reopen the store on it, to test durability as well as behaviour.

use std::collections::BTreeMap;
use std::path::Path;

use crate::{
    Direction, EventKey, GroupUpdate, LogStore, NewGroup, ScanPage, ScanRequest, StoreError, StoredEvent,
    StreamSelection, DAY_MS,
};

/// Opens a store on a directory.
pub type Factory<'a> = &'a dyn Fn(&Path) -> Box<dyn LogStore>;

pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Creates a STANDARD group with no tags.
pub fn group(store: &dyn LogStore, name: &str) {
    store
        .create_group(NewGroup {
            name: name.into(),
            creation_time: now_ms(),
            log_group_class: "STANDARD".into(),
            tags: BTreeMap::new(),
        })
        .unwrap();
}

fn put(store: &dyn LogStore, g: &str, s: &str, events: &[(i64, &str)]) -> (u64, u64) {
    let events = events.iter().map(|(t, m)| (*t, m.to_string())).collect();
    let ack = store.append(g, s, events, now_ms()).unwrap().blocking_recv().unwrap().unwrap();
    (ack.first_seq, ack.last_seq)
}

fn cost(_: &str, m: &str) -> usize {
    m.len() + 26
}

/// Marks a block's messages that contain `needle`, message by message (as
/// `ScanRequest::candidates` is given them: the messages one after the other, and their ends).
fn containing(needle: &str, data: &[u8], ends: &[u32]) -> Option<Vec<bool>> {
    let mut start = 0usize;
    let marks = ends.iter().map(|&end| {
        let message = &data[start..end as usize];
        start = end as usize;
        memchr::memmem::find(message, needle.as_bytes()).is_some()
    });
    Some(marks.collect())
}

pub fn request<'a>(group: &'a str, direction: Direction, bound: Option<EventKey>, limit: usize) -> ScanRequest<'a> {
    ScanRequest {
        group,
        streams: StreamSelection::All,
        start_time: 0,
        end_time: i64::MAX,
        direction,
        bound,
        limit,
        max_bytes: 1 << 20,
        event_cost: &cost,
        predicate: None,
        required_tokens: &[],
        candidates: None,
        json_objects_only: false,
        scan_budget_bytes: u64::MAX,
        continuation: None,
    }
}

/// Reads everything a request selects, page by page, following the resume bound.
pub fn scan_all(store: &dyn LogStore, mut req: ScanRequest<'_>) -> Vec<StoredEvent> {
    let mut out = Vec::new();
    let mut pages = 0;
    loop {
        let ScanPage { events, resume, .. } = store.scan(&req).unwrap();
        pages += 1;
        assert!(pages < 100_000, "scan does not make progress");
        match req.direction {
            Direction::Forward => out.extend(events),
            Direction::Backward => {
                let mut page = events;
                page.extend(out);
                out = page;
            }
        }
        match resume {
            Some(b) => req.bound = Some(b),
            None => return out,
        }
    }
}

fn messages(events: &[StoredEvent]) -> Vec<&str> {
    events.iter().map(|e| e.message.as_str()).collect()
}

pub fn catalog_lifecycle(dir: &Path, open: Factory<'_>) {
    let store = open(dir);
    group(&*store, "b");
    group(&*store, "a");
    assert!(matches!(
        store.create_group(NewGroup {
            name: "a".into(),
            creation_time: 0,
            log_group_class: "STANDARD".into(),
            tags: BTreeMap::new()
        }),
        Err(StoreError::GroupExists)
    ));
    let names: Vec<String> = store.list_groups(None, &|_| true, 10).into_iter().map(|g| g.name).collect();
    assert_eq!(names, ["a", "b"]);
    let after: Vec<String> = store.list_groups(Some("a"), &|_| true, 10).into_iter().map(|g| g.name).collect();
    assert_eq!(after, ["b"]);
    store.create_stream("a", "s1", 5).unwrap();
    assert!(matches!(store.create_stream("a", "s1", 5), Err(StoreError::StreamExists)));
    assert!(matches!(store.create_stream("zz", "s1", 5), Err(StoreError::GroupNotFound)));
    store.update_group("a", GroupUpdate::SetRetention(Some(7))).unwrap();
    store.update_group("a", GroupUpdate::Tag([("k".to_string(), "v".to_string())].into())).unwrap();
    drop(store);
    let store = open(dir);
    let a = store.group("a").unwrap();
    assert_eq!(a.retention_days, Some(7));
    assert_eq!(a.tags.get("k").map(String::as_str), Some("v"));
    assert_eq!(store.stream("a", "s1").unwrap().creation_time, 5);
    store.delete_stream("a", "s1").unwrap();
    assert!(matches!(store.stream("a", "s1"), Err(StoreError::StreamNotFound)));
    store.delete_group("b").unwrap();
    assert!(matches!(store.group("b"), Err(StoreError::GroupNotFound)));
    drop(store);
    let store = open(dir);
    assert!(store.group("b").is_err());
    assert!(store.streams("a").unwrap().is_empty());
}

pub fn appends_are_durable_and_ordered(dir: &Path, open: Factory<'_>) {
    let t = now_ms() - 60_000;
    let store = open(dir);
    group(&*store, "g");
    store.create_stream("g", "x", t).unwrap();
    store.create_stream("g", "y", t).unwrap();
    put(&*store, "g", "x", &[(t + 2, "x2"), (t + 5, "x5")]);
    put(&*store, "g", "y", &[(t + 1, "y1"), (t + 5, "y5")]);
    store.flush().unwrap();
    put(&*store, "g", "x", &[(t + 3, "x3")]);
    let before = scan_all(&*store, request("g", Direction::Forward, None, 2));
    assert_eq!(messages(&before), ["y1", "x2", "x3", "x5", "y5"]);
    drop(store);
    let store = open(dir);
    let after = scan_all(&*store, request("g", Direction::Forward, None, 3));
    assert_eq!(before, after, "events and their keys survive a restart unchanged");
    let backward = scan_all(&*store, request("g", Direction::Backward, None, 2));
    assert_eq!(before, backward);
    let x = store.stream("g", "x").unwrap();
    assert_eq!((x.first_event_timestamp, x.last_event_timestamp), (Some(t + 2), Some(t + 5)));
    // New appends after a restart get new, larger sequence numbers.
    let (first, _) = put(&*store, "g", "x", &[(t + 9, "x9")]);
    assert!(before.iter().all(|e| e.key.seq < first));
}

/// `usage()` counts what was appended and, once flushed, what the parts hold.
pub fn usage_counts_intake_and_holdings(dir: &Path, open: Factory<'_>) {
    let t = now_ms() - 60_000;
    let store = open(dir);
    let before = store.usage();
    group(&*store, "g");
    store.create_stream("g", "x", t).unwrap();
    let message = "a message that compresses well ".repeat(20);
    let events: Vec<(i64, &str)> = (0..200).map(|i| (t + i, message.as_str())).collect();
    put(&*store, "g", "x", &events);
    let after = store.usage();
    assert_eq!(after.appended_events - before.appended_events, 200);
    assert!(after.wal_syncs > before.wal_syncs, "an acknowledged append was synced");
    assert!(after.appended_bytes - before.appended_bytes >= 200 * message.len() as u64);
    store.flush().unwrap();
    let flushed = store.usage();
    assert!(flushed.raw_bytes >= 200 * message.len() as u64, "{flushed:?}");
    assert!(flushed.stored_bytes > 0 && flushed.stored_bytes < flushed.raw_bytes, "{flushed:?}");
}

pub fn deleted_streams_and_groups_vanish(dir: &Path, open: Factory<'_>) {
    let t = now_ms();
    let store = open(dir);
    group(&*store, "g");
    store.create_stream("g", "s", t).unwrap();
    put(&*store, "g", "s", &[(t, "old")]);
    store.flush().unwrap();
    put(&*store, "g", "s", &[(t, "old2")]);
    store.delete_stream("g", "s").unwrap();
    store.create_stream("g", "s", t).unwrap();
    put(&*store, "g", "s", &[(t, "new")]);
    assert_eq!(messages(&scan_all(&*store, request("g", Direction::Forward, None, 10))), ["new"]);
    drop(store);
    let store = open(dir);
    assert_eq!(messages(&scan_all(&*store, request("g", Direction::Forward, None, 10))), ["new"]);
    store.delete_group("g").unwrap();
    group(&*store, "g");
    store.create_stream("g", "s", t).unwrap();
    assert!(scan_all(&*store, request("g", Direction::Forward, None, 10)).is_empty());
    drop(store);
    let store = open(dir);
    assert!(scan_all(&*store, request("g", Direction::Forward, None, 10)).is_empty());
}

pub fn retention_drops_old_days(dir: &Path, open: Factory<'_>) {
    let now = now_ms();
    let store = open(dir);
    group(&*store, "g");
    store.create_stream("g", "s", now).unwrap();
    put(&*store, "g", "s", &[(now - 10 * DAY_MS, "ten days"), (now - 9 * DAY_MS, "nine days")]);
    put(&*store, "g", "s", &[(now - 1000, "recent")]);
    store.flush().unwrap();
    store.update_group("g", GroupUpdate::SetRetention(Some(7))).unwrap();
    assert_eq!(messages(&scan_all(&*store, request("g", Direction::Forward, None, 10))), ["recent"]);
    store.enforce_retention(now).unwrap();
    drop(store);
    let store = open(dir);
    store.update_group("g", GroupUpdate::SetRetention(None)).unwrap();
    // Removing the policy does not bring dropped days back: they were deleted, not hidden.
    assert_eq!(messages(&scan_all(&*store, request("g", Direction::Forward, None, 10))), ["recent"]);
}

pub fn filters_limits_and_budgets(dir: &Path, open: Factory<'_>) {
    let t = now_ms() - 3_600_000;
    let store = open(dir);
    group(&*store, "g");
    for s in ["app-1", "app-2", "web-1"] {
        store.create_stream("g", s, t).unwrap();
    }
    for i in 0..300i64 {
        let s = ["app-1", "app-2", "web-1"][(i % 3) as usize];
        let msg = if i % 10 == 0 { format!("ERROR {i}") } else { format!("info {i}") };
        put(&*store, "g", s, &[(t + i, msg.as_str())]);
        if i == 150 {
            store.flush().unwrap();
        }
    }
    let is_error = |m: &str| m.starts_with("ERROR");
    let mut req = request("g", Direction::Forward, None, 7);
    req.predicate = Some(&is_error);
    req.scan_budget_bytes = 100;
    let errors = scan_all(&*store, req);
    assert_eq!(errors.len(), 30);
    assert!(errors.windows(2).all(|w| w[0].key < w[1].key));
    let mut req = request("g", Direction::Forward, None, 1000);
    req.streams = StreamSelection::Prefix("app-".into());
    assert_eq!(scan_all(&*store, req).len(), 200);
    let mut req = request("g", Direction::Forward, None, 1000);
    req.streams = StreamSelection::Names(vec!["web-1".into(), "nope".into()]);
    req.start_time = t + 30;
    req.end_time = t + 60;
    let web = scan_all(&*store, req);
    assert_eq!(web.len(), 10);
    assert!(web.iter().all(|e| &*e.stream_name == "web-1"));
    let mut req = request("g", Direction::Forward, None, 1000);
    req.max_bytes = 100;
    let page = store.scan(&req).unwrap();
    assert!(page.events.len() <= 4 && page.resume.is_some());
}

/// Words planted in the random model's messages, so that token-pruned scans have blocks to skip.
const VOCABULARY: [&str; 7] = ["alpha", "ERROR", "gamma42", "délta", "time_out", "rare", "404"];

/// A deterministic source of numbers below a bound (xorshift), for the randomized cases.
fn random_below(seed: u64) -> impl FnMut(u64) -> u64 {
    let mut rng = seed.max(1);
    move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    }
}

/// Random appends (timestamps out of order across batches), random flushes and reopenings:
/// every scan, in both directions and any page size, equals a brute-force model — including scans
/// that skip blocks by their token blooms (an index must never lose an event).
pub fn random_model_check(dir: &Path, open: Factory<'_>, seed: u64) {
    let mut next = random_below(seed);
    let base = now_ms() - 2 * DAY_MS;
    let mut store = open(dir);
    group(&*store, "g");
    let streams = ["a", "b", "c", "d"];
    for s in streams {
        store.create_stream("g", s, base).unwrap();
    }
    let mut model: Vec<(EventKey, String, String)> = Vec::new();
    for round in 0..60 {
        let s = streams[next(4) as usize];
        let mut ts = base + next(2 * DAY_MS as u64) as i64;
        let n = 1 + next(40) as usize;
        let mut batch = Vec::new();
        for i in 0..n {
            ts += next(3) as i64;
            let word = VOCABULARY[next(VOCABULARY.len() as u64) as usize];
            let message = if next(5) == 0 {
                format!("{{\"w\": \"{word}\", \"r\": {round}}}") // a JSON object, for the bloom's mark
            } else {
                format!("r{round} e{i} {word} {}", "x".repeat(next(50) as usize))
            };
            batch.push((ts, message));
        }
        let ack = store.append("g", s, batch.clone().into(), now_ms()).unwrap().blocking_recv().unwrap().unwrap();
        for (i, (ts, m)) in batch.into_iter().enumerate() {
            model.push((EventKey { timestamp: ts, seq: ack.first_seq + i as u64 }, s.to_string(), m));
        }
        match next(10) {
            0 => store.flush().unwrap(),
            1 => {
                drop(store);
                store = open(dir);
            }
            _ => {}
        }
    }
    model.sort_by_key(|e| e.0);
    for limit in [1usize, 3, 17, 10_000] {
        for direction in [Direction::Forward, Direction::Backward] {
            let mut req = request("g", direction, None, limit);
            req.scan_budget_bytes = if limit == 3 { 1 } else { u64::MAX };
            let got = scan_all(&*store, req);
            let got: Vec<_> = got.iter().map(|e| (e.key, e.stream_name.to_string(), e.message.clone())).collect();
            assert_eq!(got, model, "limit {limit} {direction:?}");
        }
    }
    // Indexed scans: a whole-word predicate with its word as a required token, against brute force.
    for word in VOCABULARY.iter().chain(["absent", "e1", "x"].iter()) {
        let contains = |m: &str| crate::bloom::tokens(m).any(|t| t == *word);
        let required: Vec<String> = crate::bloom::tokens(word).map(str::to_owned).collect();
        for limit in [2usize, 10_000] {
            let mut req = request("g", Direction::Forward, None, limit);
            req.predicate = Some(&contains);
            req.required_tokens = &required;
            let got: Vec<_> = scan_all(&*store, req).into_iter().map(|e| e.key).collect();
            let want: Vec<_> = model.iter().filter(|e| contains(&e.2)).map(|e| e.0).collect();
            assert_eq!(got, want, "word {word:?} limit {limit}");
        }
    }
    // Scans with candidate filters: only the messages a block's filter marks are tested, against
    // brute force; "xr" and " r" only ever occur across two messages ("…xxx" + "r7 e0 …").
    for needle in ["ERROR", "lta", "e1 ", "xr", " r", "xx", "_out", "absent"] {
        let contains = |m: &str| m.contains(needle);
        let candidates = |data: &[u8], ends: &[u32]| containing(needle, data, ends);
        for (limit, direction) in [(3usize, Direction::Forward), (10_000, Direction::Forward), (7, Direction::Backward)]
        {
            let mut req = request("g", direction, None, limit);
            req.predicate = Some(&contains);
            req.candidates = Some(&candidates);
            let got: Vec<_> = scan_all(&*store, req).into_iter().map(|e| e.key).collect();
            let want: Vec<_> = model.iter().filter(|e| contains(&e.2)).map(|e| e.0).collect();
            assert_eq!(got, want, "literal {needle:?} limit {limit} {direction:?}");
        }
    }
    // JSON-only scans: blocks without a JSON object are skipped by their bloom's mark.
    for word in ["ERROR", "rare", "absent"] {
        let json_with = |m: &str| crate::bloom::is_json_object(m) && m.contains(word);
        let mut req = request("g", Direction::Forward, None, 4);
        req.predicate = Some(&json_with);
        req.json_objects_only = true;
        let got: Vec<_> = scan_all(&*store, req).into_iter().map(|e| e.key).collect();
        let want: Vec<_> = model.iter().filter(|e| json_with(&e.2)).map(|e| e.0).collect();
        assert_eq!(got, want, "JSON objects with {word:?}");
    }
    // A time window on one stream.
    let (lo, hi) = (base + DAY_MS / 2, base + DAY_MS + DAY_MS / 3);
    let mut req = request("g", Direction::Forward, None, 5);
    req.streams = StreamSelection::Names(vec!["b".into()]);
    req.start_time = lo;
    req.end_time = hi;
    let got: Vec<_> = scan_all(&*store, req).into_iter().map(|e| e.key).collect();
    let want: Vec<_> =
        model.iter().filter(|e| e.1 == "b" && e.0.timestamp >= lo && e.0.timestamp < hi).map(|e| e.0).collect();
    assert_eq!(got, want);
}

/// Pages that continue from the previous page's cursor (`ScanRequest::continuation`) hold exactly
/// what a page computed from its bound alone holds at that moment — first over still data (where
/// they must also equal a brute-force model, and cursors must actually be used), then while
/// events are appended (before and inside the range left), memtables flushed, streams deleted and
/// recreated and the store reopened between pages.
pub fn cursor_pages_equal_fresh_pages(dir: &Path, open: Factory<'_>, seed: u64) {
    let mut next = random_below(seed);
    let base = now_ms() - DAY_MS;
    let mut store = open(dir);
    group(&*store, "g");
    let streams = ["a", "b", "c", "d", "e"];
    for s in streams {
        store.create_stream("g", s, base).unwrap();
    }
    let mut model: Vec<(EventKey, String)> = Vec::new();
    let append = |store: &dyn LogStore, next: &mut dyn FnMut(u64) -> u64, round: usize| {
        let s = streams[next(streams.len() as u64) as usize];
        let mut ts = base + next(DAY_MS as u64 / 2) as i64;
        let batch: Vec<(i64, String)> = (0..1 + next(60) as usize)
            .map(|i| {
                ts += next(4) as i64;
                let word = VOCABULARY[next(VOCABULARY.len() as u64) as usize];
                (ts, format!("r{round} e{i} {word} {}", "y".repeat(next(30) as usize)))
            })
            .collect();
        let ack = store.append("g", s, batch.clone().into(), now_ms()).unwrap().blocking_recv().unwrap().unwrap();
        batch
            .into_iter()
            .enumerate()
            .map(|(i, (ts, m))| (EventKey { timestamp: ts, seq: ack.first_seq + i as u64 }, m))
            .collect::<Vec<_>>()
    };
    for round in 0..16 {
        model.extend(append(&*store, &mut next, round));
        if round % 4 == 3 {
            store.flush().unwrap();
        }
    }
    model.sort_by_key(|e| e.0);
    let has_error = |m: &str| m.contains("ERROR");
    let has_rare = |m: &str| crate::bloom::tokens(m).any(|t| t == "rare");
    let rare = vec!["rare".to_string()];
    let error_candidates = |data: &[u8], ends: &[u32]| containing("ERROR", data, ends);
    type Query<'q> = (Option<&'q (dyn Fn(&str) -> bool + Sync)>, Option<crate::CandidateFilter<'q>>, &'q [String]);
    let queries: [Query<'_>; 3] =
        [(None, None, &[]), (Some(&has_error), Some(&error_candidates), &[]), (Some(&has_rare), None, &rare)];
    let keys = |events: &[StoredEvent]| events.iter().map(|e| e.key).collect::<Vec<_>>();
    let resumed_before = store.usage().scan_cursors_resumed;
    for moving in [false, true] {
        for (q, (predicate, candidates, tokens)) in queries.iter().enumerate() {
            for limit in [1usize, 7, 60] {
                let make = |bound: Option<EventKey>, continuation: Option<crate::Continuation>| {
                    let mut req = request("g", Direction::Forward, bound, limit);
                    req.predicate = *predicate;
                    req.candidates = *candidates;
                    req.required_tokens = tokens;
                    req.continuation = continuation;
                    req
                };
                let (mut bound, mut cursor, mut all, mut pages) = (None, None, Vec::new(), 0);
                loop {
                    let fresh = store.scan(&make(bound, None)).unwrap();
                    let page = store.scan(&make(bound, Some(crate::Continuation { query: q as u64, cursor }))).unwrap();
                    assert_eq!(keys(&page.events), keys(&fresh.events), "query {q} limit {limit} page {pages}");
                    all.extend(keys(&page.events));
                    pages += 1;
                    assert!(pages < 10_000, "no progress");
                    let Some(resume) = page.resume else { break };
                    assert!(resume > bound.unwrap_or(EventKey::MIN), "progress");
                    (bound, cursor) = (Some(resume), page.cursor);
                    if moving {
                        match next(6) {
                            0 | 1 => {
                                let round = 100 + pages;
                                append(&*store, &mut next, round);
                            }
                            2 => store.flush().unwrap(),
                            3 => {
                                let s = streams[next(streams.len() as u64) as usize];
                                store.delete_stream("g", s).unwrap();
                                store.create_stream("g", s, base).unwrap();
                            }
                            4 if next(4) == 0 => {
                                drop(store);
                                store = open(dir);
                            }
                            _ => {}
                        }
                    }
                }
                if !moving {
                    let pred = |m: &str| predicate.is_none_or(|p| p(m));
                    let want: Vec<EventKey> = model.iter().filter(|e| pred(&e.1)).map(|e| e.0).collect();
                    assert_eq!(all, want, "query {q} limit {limit} against the model");
                }
            }
        }
        if !moving {
            assert!(store.usage().scan_cursors_resumed > resumed_before, "pages continued from cursors");
        }
    }
}

/// Declares one `#[test]` per suite case for a backend: `logstore_test_suite!(|dir| Box::new(...))`.
#[macro_export]
macro_rules! logstore_test_suite {
    ($factory:expr) => {
        mod logstore_suite {
            use super::*;
            fn run(case: fn(&std::path::Path, $crate::testsuite::Factory<'_>)) {
                let dir = tempfile::tempdir().unwrap();
                let factory = $factory;
                case(dir.path(), &factory);
            }
            #[test]
            fn catalog_lifecycle() {
                run($crate::testsuite::catalog_lifecycle);
            }
            #[test]
            fn appends_are_durable_and_ordered() {
                run($crate::testsuite::appends_are_durable_and_ordered);
            }
            #[test]
            fn usage_counts_intake_and_holdings() {
                run($crate::testsuite::usage_counts_intake_and_holdings);
            }
            #[test]
            fn deleted_streams_and_groups_vanish() {
                run($crate::testsuite::deleted_streams_and_groups_vanish);
            }
            #[test]
            fn retention_drops_old_days() {
                run($crate::testsuite::retention_drops_old_days);
            }
            #[test]
            fn filters_limits_and_budgets() {
                run($crate::testsuite::filters_limits_and_budgets);
            }
            #[test]
            fn cursor_pages_equal_fresh_pages() {
                for seed in 1..=4u64 {
                    let dir = tempfile::tempdir().unwrap();
                    let factory = $factory;
                    $crate::testsuite::cursor_pages_equal_fresh_pages(dir.path(), &factory, seed * 104_729);
                }
            }
            #[test]
            fn random_model_check() {
                for seed in 1..=8u64 {
                    let dir = tempfile::tempdir().unwrap();
                    let factory = $factory;
                    $crate::testsuite::random_model_check(dir.path(), &factory, seed * 7919);
                }
            }
        }
    };
}

/// Makes every flush of the embedded store in `dir` fail until dropped: its parts directory is
/// moved aside and a file put in its place, so acknowledged events stay unflushed, as when the
/// flusher falls behind. Dropping it puts the directory back; the flusher's retry then succeeds.
pub struct StalledFlushes {
    parts: std::path::PathBuf,
    aside: std::path::PathBuf,
}

pub fn stall_flushes(dir: &Path) -> StalledFlushes {
    let parts = dir.join("parts");
    let aside = dir.join("parts.stalled");
    std::fs::rename(&parts, &aside).unwrap();
    std::fs::write(&parts, b"not a directory").unwrap();
    StalledFlushes { parts, aside }
}

impl Drop for StalledFlushes {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.parts);
        let _ = std::fs::rename(&self.aside, &self.parts);
    }
}
