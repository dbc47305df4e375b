//! Runs the shared `LogStore` suite against the embedded engine, plus engine-specific crash cases.

use lookout_logstore::{logstore_test_suite, EmbeddedStore, EventBatch, LogStore, StoreConfig};

fn open_embedded(dir: &std::path::Path) -> Box<dyn LogStore> {
    Box::new(EmbeddedStore::open(StoreConfig::new(dir)).unwrap())
}

logstore_test_suite!(open_embedded);

mod crash_windows {
    //! The two crash windows of a flush, reproduced by putting files back the way a crash
    //! would leave them, then reopening.

    use std::fs;
    use std::path::Path;

    use lookout_logstore::testsuite::{now_ms, request, scan_all};
    use lookout_logstore::{Direction, EmbeddedStore, EventBatch, LogStore, StoreConfig};

    fn open(dir: &Path) -> EmbeddedStore {
        EmbeddedStore::open(StoreConfig::new(dir)).unwrap()
    }

    /// Group "g", stream "s", and `n` events appended one by one.
    fn setup(store: &EmbeddedStore, n: usize) {
        lookout_logstore::testsuite::group(store, "g");
        store.create_stream("g", "s", 0).unwrap();
        append_each(store, "event", n);
    }

    /// `n` events in "g"/"s", one append each.
    fn append_each(store: &EmbeddedStore, prefix: &str, n: usize) {
        let t = now_ms();
        for i in 0..n {
            // Equal lengths make equal records, so new records overwrite old ones exactly.
            let message = format!("{prefix} {i:04}");
            store
                .append("g", "s", EventBatch::from(vec![(t + i as i64, message)]), t)
                .unwrap()
                .blocking_recv()
                .unwrap()
                .unwrap();
        }
    }

