//! `EventBlock`: a run of one stream's events held column-wise (keys, ingestion times, message
//! offsets, one UTF-8 buffer). The memtable seals its chunks into blocks and part files store them
//! compressed (`part::BlockCodec`); scans treat both alike.

use crate::codec::{put_u32, put_varint, unzigzag, zigzag, Reader};
use crate::{EventKey, StoreError, StreamId};

/// Raw size (message bytes) at which a block is closed when writing parts.
pub const TARGET_BLOCK_RAW_BYTES: usize = 512 * 1024;
/// Most events one block holds.
pub const MAX_BLOCK_EVENTS: usize = 16 * 1024;
/// Widest span of timestamps in one part block. A quiet stream's block would otherwise cover a
/// whole day, and a time-ordered page (which must visit every block that starts before its events)
/// would decode it early and for nothing; too narrow a span makes tiny blocks that compress and
/// scan badly. Measured on 300 MB of W3-shaped data (1,000 streams over 24 h): 15 min gave 109 MB
/// on disk and 1.4 s for all `ERROR` pages, no cap 80 MB and 2.1 s, 2 h 86 MB and 0.8 s.
pub const MAX_BLOCK_SPAN_MS: i64 = 2 * 60 * 60 * 1000;

#[derive(Debug, Clone, Default)]
pub struct EventBlock {
    pub stream_id: StreamId,
    keys: Vec<EventKey>,
    ingestion: Vec<i64>,
    ends: Vec<u32>,
    data: String,
    min: EventKey,
    max: EventKey,
    /// Keys are strictly ascending in storage order.
    sorted: bool,
}

impl EventBlock {
    pub fn new(stream_id: StreamId) -> Self {
        EventBlock { stream_id, sorted: true, ..Default::default() }
    }

    pub fn push(&mut self, key: EventKey, ingestion_time: i64, message: &str) {
        match self.keys.last() {
            None => {
                self.min = key;
                self.max = key;
            }
            Some(&last) => {
                self.sorted &= last < key;
                self.min = self.min.min(key);
                self.max = self.max.max(key);
            }
        }
        self.keys.push(key);
        self.ingestion.push(ingestion_time);
        self.data.push_str(message);
        self.ends.push(self.data.len() as u32);
    }

    /// Makes room for `events` more events holding `bytes` more message bytes, so that pushing
    /// them does not grow (and copy) the columns step by step.
    pub fn reserve(&mut self, events: usize, bytes: usize) {
        self.keys.reserve(events);
        self.ingestion.reserve(events);
        self.ends.reserve(events);
        self.data.reserve(bytes);
    }

    /// A copy with room for `events` more events and `bytes` more message bytes (`reserve`).
    pub fn clone_with_room(&self, events: usize, bytes: usize) -> EventBlock {
        let mut copy = EventBlock {
            stream_id: self.stream_id,
            sorted: self.sorted,
            min: self.min,
            max: self.max,
            ..Default::default()
        };
        copy.reserve(self.len() + events, self.data.len() + bytes);
        copy.keys.extend_from_slice(&self.keys);
        copy.ingestion.extend_from_slice(&self.ingestion);
        copy.ends.extend_from_slice(&self.ends);
        copy.data.push_str(&self.data);
        copy
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    pub fn key(&self, i: usize) -> EventKey {
        self.keys[i]
    }

    pub fn ingestion_time(&self, i: usize) -> i64 {
        self.ingestion[i]
    }

    pub fn message(&self, i: usize) -> &str {
        self.view().message(i)
    }

    /// The block read in place.
    pub fn view(&self) -> BlockView<'_> {
        BlockView { columns: self, messages: &self.data }
    }

    /// Each message in storage order.
    #[cfg(test)]
    pub fn iter_messages(&self) -> impl Iterator<Item = &str> {
        (0..self.len()).map(|i| self.message(i))
    }

    /// Bytes of message text held by the events before position `i`.
    pub fn raw_bytes_before(&self, i: usize) -> usize {
        if i == 0 {
            0
        } else {
            self.ends[i - 1] as usize
        }
    }

    /// Bytes of message text held.
    pub fn raw_bytes(&self) -> usize {
        self.data.len()
    }

    pub fn min_key(&self) -> Option<EventKey> {
        (!self.is_empty()).then_some(self.min)
    }

    pub fn max_key(&self) -> Option<EventKey> {
        (!self.is_empty()).then_some(self.max)
    }

    pub fn is_sorted(&self) -> bool {
        self.sorted
    }

    /// Returns the block with its events ordered by key (a no-op for the common in-order case).
    pub fn into_sorted(self) -> EventBlock {
        if self.is_sorted() {
            return self;
        }
        let mut order: Vec<usize> = (0..self.len()).collect();
        order.sort_by_key(|&i| self.keys[i]);
        let mut out = EventBlock::new(self.stream_id);
        out.data.reserve(self.data.len());
        for i in order {
            out.push(self.keys[i], self.ingestion[i], self.message(i));
        }
        out
    }

