//! The writer thread: the only writer of the WAL. It takes every append queued since its last
//! sync, assigns sequence numbers in order, writes one buffer and fdatasyncs once for all of them
//! (group commit), then publishes the events in the memtable and acknowledges them. It also
//! freezes the memtable behind a fresh WAL segment when a flush is due.

use std::sync::atomic::Ordering;
use std::sync::{mpsc as std_mpsc, Arc};

use tokio::sync::{mpsc, oneshot};

use super::{update_stream_stats, AppendRequest, FlushJob, Inner, WriterMsg};
use crate::wal::{self, WalSegment};
use crate::{AppendAck, StoreError};

pub(super) struct Writer {
    pub(super) inner: Arc<Inner>,
    pub(super) segment: WalSegment,
    pub(super) next_seq: u64,
    pub(super) flush_tx: std_mpsc::Sender<FlushJob>,
    pub(super) buf: Vec<u8>,
}

impl Writer {
    pub(super) fn run(mut self, mut rx: mpsc::Receiver<WriterMsg>) {
        let mut batch: Vec<AppendRequest> = Vec::new();
        let mut flushes = Vec::new();
        while let Some(first) = rx.blocking_recv() {
            let mut pending = Some(first);
            // The WAL bytes of the batch's records.
            let mut records_len = 0usize;
            while let Some(msg) = pending.take().or_else(|| rx.try_recv().ok()) {
                match msg {
                    WriterMsg::Append(req) => {
                        records_len += wal::record_len(req.events.len(), req.events.message_bytes());
                        batch.push(req);
                    }
                    WriterMsg::Flush { force, reply } => flushes.push((force, reply)),
                }
                if records_len >= self.inner.config.max_commit_bytes {
                    break;
                }
            }
            if !batch.is_empty() {
                self.commit(&mut batch, records_len);
            }
            // At half the unflushed limit at the latest: a larger memtable could never fill.
            let config = &self.inner.config;
            let flush_at = config.flush_bytes.min(config.max_unflushed_bytes / 2);
            let memtable_full = self.inner.data.read().active.bytes >= flush_at;
            if memtable_full || !flushes.is_empty() {
                let force = flushes.iter().any(|(f, _)| *f);
                let replies: Vec<_> = flushes.drain(..).filter_map(|(_, r)| r).collect();
                self.freeze(force || memtable_full || !replies.is_empty(), replies);
            }
            if self.inner.shutting_down.load(Ordering::SeqCst) {
                break;
            }
        }
    }

    /// One group commit (`records_len`: its records' WAL bytes): encode, write, fdatasync once,
    /// publish, acknowledge.
    fn commit(&mut self, batch: &mut Vec<AppendRequest>, records_len: usize) {
        let batch_bytes: usize = batch.iter().map(|r| r.events.message_bytes()).sum();
        self.inner.pending_bytes.fetch_sub(batch_bytes, Ordering::Relaxed);
        self.inner.room.notify_waiters();
        let records_at = self.segment.start_records(&mut self.buf, records_len);
        let mut acks = Vec::with_capacity(batch.len());
        for req in batch.iter() {
            let first_seq = self.next_seq;
            self.next_seq += req.events.len() as u64;
            wal::encode_append(&mut self.buf, req.group_id, req.stream_id, first_seq, req.ingestion_time, &req.events);
            acks.push(AppendAck { first_seq, last_seq: self.next_seq - 1 });
        }
        if let Err(e) = self.segment.write_records(&mut self.buf, records_at) {
            tracing::error!(error = %e, "WAL write failed; the batch is refused");
            // The segment may now end in garbage: continue in a fresh one so later records stay
            // reachable by replay.
            let next_id = self.segment.id + 1;
            if let Ok(seg) = WalSegment::create(&self.inner.config.dir.join("wal"), next_id) {
                self.segment = seg;
            }
            for req in batch.drain(..) {
                let _ = req.reply.send(Err(same_failure(&e)));
            }
            return;
        }
        self.inner.stats.wal_syncs.fetch_add(1, Ordering::Relaxed);
        self.inner.unflushed_bytes.fetch_add(batch_bytes, Ordering::Relaxed);
        // Each batch is appended to a copy of its stream's blocks outside the lock, and the copy
        // swapped in: a writer preempted while copying megabytes under the lock (2 cores, many
        // threads) made every scan wait up to ~15 ms. Only this thread changes the active
        // memtable, so the copy is current. Every batch here is durable already.
        for (req, ack) in batch.iter().zip(&acks) {
            let mut stream = self.inner.data.read().active.stream_copy(req.stream_id);
            let bytes = req.events.message_bytes();
            stream.push_events(ack.first_seq, req.ingestion_time, req.events.iter(), bytes);
            self.inner.data.write().active.install(req.group_id, req.stream_id, stream, bytes);
        }
        {
            let mut catalog = self.inner.catalog.write();
            for (req, ack) in batch.iter().zip(&acks) {
                let timestamps = req.events.timestamps();
                let (first_ts, last_ts) = (timestamps[0], timestamps[timestamps.len() - 1]);
                if let Some(stream) = catalog.stream_by_id_mut(req.stream_id) {
                    update_stream_stats(stream, first_ts, last_ts, req.ingestion_time, ack.last_seq);
                    catalog.dirty_streams.insert(req.stream_id);
                }
            }
        }
        // Counted before the acknowledgements, so a writer that saw its ack sees its events counted.
        let events: u64 = batch.iter().map(|req| req.events.len() as u64).sum();
        self.inner.stats.appended_events.fetch_add(events, Ordering::Relaxed);
        self.inner.stats.appended_bytes.fetch_add(batch_bytes as u64, Ordering::Relaxed);
        for (req, ack) in batch.drain(..).zip(acks) {
            let _ = req.reply.send(Ok(ack));
        }
    }