    fn files(dir: &Path, ext: &str) -> Vec<std::path::PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == ext) {
                    out.push(p);
                }
            }
        }
        out
    }

    /// Flushes, and returns the one part file the data directory then holds.
    fn one_flushed_part(store: &EmbeddedStore, dir: &Path) -> std::path::PathBuf {
        store.flush().unwrap();
        let parts = files(dir, "part");
        assert_eq!(parts.len(), 1);
        parts.into_iter().next().unwrap()
    }

    /// Appends one event to g/s, a second from now, and waits until it is durable.
    fn append_after_now(store: &EmbeddedStore, message: &str) {
        let t = now_ms() + 1000;
        let event: EventBatch = [(t, message)].into_iter().collect();
        store.append("g", "s", event, t).unwrap().blocking_recv().unwrap().unwrap();
    }

    fn messages(store: &EmbeddedStore) -> Vec<String> {
        scan_all(store, request("g", Direction::Forward, None, 7)).into_iter().map(|e| e.message).collect()
    }

    /// A part the catalog lists but this lookout cannot read (here: a newer format) is left in
    /// place, its events unavailable, not deleted as an orphan: the lookout that wrote it can
    /// still read it.
    #[test]
    fn a_part_this_lookout_cannot_read_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let part = {
            let store = open(dir.path());
            setup(&store, 10);
            one_flushed_part(&store, dir.path())
        };
        let original = fs::read(&part).unwrap();
        // The footer is the last 48 bytes: the version word at 32..36, then the checksum of 0..36.
        let mut newer = original.clone();
        let footer = newer.len() - 48;
        newer[footer + 32..footer + 36].copy_from_slice(&(99u32 | 1 << 16).to_le_bytes());
        let crc = crc32fast::hash(&newer[footer..footer + 36]);
        newer[footer + 36..footer + 40].copy_from_slice(&crc.to_le_bytes());
        fs::write(&part, &newer).unwrap();
        {
            let store = open(dir.path());
            assert!(messages(&store).is_empty());
        }
        assert!(part.exists(), "an unreadable part the catalog lists was deleted");
        fs::write(&part, &original).unwrap();
        assert_eq!(messages(&open(dir.path())).len(), 10);
    }

    #[test]
    fn crash_after_the_checkpoint_before_the_wal_is_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        setup(&store, 50);
        // Keep the WAL as it was before the flush, then flush (which retires those segments).
        let wal: Vec<_> = files(dir.path(), "wal").into_iter().map(|p| (p.clone(), fs::read(&p).unwrap())).collect();
        store.flush().unwrap();
        let expected = messages(&store);
        assert_eq!(expected.len(), 50);
        drop(store);
        // The crash: the checkpoint committed but the old segments are still there.
        for (path, bytes) in wal {
            fs::write(path, bytes).unwrap();
        }
        let store = open(dir.path());
        assert_eq!(messages(&store), expected, "events covered by the checkpoint must not be replayed again");
    }

    #[test]
    fn crash_after_writing_parts_before_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        setup(&store, 50);
        let part = one_flushed_part(&store, dir.path());
        let expected = messages(&store);
        drop(store);
        // The crash: a second flush wrote its part file but never committed it.
        let orphan = part.with_file_name("00000000000fffff.part");
        fs::copy(&part, &orphan).unwrap();
        let tmp = part.with_file_name("00000000000ffffe.part.tmp");
        fs::write(&tmp, b"half a part").unwrap();
        let store = open(dir.path());
        assert!(!orphan.exists() && !tmp.exists(), "uncommitted part files are removed at start");
        assert_eq!(messages(&store), expected, "an uncommitted part adds nothing");
    }

    fn copy_dir(from: &Path, to: &Path) {
        fs::create_dir_all(to).unwrap();
        for e in fs::read_dir(from).unwrap() {
            let p = e.unwrap().path();
            let dest = to.join(p.file_name().unwrap());
            if p.is_dir() {
                copy_dir(&p, &dest);
            } else {
                fs::copy(&p, &dest).unwrap();
            }
        }
    }

    /// Retired WAL segments are reused for new ones and written from their start, over their old
    /// records. A crash image then holds, after a segment's new records, its old ones: exactly
    /// aligned when written through the page cache (the hard case: intact records), after zeros
    /// to the end of the block when written directly (as here on ext4), or the whole old segment
    /// when nothing new was written yet. Neither may come back, and every new record must. (The
    /// page-cache case is `wal.rs`'s `a_reused_segment_replays_only_its_new_records`.)
    #[test]
    fn reused_wal_segments_replay_only_their_new_records() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        setup(&store, 100); // more than a 4 KiB block: smaller segments are not kept as spares
        store.flush().unwrap();
        assert_eq!(files(dir.path(), "spare").len(), 1, "the flushed segment is kept for reuse");
        append_each(&store, "b", 3);
        let spare_len = fs::metadata(&files(dir.path(), "spare")[0]).unwrap().len();
        store.flush().unwrap();
        // The newest segment is the old one, reused: as long as before, and empty for replay.
        let reused = files(dir.path(), "wal").into_iter().max().unwrap();
        assert_eq!(fs::metadata(&reused).unwrap().len(), spare_len, "a spare was reused");
        let untouched = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), untouched.path());
        append_each(&store, "fresh", 5); // as long as "event": its records overwrite old ones exactly
        let torn = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), torn.path());
        let expected = messages(&store);
        drop(store);
        assert_eq!(expected.len(), 108);

        let store = open(untouched.path());
        let before: Vec<String> = expected.iter().filter(|m| !m.starts_with("fresh")).cloned().collect();
        assert_eq!(messages(&store), before, "nothing new was written to the reused segment");
        drop(store);
        let store = open(torn.path());
        assert_eq!(messages(&store), expected, "the 5 new records, not the 95 old ones after them");
        // And new writes after recovery go on from there.
        append_after_now(&store, "after");
        assert_eq!(messages(&store).len(), 109);
    }

    #[test]
    fn a_crash_image_with_a_torn_wal_tail_recovers_every_acknowledged_event() {
        let dir = tempfile::tempdir().unwrap();
        let store = open(dir.path());
        setup(&store, 20);
        // The live directory, copied while nothing is being written, is what kill -9 leaves:
        // acknowledged events only in the WAL, the catalog as of its last commit.
        let image = tempfile::tempdir().unwrap();
        copy_dir(dir.path(), image.path());
        let expected = messages(&store);
        drop(store);
        let seg = files(image.path(), "wal").into_iter().max().unwrap();
        let mut bytes = fs::read(&seg).unwrap();
        // Written directly, the segment has zeros after its records, to the end of their block.
        let full = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
        bytes.truncate(full);
        bytes.extend_from_slice(&[0x55; 13]); // a record cut off mid-write
        fs::write(&seg, &bytes).unwrap();
        let store = open(image.path());
        assert_eq!(messages(&store), expected);
        assert_eq!(expected.len(), 20);
        assert_eq!(fs::metadata(&seg).unwrap().len() as usize, full, "the torn tail is truncated");
        // New writes after recovery get new ids and land after the old ones.
        append_after_now(&store, "after");
        assert_eq!(messages(&store).last().map(String::as_str), Some("after"));
    }
}

