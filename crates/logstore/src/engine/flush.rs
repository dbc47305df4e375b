//! The flusher thread: turns frozen memtables into part files, one per (group, UTC day), then
//! commits them with the new WAL checkpoint in one catalog transaction, and only then deletes the
//! WAL segments the checkpoint covers. A crash at any point leaves the old state (parts the catalog
//! does not list are orphans, deleted at start) or the new one. Jobs run in order and a failed one
//! is retried before any later one, so the checkpoint never skips events.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{mpsc as std_mpsc, Arc};
use std::time::Duration;

use super::{now_ms, parts_dir, FlushJob, Inner};
use crate::catalog::{CatalogChanges, PartRow};
use crate::part::{sync_dir, Part, PartWriter};
use crate::wal;
use crate::{GroupId, StoreError, StreamId, DAY_MS};

pub(super) fn run_flusher(inner: &Arc<Inner>, rx: std_mpsc::Receiver<FlushJob>, merger: &std::thread::Thread) {
    while let Ok(mut job) = rx.recv() {
        let mut attempt = 0u32;
        loop {
            match flush_memtable(inner, &job) {
                Ok(()) => {
                    merger.unpark();
                    if let Some(r) = job.reply.take() {
                        let _ = r.send(Ok(()));
                    }
                    break;
                }
                Err(e) => {
                    attempt += 1;
                    tracing::error!(error = %e, attempt, "flush failed; the data stays in the WAL and memory, retrying");
                    if let Some(r) = job.reply.take() {
                        let _ = r.send(Err(e));
                    }
                    if inner.shutting_down.load(Ordering::SeqCst) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(500 * u64::from(attempt.min(20))));
                }
            }
        }
    }
}

/// Writes a frozen memtable as parts and commits them with the checkpoint.
fn flush_memtable(inner: &Arc<Inner>, job: &FlushJob) -> Result<(), StoreError> {
    let root = &inner.config.dir;
    let now = now_ms();
    // (group, day) → stream runs.
    type Run<'m> = Vec<(crate::EventKey, i64, &'m str)>;
    let mut partitions: BTreeMap<(GroupId, i64), Vec<(StreamId, Run<'_>)>> = BTreeMap::new();
    // Where each stream goes and what retention hides, read under a short lock: the sorting and
    // copying below must not hold the catalog, or ingestion would stall during a flush.
    let placement: HashMap<StreamId, (GroupId, i64)> = {
        let catalog = inner.catalog.read();
        job.memtable
            .streams
            .keys()
            .filter_map(|id| {
                let (group_id, _) = catalog.stream_locations.get(id)?;
                let cutoff = catalog
                    .group_by_id(*group_id)
                    .and_then(|g| g.info.retention_days)
                    .map_or(i64::MIN, |d| now - i64::from(d) * DAY_MS);
                Some((*id, (*group_id, cutoff)))
            })
            .collect()
    };
    for (&stream_id, stream) in &job.memtable.streams {
        let Some(&(group_id, cutoff)) = placement.get(&stream_id) else { continue };
        let mut events: Run<'_> = Vec::new();
        for block in stream.sealed.iter().chain(std::iter::once(&stream.open)) {
            for i in 0..block.len() {
                let key = block.key(i);
                if key.timestamp >= cutoff {
                    events.push((key, block.ingestion_time(i), block.message(i)));
                }
            }
        }
        events.sort_unstable_by_key(|e| e.0);
        let mut rest = &events[..];
        while let Some(first) = rest.first() {
            let day = first.0.timestamp.div_euclid(DAY_MS);
            let len = rest.partition_point(|e| e.0.timestamp.div_euclid(DAY_MS) == day);
            partitions.entry((group_id, day)).or_default().push((stream_id, rest[..len].to_vec()));
            rest = &rest[len..];
        }
    }
    let mut written: Vec<(u64, PartRow, PathBuf)> = Vec::new();
    for ((group_id, day), mut runs) in partitions {
        runs.sort_unstable_by_key(|r| r.0);
        let id = {
            let mut c = inner.catalog.write();
            let id = c.next_id;
            c.next_id += 1;
            id
        };
        let dir = parts_dir(root, group_id);
        let mut writer = PartWriter::create(&dir, id, group_id, day)?;
        writer.set_block_split(inner.config.block_split);
        for (stream_id, run) in &runs {
            writer.write_stream_run(*stream_id, run.iter().copied())?;
        }
        let path = writer.finish()?;
        sync_dir(&dir)?;
        written.push((id, PartRow { group_id, day }, path));
    }
    sync_dir(&root.join("parts"))?;

    // The maintenance lock keeps groups and streams from being deleted until the parts are in
    // (`delete_group` and `delete_stream` take it too), so the catalog lock is only taken for
    // moments: the redb commit below waits for an fsync, and every append and read takes that lock.
    let _maintenance = inner.maintenance.lock();
    let mut opened = Vec::new();
    let mut changes = CatalogChanges { checkpoint_seq: Some(job.checkpoint_seq), ..Default::default() };
    let live: Vec<bool> = {
        let catalog = inner.catalog.read();
        written.iter().map(|(_, row, _)| catalog.group_by_id(row.group_id).is_some()).collect()
    };
    for ((id, row, path), live) in written.into_iter().zip(live) {
        if !live {
            let _ = fs::remove_file(&path);
            continue;
        }
        changes.put_parts.push((id, row));
        opened.push((row, Arc::new(Part::open(&path, id)?)));
    }
    {
        let mut catalog = inner.catalog.write();
        let dirty: Vec<StreamId> = catalog.dirty_streams.drain().collect();
        for id in dirty {
            if let Some(s) = catalog.stream_by_id_mut(id) {
                changes.put_streams.push(s.clone());
            }
        }
        changes.next_id = Some(catalog.next_id);
    }
    if let Err(e) = inner.db.commit(&changes) {
        let mut catalog = inner.catalog.write();
        for s in &changes.put_streams {
            catalog.dirty_streams.insert(s.id);
        }
        return Err(e);
    }
    {
        let mut data = inner.data.write();
        for (row, part) in opened {
            data.parts.entry(row.group_id).or_default().entry(row.day).or_default().push(part);
        }
        data.frozen.retain(|m| !Arc::ptr_eq(m, &job.memtable));
    }
    inner
        .unflushed_bytes
        .fetch_sub(job.memtable.bytes.min(inner.unflushed_bytes.load(Ordering::Relaxed)), Ordering::Relaxed);
    inner.room.notify_waiters();
    inner.stats.flushes.fetch_add(1, Ordering::Relaxed);
    inner.stats.parts_written.fetch_add(changes.put_parts.len() as u64, Ordering::Relaxed);
    // The flush is committed: a segment left behind costs only disk space (replay skips its
    // records, and the next flush retires it), while an error here would make the flusher write
    // and commit these parts a second time.
    let wal_dir = root.join("wal");
    let retired = wal::list_segments(&wal_dir).and_then(|ids| {
        ids.into_iter().filter(|id| *id < job.obsolete_below).try_for_each(|id| wal::retire_segment(&wal_dir, id))
    });
    if let Err(e) = retired {
        tracing::warn!(error = %e, "cannot retire the WAL segments this flush made obsolete; the next flush retries");
    }
    Ok(())
}