    /// Freezes the memtable behind a fresh WAL segment and hands it to the flusher.
    fn freeze(&mut self, force: bool, replies: Vec<oneshot::Sender<Result<(), StoreError>>>) {
        let empty = self.inner.data.read().active.is_empty();
        if empty && !force {
            for r in replies {
                let _ = r.send(Ok(()));
            }
            return;
        }
        let new_segment = match WalSegment::create(&self.inner.config.dir.join("wal"), self.segment.id + 1) {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot start a new WAL segment; flush postponed");
                for r in replies {
                    let _ = r.send(Err(same_failure(&e)));
                }
                return;
            }
        };
        let obsolete_below = new_segment.id;
        self.segment = new_segment;
        let memtable = {
            let mut data = self.inner.data.write();
            let m = Arc::new(std::mem::take(&mut data.active));
            data.frozen.push(m.clone());
            m
        };
        let mut replies = replies.into_iter();
        let first = replies.next();
        for r in replies {
            let _ = r.send(Ok(()));
        }
        let job = FlushJob { memtable, checkpoint_seq: self.next_seq - 1, obsolete_below, reply: first };
        if self.flush_tx.send(job).is_err() {
            tracing::error!("flusher is gone; memtable stays in memory and the WAL");
        }
    }
}

/// The same failure again, for each request waiting on it (errors are not `Clone`): same variant,
/// an i/o error with its kind and text, so the answer reads "i/o error: <cause>" once, not twice.
fn same_failure(e: &StoreError) -> StoreError {
    match e {
        StoreError::Io(io) => StoreError::Io(std::io::Error::new(io.kind(), io.to_string())),
        StoreError::Corrupt(s) => StoreError::Corrupt(s.clone()),
        StoreError::Catalog(s) => StoreError::Catalog(s.clone()),
        StoreError::GroupNotFound => StoreError::GroupNotFound,
        StoreError::StreamNotFound => StoreError::StreamNotFound,
        StoreError::GroupExists => StoreError::GroupExists,
        StoreError::StreamExists => StoreError::StreamExists,
        StoreError::Overloaded => StoreError::Overloaded,
        StoreError::ShutDown => StoreError::ShutDown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_repeated_io_failure_reads_once() {
        let e = StoreError::Io(std::io::Error::new(std::io::ErrorKind::StorageFull, "No space left on device"));
        let again = same_failure(&e);
        assert_eq!(again.to_string(), "i/o error: No space left on device");
        assert!(matches!(again, StoreError::Io(io) if io.kind() == std::io::ErrorKind::StorageFull));
    }
}