#[test]
fn token_blooms_skip_blocks_without_the_word() {
    use lookout_logstore::testsuite::{now_ms, request, scan_all};
    use lookout_logstore::Direction;
    use std::sync::atomic::Ordering;
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(StoreConfig::new(dir.path())).unwrap();
    lookout_logstore::testsuite::group(&store, "g");
    let t = now_ms();
    for s in 0..20 {
        let name = format!("s{s}");
        store.create_stream("g", &name, 0).unwrap();
        let word = if s == 7 { "NEEDLE" } else { "hay" };
        let events = (0..100).map(|i| (t + i, format!("line {i} {word}"))).collect();
        store.append("g", &name, events, t).unwrap().blocking_recv().unwrap().unwrap();
    }
    store.flush().unwrap();
    let is_needle = |m: &str| m.ends_with("NEEDLE");
    let required = vec!["NEEDLE".to_string()];
    let mut req = request("g", Direction::Forward, None, 10_000);
    req.predicate = Some(&is_needle);
    req.required_tokens = &required;
    assert_eq!(scan_all(&store, req).len(), 100);
    assert_eq!(store.stats().blocks_pruned.load(Ordering::Relaxed), 19, "19 of 20 stream blocks lack the word");
}

/// The whole suite again with no room for parts' block indexes in memory: every scan reads the
/// indexes of the parts it searches, as a store holding far more than the cache does.
mod uncached_block_indexes {
    use super::*;

    fn open_uncached(dir: &std::path::Path) -> Box<dyn LogStore> {
        let mut config = StoreConfig::new(dir);
        config.block_index_cache_bytes = 0;
        Box::new(EmbeddedStore::open(config).unwrap())
    }

    logstore_test_suite!(open_uncached);
}

/// The whole suite again with merges as eager as possible, racing scans, flushes and reopenings.
mod merging {
    use super::*;
    use lookout_logstore::MergePolicy;

    fn open_merging(dir: &std::path::Path) -> Box<dyn LogStore> {
        let mut config = StoreConfig::new(dir);
        config.merge = MergePolicy { min_parts: 2, max_parts: 3, max_raw_bytes: u64::MAX };
        config.merge_interval = std::time::Duration::from_millis(2);
        // Recompression at rest races everything too.
        config.compact_at_rest_after = Some(std::time::Duration::from_millis(5));
        Box::new(EmbeddedStore::open(config).unwrap())
    }

    logstore_test_suite!(open_merging);