    /// Serialises the block (uncompressed) in `layout`: its messages and a column header.
    #[cfg(test)]
    pub fn encode(&self, layout: BlockLayout, out: &mut Vec<u8>) {
        self.encode_range(layout, 0..self.len(), out);
    }

    /// Serialises events `events` (a range of storage positions) as a block of their own, in
    /// `layout`: a part writer cuts one block of events into several stored blocks this way.
    pub fn encode_range(&self, layout: BlockLayout, events: std::ops::Range<usize>, out: &mut Vec<u8>) {
        let messages = &self.data.as_bytes()[self.raw_bytes_before(events.start)..self.raw_bytes_before(events.end)];
        match layout {
            BlockLayout::HeaderFirst => {
                self.encode_columns(events, out);
                out.extend_from_slice(messages);
            }
            BlockLayout::MessagesFirst => {
                out.extend_from_slice(messages);
                let header_start = out.len();
                self.encode_columns(events, out);
                let header_len = (out.len() - header_start) as u32;
                put_u32(out, header_len);
            }
        }
    }

    /// The column header of events `events`: the event count, then per event the key's and the
    /// ingestion time's deltas and the message's length, as varints.
    fn encode_columns(&self, events: std::ops::Range<usize>, out: &mut Vec<u8>) {
        put_varint(out, events.len() as u64);
        let (mut pts, mut pseq, mut ping) = (0i64, 0i64, 0i64);
        let mut prev_end = self.raw_bytes_before(events.start) as u32;
        for i in events {
            let k = self.keys[i];
            put_varint(out, zigzag(k.timestamp.wrapping_sub(pts)));
            put_varint(out, zigzag((k.seq as i64).wrapping_sub(pseq)));
            put_varint(out, zigzag(self.ingestion[i].wrapping_sub(ping)));
            put_varint(out, u64::from(self.ends[i] - prev_end));
            pts = k.timestamp;
            pseq = k.seq as i64;
            ping = self.ingestion[i];
            prev_end = self.ends[i];
        }
    }

    /// Decodes a block encoded in `layout`, keeping `buf`'s allocation as the message buffer. In
    /// `MessagesFirst` the messages already start it, so a decompressed block is never copied; in
    /// `HeaderFirst` (older parts) they are moved down over the header, in place.
    pub fn decode_owned(stream_id: StreamId, mut buf: Vec<u8>, layout: BlockLayout) -> Result<EventBlock, StoreError> {
        let mut block = EventBlock::new(stream_id);
        let messages = block.decode_columns(&buf, layout)?;
        let len = messages.len();
        if messages.start > 0 {
            buf.copy_within(messages, 0);
        }
        buf.truncate(len);
        block.data = String::from_utf8(buf).map_err(|_| corrupt("messages are not UTF-8"))?;
        Ok(block)
    }

