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

#[derive(Debug, Clone)]
pub struct StreamMem {
    pub sealed: Vec<Arc<EventBlock>>,
    pub open: Arc<EventBlock>,
}

impl StreamMem {
    fn new(stream_id: StreamId) -> StreamMem {
        StreamMem { sealed: Vec::new(), open: Arc::new(EventBlock::new(stream_id)) }
    }

    /// Appends events with consecutive sequence numbers; returns the message bytes added.
    pub fn push_events<'a>(
        &mut self,
        first_seq: u64,
        ingestion_time: i64,
        events: impl Iterator<Item = (i64, &'a str)>,
    ) -> usize {
        let stream_id = self.open.stream_id;
        let mut added = 0usize;
        for (i, (ts, msg)) in events.enumerate() {
            let open = Arc::make_mut(&mut self.open);
            open.push(EventKey { timestamp: ts, seq: first_seq + i as u64 }, ingestion_time, msg);
            added += msg.len();
            if open.len() >= SEAL_EVENTS || open.raw_bytes() >= SEAL_BYTES {
                let full = std::mem::replace(&mut self.open, Arc::new(EventBlock::new(stream_id)));
                let block = Arc::try_unwrap(full).unwrap_or_else(|shared| (*shared).clone());
                self.sealed.push(Arc::new(block.into_sorted()));
            }
        }
        added
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
    pub fn append<'a>(
        &mut self,
        group_id: GroupId,
        stream_id: StreamId,
        first_seq: u64,
        ingestion_time: i64,
        events: impl Iterator<Item = (i64, &'a str)>,
    ) {
        let stream = self.streams.entry(stream_id).or_insert_with(|| StreamMem::new(stream_id));
        let added = stream.push_events(first_seq, ingestion_time, events);
        self.count(group_id, added);
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