    /// A store's configuration that merges once a partition has `min_parts` parts (at most 8),
    /// looking every `interval`.
    fn merging_config(dir: &std::path::Path, min_parts: usize, interval: std::time::Duration) -> StoreConfig {
        let mut config = StoreConfig::new(dir);
        config.merge = MergePolicy { min_parts, max_parts: 8, max_raw_bytes: u64::MAX };
        config.merge_interval = interval;
        config
    }

    /// A flush wakes the merger: parts over the threshold are merged without waiting for the
    /// merger's next round (an hour here).
    #[test]
    fn a_flush_that_reaches_the_threshold_starts_a_merge() {
        use lookout_logstore::testsuite::now_ms;
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(merging_config(dir.path(), 2, std::time::Duration::from_secs(3600))).unwrap();
        lookout_logstore::testsuite::group(&store, "g");
        store.create_stream("g", "a", 0).unwrap();
        let t = now_ms() - 60_000;
        for round in 0..2i64 {
            store
                .append("g", "a", EventBatch::from(vec![(t + round, format!("event {round}"))]), t)
                .unwrap()
                .blocking_recv()
                .unwrap()
                .unwrap();
            store.flush().unwrap();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while store.storage_summary().parts > 1 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert_eq!(store.storage_summary().parts, 1);
    }

    #[test]
    fn merges_bound_the_parts_of_a_partition_and_keep_every_event() {
        use lookout_logstore::testsuite::{now_ms, request, scan_all};
        use lookout_logstore::Direction;
        use std::sync::atomic::Ordering;
        let dir = tempfile::tempdir().unwrap();
        let config = merging_config(dir.path(), 4, std::time::Duration::from_millis(5));
        let store = EmbeddedStore::open(config.clone()).unwrap();
        lookout_logstore::testsuite::group(&store, "g");
        store.create_stream("g", "a", 0).unwrap();
        store.create_stream("g", "b", 0).unwrap();
        let t = now_ms() - 60_000;
        for round in 0..12i64 {
            for s in ["a", "b"] {
                let events = (0..50).map(|i| (t + round * 100 + i, format!("{s} {round} {i}"))).collect();
                store.append("g", s, events, t).unwrap().blocking_recv().unwrap().unwrap();
            }
            store.flush().unwrap();
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while store.storage_summary().parts >= 4 {
            assert!(std::time::Instant::now() < deadline, "merges did not bring the parts down");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(store.stats().parts_merged.load(Ordering::Relaxed) >= 9);
        let all = scan_all(&store, request("g", Direction::Forward, None, 333));
        assert_eq!(all.len(), 1200);
        assert!(all.windows(2).all(|w| w[0].key < w[1].key));
        drop(store);
        let store = EmbeddedStore::open(config).unwrap();
        assert_eq!(scan_all(&store, request("g", Direction::Forward, None, 10_000)), all);
        let files = std::fs::read_dir(dir.path().join("parts"))
            .unwrap()
            .flat_map(|d| std::fs::read_dir(d.unwrap().path()).unwrap())
            .count();
        assert_eq!(files, store.storage_summary().parts, "merged-away part files are deleted");
    }

    #[test]
    fn partitions_at_rest_are_recompressed_once_and_keep_every_event() {
        use lookout_logstore::testsuite::{now_ms, request, scan_all};
        use lookout_logstore::Direction;
        use std::time::{Duration, Instant};
        let dir = tempfile::tempdir().unwrap();
        let mut config = StoreConfig::new(dir.path());
        config.merge_interval = Duration::from_millis(5);
        config.compact_at_rest_after = Some(Duration::from_millis(300));
        let store = EmbeddedStore::open(config.clone()).unwrap();
        lookout_logstore::testsuite::group(&store, "g");
        let t = now_ms() - 60_000;
        for s in ["a", "b", "c"] {
            store.create_stream("g", s, 0).unwrap();
            let events = (0..3000)
                .map(|i| (t + i, format!("{s} GET /api/v1/items/{} 200 {} ms user=u{}", i % 97, i % 13, i % 7)))
                .collect();
            store.append("g", s, events, t).unwrap().blocking_recv().unwrap().unwrap();
            store.flush().unwrap();
        }
        let flushed = store.storage_summary();
        assert_eq!(flushed.parts_by_codec.get(&lookout_logstore::BlockCodec::Lz4), Some(&3), "{flushed:?}");
        let before = scan_all(&store, request("g", Direction::Forward, None, 777));
        assert_eq!(before.len(), 9000);
        let deadline = Instant::now() + Duration::from_secs(20);
        while store.storage_summary().parts_by_codec.keys().any(|c| !c.is_at_rest(config.rest_level)) {
            assert!(Instant::now() < deadline, "the quiet partition was not recompressed");
            std::thread::sleep(Duration::from_millis(20));
        }
        let rest = store.storage_summary();
        assert_eq!(rest.parts, 1, "the flush-level parts were merged into one: {rest:?}");
        assert!(rest.part_file_bytes < flushed.part_file_bytes, "{rest:?} vs {flushed:?}");
        assert_eq!(scan_all(&store, request("g", Direction::Forward, None, 777)), before);
        // Done once: a partition at rest is left alone, also after a restart.
        std::thread::sleep(Duration::from_millis(400));
        assert_eq!(store.stats().parts_merged.load(std::sync::atomic::Ordering::Relaxed), 3);
        drop(store);
        let store = EmbeddedStore::open(config).unwrap();
        std::thread::sleep(Duration::from_millis(400));
        assert_eq!(store.storage_summary().parts_by_codec, rest.parts_by_codec);
        assert_eq!(store.stats().parts_merged.load(std::sync::atomic::Ordering::Relaxed), 0);
        assert_eq!(scan_all(&store, request("g", Direction::Forward, None, 10_000)), before);
    }
}

/// A partition whose merge fails (here: a damaged block in its part) is left alone for a while,
/// and the other partitions are still recompressed at rest; the damaged part stays as it was.
#[test]
fn a_partition_that_cannot_be_merged_does_not_stall_the_others() {
    use lookout_logstore::testsuite::{now_ms, request, scan_all};
    use lookout_logstore::{BlockCodec, Direction, DAY_MS};
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(dir.path());
    config.compact_at_rest_after = None;
    let store = EmbeddedStore::open(config.clone()).unwrap();
    lookout_logstore::testsuite::group(&store, "g");
    store.create_stream("g", "s", 0).unwrap();
    // Two days, flushed one after the other: the older day's part is written (and named) first,
    // and the merger looks at a group's days oldest first.
    let today = now_ms() - 60_000;
    for t in [today - 2 * DAY_MS, today] {
        let events: EventBatch = (0..3000)
            .map(|i| (t + i, format!("GET /api/v1/items/{} 200 {} ms user=u{}", i % 97, i % 13, i % 7)))
            .collect();
        store.append("g", "s", events, t).unwrap().blocking_recv().unwrap().unwrap();
        store.flush().unwrap();
    }
    assert_eq!(store.storage_summary().parts_by_codec.get(&BlockCodec::Lz4), Some(&2));
    let newer_day = scan_all(&store, request("g", Direction::Forward, None, 777))
        .into_iter()
        .filter(|e| e.key.timestamp >= today)
        .collect::<Vec<_>>();
    assert_eq!(newer_day.len(), 3000);
    drop(store);
    let mut parts: Vec<std::path::PathBuf> =
        walk(dir.path()).into_iter().filter(|p| p.extension().is_some_and(|e| e == "part")).collect();
    parts.sort();
    assert_eq!(parts.len(), 2, "{parts:?}");
    // Blocks come first in a part: a byte flipped a fifth of the way in damages one.
    let mut bytes = std::fs::read(&parts[0]).unwrap();
    let at = bytes.len() / 5;
    bytes[at] ^= 0x55;
    std::fs::write(&parts[0], &bytes).unwrap();

    config.merge_interval = Duration::from_millis(5);
    config.compact_at_rest_after = Some(Duration::from_millis(50));
    let store = EmbeddedStore::open(config).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.storage_summary().parts_by_codec.len() < 2 {
        assert!(Instant::now() < deadline, "the sound partition was not recompressed: {:?}", store.storage_summary());
        std::thread::sleep(Duration::from_millis(20));
    }
    let summary = store.storage_summary();
    assert_eq!(
        summary.parts_by_codec.get(&BlockCodec::Lz4),
        Some(&1),
        "the damaged part is left as it was: {summary:?}"
    );
    assert_eq!(summary.parts, 2);
    assert!(std::fs::read(&parts[0]).unwrap() == bytes, "the damaged part file is untouched");
    let mut newer_request = request("g", Direction::Forward, None, 777);
    newer_request.start_time = today;
    assert_eq!(scan_all(&store, newer_request), newer_day);
}

/// The partition with the most parts may have none that can be merged (each too big for the
/// policy): the merger then merges another partition's, rather than none at all.
#[test]
fn parts_too_big_to_merge_in_one_partition_leave_the_others_merging() {
    use lookout_logstore::testsuite::now_ms;
    use lookout_logstore::{MergePolicy, DAY_MS};
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(dir.path());
    config.compact_at_rest_after = None;
    config.merge = MergePolicy { min_parts: 2, max_parts: 8, max_raw_bytes: 100_000 };
    config.merge_interval = Duration::from_secs(3600);
    let store = EmbeddedStore::open(config.clone()).unwrap();
    lookout_logstore::testsuite::group(&store, "g");
    store.create_stream("g", "s", 0).unwrap();
    let today = now_ms() - 60_000;
    let append = |t: i64, n: i64, len: usize| {
        let events: EventBatch = (0..n).map(|i| (t + i, "x".repeat(len))).collect();
        store.append("g", "s", events, t).unwrap().blocking_recv().unwrap().unwrap();
        store.flush().unwrap();
    };
    // Two days ago: three parts of ~120 KB each, too big for any two to be merged.
    for k in 0..3 {
        append(today - 2 * DAY_MS + k * 10_000, 600, 200);
    }
    // Today: two small parts.
    for k in 0..2 {
        append(today + k * 10_000, 10, 50);
    }
    assert_eq!(store.storage_summary().parts, 5);
    drop(store);
    config.merge_interval = Duration::from_millis(5);
    let store = EmbeddedStore::open(config).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.storage_summary().parts != 4 {
        assert!(Instant::now() < deadline, "today's parts were not merged: {:?}", store.storage_summary());
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(store.storage_summary().parts, 4, "the big parts stay as they are");
}

/// A part bigger than the policy's merge size is still recompressed at rest, on its own.
#[test]
fn a_part_bigger_than_a_merge_is_recompressed_at_rest_alone() {
    use lookout_logstore::testsuite::now_ms;
    use lookout_logstore::{BlockCodec, MergePolicy};
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(dir.path());
    config.merge = MergePolicy { min_parts: 8, max_parts: 8, max_raw_bytes: 10_000 };
    config.merge_interval = Duration::from_millis(5);
    config.compact_at_rest_after = Some(Duration::from_millis(50));
    let store = EmbeddedStore::open(config.clone()).unwrap();
    lookout_logstore::testsuite::group(&store, "g");
    store.create_stream("g", "s", 0).unwrap();
    let t = now_ms() - 60_000;
    let events: EventBatch = (0..500).map(|i| (t + i, format!("event {i} {}", "y".repeat(100)))).collect();
    store.append("g", "s", events, t).unwrap().blocking_recv().unwrap().unwrap();
    store.flush().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while store.storage_summary().parts_by_codec.get(&BlockCodec::Zstd(config.rest_level)) != Some(&1) {
        assert!(Instant::now() < deadline, "the big part was not recompressed: {:?}", store.storage_summary());
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(store.storage_summary().parts, 1);
}

/// Every file under `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flat_map(|entry| {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path)
            } else {
                vec![path]
            }
        })
        .collect()
}

/// Flushes and merges run below the priority of requests and the WAL writer (Linux keeps a nice
/// value per thread): read back from `/proc` for the engine's own threads.
#[test]
fn background_threads_run_at_a_lower_priority() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(StoreConfig::new(dir.path())).unwrap();
    let nice_of = |name: &str| -> Vec<i64> {
        std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|task| {
                let path = task.ok()?.path();
                (std::fs::read_to_string(path.join("comm")).ok()?.trim() == name).then_some(())?;
                let stat = std::fs::read_to_string(path.join("stat")).ok()?;
                // Fields after the parenthesised command name; nice is field 19 of the whole line.
                let after_name = &stat[stat.rfind(')')? + 2..];
                after_name.split(' ').nth(16)?.parse().ok()
            })
            .collect()
    };
    // Each thread sets its own name and priority as it starts (so do those of stores other tests
    // open): until then it shows under the test's name, at the test's priority.
    let read = || (nice_of("lookout-wal"), nice_of("lookout-flush"), nice_of("lookout-merge"));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let (wal, flush, merge) = loop {
        let (wal, flush, merge) = read();
        let started = !wal.is_empty() && !flush.is_empty() && !merge.is_empty();
        let settled = started && flush.iter().chain(&merge).all(|&n| n != 0);
        if settled || std::time::Instant::now() > deadline {
            break (wal, flush, merge);
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    assert!(!wal.is_empty() && !flush.is_empty() && !merge.is_empty(), "{wal:?} {flush:?} {merge:?}");
    assert!(wal.iter().all(|&n| n == 0), "WAL writer {wal:?}");
    assert!(flush.iter().all(|&n| n == 5), "flusher {flush:?}");
    assert!(merge.iter().all(|&n| n == 10), "merger {merge:?}");
    drop(store);
}

/// Backpressure: once more is acknowledged than `max_unflushed_bytes` allows (the flusher is
/// behind), appends are refused as `Overloaded` and `has_room` says so; the flush that makes room
/// wakes `room_freed` waiters. A memtable is flushed at half the limit at the latest.
#[test]
fn appends_past_the_unflushed_limit_wait_for_a_flush() {
    use lookout_logstore::testsuite::{now_ms, stall_flushes};
    use std::future::Future;
    use std::task::{Context, Waker};

    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig::new(dir.path());
    config.max_unflushed_bytes = 1000;
    let store = EmbeddedStore::open(config).unwrap();
    lookout_logstore::testsuite::group(&store, "g");
    store.create_stream("g", "s", 0).unwrap();
    let t = now_ms();
    let append = |i: i64| store.append("g", "s", EventBatch::from(vec![(t + i, "x".repeat(600))]), t);
    let stalled = stall_flushes(dir.path());
    assert!(store.has_room(600));
    append(0).unwrap().blocking_recv().unwrap().unwrap();
    assert!(store.has_room(600), "600 bytes unflushed: under the limit");
    append(1).unwrap().blocking_recv().unwrap().unwrap();
    assert!(!store.has_room(600), "1,200 bytes unflushed: over the limit");
    assert!(matches!(append(2), Err(lookout_logstore::StoreError::Overloaded)));

    {
        let freed = store.room_freed().notified();
        let mut freed = std::pin::pin!(freed);
        freed.as_mut().enable();
        let mut cx = Context::from_waker(Waker::noop());
        assert!(freed.as_mut().poll(&mut cx).is_pending(), "no room was freed yet");
        drop(stalled);
        // The flusher retries the failed flush (after a pause), without being asked.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while freed.as_mut().poll(&mut cx).is_pending() {
            assert!(std::time::Instant::now() < deadline, "no flush freed room");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(store.has_room(600), "the flush freed room and said so");
    }
    append(2).unwrap().blocking_recv().unwrap().unwrap();
    drop(store);
    let store = EmbeddedStore::open(StoreConfig::new(dir.path())).unwrap();
    let all = lookout_logstore::testsuite::scan_all(
        &store,
        lookout_logstore::testsuite::request("g", lookout_logstore::Direction::Forward, None, 10),
    );
    assert_eq!(all.len(), 3, "every acknowledged event is kept");
}

/// Flushes commit their streams' rows to redb without holding the catalog lock; a stream deleted
/// meanwhile must stay deleted (the flush must not write its row back), across a reopen.
#[test]
fn streams_deleted_during_flushes_stay_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(EmbeddedStore::open(StoreConfig::new(dir.path())).unwrap());
    lookout_logstore::testsuite::group(&*store, "g");
    let t = lookout_logstore::testsuite::now_ms();
    for round in 0..80u64 {
        let name = format!("s{round}");
        store.create_stream("g", &name, 0).unwrap();
        store.create_stream("g", &format!("kept{round}"), 0).unwrap();
        for stream in [name.as_str(), &format!("kept{round}")] {
            store
                .append("g", stream, EventBatch::from(vec![(t, "x".repeat(100))]), t)
                .unwrap()
                .blocking_recv()
                .unwrap()
                .unwrap();
        }
        let flusher = {
            let store = store.clone();
            std::thread::spawn(move || store.flush().unwrap())
        };
        // At a different moment of the flush each round: the window is between the flush reading
        // the dirty streams and its commit.
        std::thread::sleep(std::time::Duration::from_micros(round * 50));
        store.delete_stream("g", &name).unwrap();
        flusher.join().unwrap();
    }
    drop(store);
    let store = EmbeddedStore::open(StoreConfig::new(dir.path())).unwrap();
    let mut names: Vec<String> = store.streams("g").unwrap().into_iter().map(|s| s.name).collect();
    names.sort();
    let mut want: Vec<String> = (0..80).map(|r| format!("kept{r}")).collect();
    want.sort();
    assert_eq!(names, want);
}