    /// Decodes a block encoded in `layout` in place: its columns into `columns` (whose
    /// allocations are reused), its messages read where they are in `buf`. A scan reads a block
    /// this way from a decompressor's reused buffer, so it writes no fresh memory for it.
    pub fn decode_view<'a>(
        columns: &'a mut EventBlock,
        stream_id: StreamId,
        buf: &'a [u8],
        layout: BlockLayout,
    ) -> Result<BlockView<'a>, StoreError> {
        columns.stream_id = stream_id;
        let messages = columns.decode_columns(buf, layout)?;
        let messages = std::str::from_utf8(&buf[messages]).map_err(|_| corrupt("messages are not UTF-8"))?;
        Ok(BlockView { columns, messages })
    }

    /// Replaces this block's columns with those of `buf`, a block encoded in `layout`, and
    /// returns where its messages are in `buf`.
    fn decode_columns(&mut self, buf: &[u8], layout: BlockLayout) -> Result<std::ops::Range<usize>, StoreError> {
        let messages = match layout {
            BlockLayout::HeaderFirst => self.decode_header(buf)?..buf.len(),
            BlockLayout::MessagesFirst => {
                let trailer_at = buf.len().checked_sub(4).ok_or_else(|| corrupt("shorter than its trailer"))?;
                let header_len = Reader::new(&buf[trailer_at..]).u32()? as usize;
                let messages_len =
                    trailer_at.checked_sub(header_len).ok_or_else(|| corrupt("header longer than the block"))?;
                if self.decode_header(&buf[messages_len..trailer_at])? != header_len {
                    return Err(corrupt("header length does not match its columns"));
                }
                0..messages_len
            }
        };
        if self.ends.last().map_or(0, |&end| end as usize) != messages.len() {
            return Err(corrupt("message bytes do not match offsets"));
        }
        Ok(messages)
    }

    /// Replaces this block's columns with those of the column header at the start of `buf`, and
    /// returns how many bytes the header took.
    fn decode_header(&mut self, buf: &[u8]) -> Result<usize, StoreError> {
        let mut r = Reader::new(buf);
        let count = r.varint()? as usize;
        if count > buf.len() {
            return Err(corrupt("event count larger than block"));
        }
        self.keys.clear();
        self.ingestion.clear();
        self.ends.clear();
        self.data.clear();
        self.keys.reserve(count);
        self.ingestion.reserve(count);
        self.ends.reserve(count);
        let (mut ts, mut seq, mut ing) = (0i64, 0i64, 0i64);
        let mut end: u64 = 0;
        let mut sorted = true;
        let mut last: Option<EventKey> = None;
        for _ in 0..count {
            ts = ts.wrapping_add(unzigzag(r.varint()?));
            seq = seq.wrapping_add(unzigzag(r.varint()?));
            ing = ing.wrapping_add(unzigzag(r.varint()?));
            end = end.saturating_add(r.varint()?);
            let key = EventKey { timestamp: ts, seq: seq as u64 };
            if let Some(last) = last {
                sorted &= last < key;
            }
            last = Some(key);
            self.keys.push(key);
            self.ingestion.push(ing);
            self.ends.push(end as u32);
        }
        // Offsets only grow (each adds a length), so the last one bounds them all.
        if end > u64::from(u32::MAX) {
            return Err(corrupt("message offsets overflow"));
        }
        self.sorted = sorted;
        if sorted {
            self.min = self.keys.first().copied().unwrap_or_default();
            self.max = self.keys.last().copied().unwrap_or_default();
        } else {
            self.min = self.keys.iter().copied().min().unwrap_or_default();
            self.max = self.keys.iter().copied().max().unwrap_or_default();
        }
        Ok(buf.len() - r.remaining())
    }
}

/// A block's damage, as the error that reports it.
fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("block {what}"))
}

/// A decoded block read where its messages are: an owned block's own buffer, or a decompressor's
/// reused one (`EventBlock::decode_view`), so that a scan need not copy them.
#[derive(Debug, Clone, Copy)]
pub struct BlockView<'a> {
    columns: &'a EventBlock,
    messages: &'a str,
}

impl<'a> BlockView<'a> {
    pub fn stream_id(&self) -> StreamId {
        self.columns.stream_id
    }

    pub fn len(&self) -> usize {
        self.columns.len()
    }

    pub fn is_sorted(&self) -> bool {
        self.columns.sorted
    }

    pub fn keys(&self) -> &'a [EventKey] {
        &self.columns.keys
    }

    pub fn key(&self, i: usize) -> EventKey {
        self.columns.keys[i]
    }

    pub fn ingestion_time(&self, i: usize) -> i64 {
        self.columns.ingestion[i]
    }

    /// Each message's end offset in `message_bytes`.
    pub fn ends(&self) -> &'a [u32] {
        &self.columns.ends
    }

    /// Every message, one after the other (message `i` ends at `ends()[i]`).
    pub fn message_bytes(&self) -> &'a [u8] {
        self.messages.as_bytes()
    }

    pub fn message(&self, i: usize) -> &'a str {
        let ends = &self.columns.ends;
        let start = if i == 0 { 0 } else { ends[i - 1] as usize };
        &self.messages[start..ends[i] as usize]
    }

    /// The block as one that owns its messages (a copy of them).
    pub fn to_block(self) -> EventBlock {
        let mut block = self.columns.clone();
        block.data = self.messages.to_owned();
        block
    }
}

