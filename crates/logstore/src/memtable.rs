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

    pub fn append<'a>(
        &mut self,
        group_id: GroupId,
        stream_id: StreamId,
        first_seq: u64,
        ingestion_time: i64,
        events: impl Iterator<Item = (i64, &'a str)>,
    ) {
        let stream = self
            .streams
            .entry(stream_id)
            .or_insert_with(|| StreamMem { sealed: Vec::new(), open: Arc::new(EventBlock::new(stream_id)) });
        let mut added = 0usize;
        for (i, (ts, msg)) in events.enumerate() {
            let open = Arc::make_mut(&mut stream.open);
            open.push(EventKey { timestamp: ts, seq: first_seq + i as u64 }, ingestion_time, msg);
            added += msg.len();
            if open.len() >= SEAL_EVENTS || open.raw_bytes() >= SEAL_BYTES {
                let full = std::mem::replace(&mut stream.open, Arc::new(EventBlock::new(stream_id)));
                let block = Arc::try_unwrap(full).unwrap_or_else(|shared| (*shared).clone());
                stream.sealed.push(Arc::new(block.into_sorted()));
            }
        }
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