/// Creating a stream commits to redb outside the catalog lock; two creations of one name at once
/// must still give one stream and one `StreamExists`.
#[test]
fn concurrent_creations_of_one_stream_make_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(EmbeddedStore::open(StoreConfig::new(dir.path())).unwrap());
    lookout_logstore::testsuite::group(&*store, "g");
    for round in 0..30 {
        let name = format!("s{round}");
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (store, name) = (store.clone(), name.clone());
                std::thread::spawn(move || store.create_stream("g", &name, 0).is_ok())
            })
            .collect();
        let created = threads.into_iter().map(|t| t.join().unwrap()).filter(|ok| *ok).count();
        assert_eq!(created, 1, "round {round}");
    }
    assert_eq!(store.streams("g").unwrap().len(), 30);
}

/// The whole suite again with parts of recent data cut into the smallest blocks (each stream's
/// bloom groups split into blocks of a few hundred bytes that share one bloom): every scan reads
/// groups of several blocks, whose bloom it tests once, and merges cut them again.
mod small_split_blocks {
    use super::*;
    use lookout_logstore::BlockSplit;

    fn open_small_blocks(dir: &std::path::Path) -> Box<dyn LogStore> {
        let mut config = StoreConfig::new(dir);
        config.block_split = BlockSplit { min_raw_bytes: 256, min_span_ms: 1 };
        config.merge = lookout_logstore::MergePolicy { min_parts: 2, max_parts: 3, max_raw_bytes: u64::MAX };
        config.merge_interval = std::time::Duration::from_millis(5);
        Box::new(EmbeddedStore::open(config).unwrap())
    }

    logstore_test_suite!(open_small_blocks);
}