/// Where an encoded block puts its column header. Part formats up to 4 wrote it first; from 5 it
/// follows the messages (with its length in a 4-byte trailer), so that a block decompressed into
/// its own buffer is decoded without moving its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockLayout {
    HeaderFirst,
    MessagesFirst,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn encode_decode_roundtrip(events in proptest::collection::vec((0i64..1i64<<45, 0u64..1u64<<40, any::<String>()), 0..50)) {
            let mut b = EventBlock::new(7);
            for (ts, seq, msg) in &events {
                b.push(EventKey { timestamp: *ts, seq: *seq }, ts + 5, msg);
            }
            let mut columns = EventBlock::new(0);
            for layout in [BlockLayout::HeaderFirst, BlockLayout::MessagesFirst] {
                let mut buf = Vec::new();
                b.encode(layout, &mut buf);
                // Read in place, into columns reused from the previous layout: the same block.
                let view = EventBlock::decode_view(&mut columns, 7, &buf, layout).unwrap();
                prop_assert!(view.message_bytes().as_ptr_range().end <= buf.as_ptr_range().end);
                prop_assert!(view.message_bytes().as_ptr() >= buf.as_ptr());
                let d = view.to_block();
                let (sorted, min, max) = (d.is_sorted(), d.min_key(), d.max_key());
                let d_owned = EventBlock::decode_owned(7, buf, layout).unwrap();
                prop_assert_eq!((sorted, min, max), (d_owned.is_sorted(), d_owned.min_key(), d_owned.max_key()));
                prop_assert_eq!(d.stream_id, 7);
                for d in [d, d_owned] {
                    prop_assert_eq!(d.len(), events.len());
                    for (i, (ts, seq, msg)) in events.iter().enumerate() {
                        prop_assert_eq!(d.key(i), EventKey { timestamp: *ts, seq: *seq });
                        prop_assert_eq!(d.message(i), msg.as_str());
                        prop_assert_eq!(d.ingestion_time(i), ts + 5);
                    }
                }
            }
        }

        /// A range of a block's events encodes exactly as a block of those events alone (what a
        /// part writer stores when it cuts a bloom group into blocks).
        #[test]
        fn ranges_encode_as_blocks_of_their_events(
            events in proptest::collection::vec((0i64..1i64<<40, 0u64..1u64<<30, any::<String>()), 0..40),
            cuts in (0usize..41, 0usize..41),
        ) {
            let mut b = EventBlock::new(7);
            for (ts, seq, msg) in &events {
                b.push(EventKey { timestamp: *ts, seq: *seq }, ts - 3, msg);
            }
            let (lo, hi) = (cuts.0.min(cuts.1).min(b.len()), cuts.0.max(cuts.1).min(b.len()));
            let mut alone = EventBlock::new(7);
            for i in lo..hi {
                alone.push(b.key(i), b.ingestion_time(i), b.message(i));
            }
            for layout in [BlockLayout::HeaderFirst, BlockLayout::MessagesFirst] {
                let (mut range, mut expected) = (Vec::new(), Vec::new());
                b.encode_range(layout, lo..hi, &mut range);
                alone.encode(layout, &mut expected);
                prop_assert_eq!(range, expected);
            }
        }

        #[test]
        fn decode_garbage_never_panics(bytes: Vec<u8>) {
            let mut columns = EventBlock::new(0);
            for layout in [BlockLayout::HeaderFirst, BlockLayout::MessagesFirst] {
                let _ = EventBlock::decode_view(&mut columns, 1, &bytes, layout);
                let _ = EventBlock::decode_owned(1, bytes.clone(), layout);
            }
        }
    }

    /// A messages-first block is decoded without moving its messages: they stay where the
    /// decompressor put them.
    #[test]
    fn a_messages_first_block_keeps_its_buffer_as_its_messages() {
        let mut b = EventBlock::new(3);
        for i in 0..1000 {
            b.push(EventKey { timestamp: i, seq: 0 }, i, &format!("message {i} ✓"));
        }
        let mut buf = Vec::new();
        b.encode(BlockLayout::MessagesFirst, &mut buf);
        let at = buf.as_ptr();
        let d = EventBlock::decode_owned(3, buf, BlockLayout::MessagesFirst).unwrap();
        assert_eq!(d.view().message_bytes().as_ptr(), at);
        assert_eq!(d.message(999), "message 999 ✓");
    }

    /// Every truncation and single-byte change of a messages-first block is an error or some
    /// valid block, never a panic; a truncated block or a changed trailer is always an error.
    #[test]
    fn damaged_messages_first_blocks_are_errors_not_panics() {
        let mut b = EventBlock::new(3);
        for i in 0..200 {
            b.push(EventKey { timestamp: i * 7, seq: i as u64 }, i, &"é".repeat(i as usize % 9));
        }
        let mut clean = Vec::new();
        b.encode(BlockLayout::MessagesFirst, &mut clean);
        for len in 0..clean.len() {
            assert!(EventBlock::decode_owned(3, clean[..len].to_vec(), BlockLayout::MessagesFirst).is_err());
        }
        for at in 0..clean.len() {
            for flip in [0x01u8, 0x41, 0x80] {
                let mut bytes = clean.clone();
                bytes[at] ^= flip;
                let decoded = EventBlock::decode_owned(3, bytes, BlockLayout::MessagesFirst);
                assert!(decoded.is_err() || at < clean.len() - 4, "trailer byte {at} ^ {flip:#x}");
            }
        }
    }

    #[test]
    fn sorting_reorders_every_column() {
        let mut b = EventBlock::new(1);
        b.push(EventKey { timestamp: 20, seq: 1 }, 100, "b");
        b.push(EventKey { timestamp: 10, seq: 2 }, 101, "a");
        let s = b.into_sorted();
        assert_eq!(s.message(0), "a");
        assert_eq!(s.ingestion_time(0), 101);
        assert_eq!(s.key(1), EventKey { timestamp: 20, seq: 1 });
    }
}
