//! The memtable: events acknowledged since the last flush, per stream, as a list of sealed
//! (sorted, shared) blocks plus one open block that grows copy-on-write, so a scan can take a
//! zero-copy snapshot of everything while the writer keeps appending.

use std::collections::HashMap;
use std::sync::Arc;

use crate::block::EventBlock;
use crate::{EventKey, GroupId, StreamId};

/// The open block of a stream is sealed at this many events or bytes.
const SEAL_EVENTS: usize = 4096;
const SEAL_BYTES: usize = 256 * 1024;
/// Room made beyond `SEAL_BYTES` for the message that crosses it.
const SEAL_SLACK_BYTES: usize = 4096;

#[derive(Debug, Clone)]
pub struct StreamMem {
    pub sealed: Vec<Arc<EventBlock>>,
    pub open: Arc<EventBlock>,
}

impl StreamMem {
    fn new(stream_id: StreamId) -> StreamMem {
        StreamMem { sealed: Vec::new(), open: Arc::new(EventBlock::new(stream_id)) }
    }

    /// Appends events with consecutive sequence numbers; `bytes` is their messages' total length,
    /// which the caller knows (an `EventBatch` counts it as it is built), so that room is made
    /// without a pass over the events first.
    pub fn push_events<'a>(
        &mut self,
        first_seq: u64,
        ingestion_time: i64,
        events: impl ExactSizeIterator<Item = (i64, &'a str)>,
        bytes: usize,
    ) {
        let stream_id = self.open.stream_id;
        let (mut events_left, mut bytes_left) = (events.len(), bytes);
        self.make_room(events_left, bytes_left);
        for (i, (ts, msg)) in events.enumerate() {
            let open = Arc::get_mut(&mut self.open).expect("make_room leaves the open block unshared");
            open.push(EventKey { timestamp: ts, seq: first_seq + i as u64 }, ingestion_time, msg);
            events_left -= 1;
            bytes_left -= msg.len();
            if open.len() >= SEAL_EVENTS || open.raw_bytes() >= SEAL_BYTES {
                let full = std::mem::replace(open, EventBlock::new(stream_id));
                self.sealed.push(Arc::new(full.into_sorted()));
                self.make_room(events_left, bytes_left);
            }
        }
    }

    /// Readies the open block for `events` more events of `bytes` message bytes (as much of them
    /// as it takes before it is sealed): copied first if a snapshot shares it, and grown once
    /// rather than step by step (each step a copy into fresh memory: growing once cut a W1
    /// ingest's page faults by 10–20 %).
    fn make_room(&mut self, events: usize, bytes: usize) {
        let events = events.min(SEAL_EVENTS.saturating_sub(self.open.len()));
        // The message that crosses the seal size is taken whole: room for a typical one.
        let bytes = bytes.min(SEAL_BYTES.saturating_sub(self.open.raw_bytes()) + SEAL_SLACK_BYTES);
        match Arc::get_mut(&mut self.open) {
            Some(open) => open.reserve(events, bytes),
            None => self.open = Arc::new(self.open.clone_with_room(events, bytes)),
        }
    }
}

#[derive(Debug, Default, Clone)]
pub struct MemTable {
    pub streams: HashMap<StreamId, StreamMem>,
    /// Message bytes held.
    pub bytes: usize,
    /// Raw bytes per group (for storedBytes).
    pub group_bytes: HashMap<GroupId, u64>,
}

impl MemTable {
    pub fn is_empty(&self) -> bool {
        self.streams.is_empty()
    }

    /// Appends in place (WAL replay, where nothing else reads the memtable).
    pub fn append(
        &mut self,
        group_id: GroupId,
        stream_id: StreamId,
        first_seq: u64,
        ingestion_time: i64,
        events: &[(i64, &str)],
    ) {
        let stream = self.streams.entry(stream_id).or_insert_with(|| StreamMem::new(stream_id));
        let bytes = events.iter().map(|(_, m)| m.len()).sum();
        stream.push_events(first_seq, ingestion_time, events.iter().copied(), bytes);
        self.count(group_id, bytes);
    }

    /// A copy of a stream's blocks (shared; the open block is copied when next written), for the
    /// writer to append to outside the lock and then [`MemTable::install`].
    pub fn stream_copy(&self, stream_id: StreamId) -> StreamMem {
        self.streams.get(&stream_id).cloned().unwrap_or_else(|| StreamMem::new(stream_id))
    }

    /// Replaces a stream's blocks with `stream`, a [`MemTable::stream_copy`] to which
    /// `added` message bytes were appended since.
    pub fn install(&mut self, group_id: GroupId, stream_id: StreamId, stream: StreamMem, added: usize) {
        self.streams.insert(stream_id, stream);
        self.count(group_id, added);
    }

    /// Counts `added` message bytes of a group as held.
    fn count(&mut self, group_id: GroupId, added: usize) {
        self.bytes += added;
        *self.group_bytes.entry(group_id).or_default() += added as u64;
    }

    /// Every block of a stream (sealed and open), shared.
    pub fn blocks(&self, stream_id: StreamId) -> impl Iterator<Item = &Arc<EventBlock>> {
        self.streams
            .get(&stream_id)
            .into_iter()
            .flat_map(|s| s.sealed.iter().chain(std::iter::once(&s.open)))
            .filter(|b| !b.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` messages of 100 bytes, numbered (and timestamped) from `first`.
    fn messages(first: usize, n: usize) -> Vec<(i64, String)> {
        (first..first + n).map(|i| (i as i64, format!("{i:0100}"))).collect()
    }

    fn push(stream: &mut StreamMem, first_seq: u64, batch: &[(i64, String)]) {
        let bytes = batch.iter().map(|(_, m)| m.len()).sum();
        stream.push_events(first_seq, 7, batch.iter().map(|(ts, m)| (*ts, m.as_str())), bytes);
    }

    /// Message bytes held by a stream's blocks.
    fn held(stream: &StreamMem) -> usize {
        stream.sealed.iter().chain(std::iter::once(&stream.open)).map(|b| b.raw_bytes()).sum()
    }

    #[test]
    fn a_batch_is_sealed_into_blocks_and_a_snapshot_of_the_open_block_stays_as_it_was() {
        let mut stream = StreamMem::new(3);
        let first = messages(0, 10);
        push(&mut stream, 0, &first);
        assert_eq!(held(&stream), 1000);
        let snapshot = stream.clone();
        // 300 KiB more: the open block crosses SEAL_BYTES once, then a new one starts.
        let second = messages(10, 3000);
        push(&mut stream, 10, &second);
        assert_eq!(held(&stream), 301_000);
        assert_eq!(snapshot.open.len(), 10, "the snapshot's open block is not written");
        assert!(snapshot.sealed.is_empty());
        assert_eq!(stream.sealed.len(), 1);
        let sealed = &stream.sealed[0];
        assert_eq!(sealed.raw_bytes(), SEAL_BYTES.div_ceil(100) * 100);
        assert_eq!(sealed.len() + stream.open.len(), 3010);
        let all: Vec<&str> = sealed.iter_messages().chain(stream.open.iter_messages()).collect();
        let expected: Vec<&str> = first.iter().chain(&second).map(|(_, m)| m.as_str()).collect();
        assert!(all == expected, "the messages in order, each once");
        assert_eq!(stream.open.key(0).seq, sealed.len() as u64);
    }
}
