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
        &self.data[self.raw_bytes_before(i)..self.ends[i] as usize]
    }

    /// The block read in place.
    pub fn view(&self) -> BlockView<'_> {
        BlockView { columns: self, messages: Messages::Text(&self.data) }
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
            BlockLayout::MessagesFirst | BlockLayout::PackedColumns => {
                out.extend_from_slice(messages);
                let header_start = out.len();
                if layout == BlockLayout::PackedColumns {
                    self.encode_packed_columns(events, out);
                } else {
                    self.encode_columns(events, out);
                }
                let header_len = (out.len() - header_start) as u32;
                put_u32(out, header_len);
            }
        }
    }

    /// The column header of events `events` in `BlockLayout::PackedColumns`: the event count,
    /// then the timestamps, sequence numbers, ingestion times and message end offsets (relative
    /// to the first message), each column on its own (`put_packed_column`).
    fn encode_packed_columns(&self, events: std::ops::Range<usize>, out: &mut Vec<u8>) {
        put_varint(out, events.len() as u64);
        let keys = &self.keys[events.clone()];
        let first_end = self.raw_bytes_before(events.start) as u32;
        put_packed_column(out, keys.iter().map(|k| k.timestamp));
        put_packed_column(out, keys.iter().map(|k| k.seq as i64));
        put_packed_column(out, self.ingestion[events.clone()].iter().copied());
        put_packed_column(out, self.ends[events].iter().map(|&end| i64::from(end - first_end)));
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
    /// this way from a decompressor's reused buffer, so it writes no fresh memory for it. The
    /// messages are checked to be UTF-8 one by one as they are read (`BlockView::message`): a
    /// search reads few of them (checking every block whole was a twentieth of a regex scan).
    pub fn decode_view<'a>(
        columns: &'a mut EventBlock,
        stream_id: StreamId,
        buf: &'a [u8],
        layout: BlockLayout,
    ) -> Result<BlockView<'a>, StoreError> {
        columns.stream_id = stream_id;
        let messages = columns.decode_columns(buf, layout)?;
        Ok(BlockView { columns, messages: Messages::Unchecked(&buf[messages]) })
    }

    /// Replaces this block's columns with those of `buf`, a block encoded in `layout`, and
    /// returns where its messages are in `buf`.
    fn decode_columns(&mut self, buf: &[u8], layout: BlockLayout) -> Result<std::ops::Range<usize>, StoreError> {
        let messages = match layout {
            BlockLayout::HeaderFirst => self.decode_header(buf)?..buf.len(),
            BlockLayout::MessagesFirst | BlockLayout::PackedColumns => {
                let trailer_at = buf.len().checked_sub(4).ok_or_else(|| corrupt("shorter than its trailer"))?;
                let header_len = Reader::new(&buf[trailer_at..]).u32()? as usize;
                let messages_len =
                    trailer_at.checked_sub(header_len).ok_or_else(|| corrupt("header longer than the block"))?;
                let header = &buf[messages_len..trailer_at];
                let used = if layout == BlockLayout::PackedColumns {
                    self.decode_packed_header(header)?
                } else {
                    self.decode_header(header)?
                };
                if used != header_len {
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
        self.set_key_range(sorted);
        Ok(buf.len() - r.remaining())
    }
}

impl EventBlock {
    /// Replaces this block's columns with those of the packed column header at the start of
    /// `buf` (`encode_packed_columns`), and returns how many bytes the header took.
    fn decode_packed_header(&mut self, buf: &[u8]) -> Result<usize, StoreError> {
        let mut r = Reader::new(buf);
        let count = r.varint()? as usize;
        // A column of equal deltas takes no bytes per event: the count is bounded by what a block
        // may hold, so that damage cannot ask for a huge allocation (and, below 2^20, offsets
        // that each add less than 2^32 cannot overflow their sum).
        if count > MAX_BLOCK_EVENTS.max(buf.len()) || count > 1 << 20 {
            return Err(corrupt("event count larger than block"));
        }
        let timestamps = PackedColumn::read(&mut r, count)?;
        let seqs = PackedColumn::read(&mut r, count)?;
        let ingestion = PackedColumn::read(&mut r, count)?;
        let ends = PackedColumn::read(&mut r, count)?;
        // Offsets start at or above 0 and never decrease (every difference is from `base` to
        // `base + mask`, both in 0..2^32, so the sums below cannot wrap), and the last one is the
        // messages' length (checked by the caller), so it bounds them all.
        let differences = i128::from(ends.base)..=i128::from(ends.base) + i128::from(ends.mask());
        let offsets = 0..=i128::from(u32::MAX);
        if !offsets.contains(&i128::from(ends.first))
            || !offsets.contains(differences.start())
            || !offsets.contains(differences.end())
        {
            return Err(corrupt("message offsets out of range"));
        }
        self.data.clear();
        // Each column is written in place: pushing, the vectors' lengths went through memory
        // for every value.
        self.keys.clear();
        self.keys.resize(count, EventKey::default());
        self.ingestion.clear();
        self.ingestion.resize(count, 0);
        self.ends.clear();
        self.ends.resize(count, 0);
        timestamps.decode_into(&mut self.keys, |k, t| k.timestamp = t);
        seqs.decode_into(&mut self.keys, |k, s| k.seq = s as u64);
        ingestion.decode_into(&mut self.ingestion, |slot, t| *slot = t);
        let last_end = ends.decode_into(&mut self.ends, |slot, end| *slot = end as u32);
        if last_end > i64::from(u32::MAX) {
            return Err(corrupt("message offsets overflow"));
        }
        self.set_key_range(self.keys.windows(2).all(|pair| pair[0] < pair[1]));
        Ok(buf.len() - r.remaining())
    }
}

impl EventBlock {
    /// Records whether the decoded keys are strictly ascending, and their smallest and largest.
    fn set_key_range(&mut self, sorted: bool) {
        self.sorted = sorted;
        if sorted {
            self.min = self.keys.first().copied().unwrap_or_default();
            self.max = self.keys.last().copied().unwrap_or_default();
        } else {
            self.min = self.keys.iter().copied().min().unwrap_or_default();
            self.max = self.keys.iter().copied().max().unwrap_or_default();
        }
    }
}

/// Writes one column of a packed header: its first value, then (for two values or more) the
/// differences between neighbours as a frame of reference, the smallest difference and the bit
/// width of the largest above it, each difference in that many bits, least significant first
/// (W3's columns take 8–16 bits an event, and decode without a dependency from one to the next,
/// which interleaved varints have).
fn put_packed_column(out: &mut Vec<u8>, values: impl Iterator<Item = i64> + Clone) {
    let mut iter = values.clone();
    let Some(first) = iter.next() else { return };
    put_varint(out, zigzag(first));
    let deltas = values.clone().zip(iter).map(|(a, b)| b.wrapping_sub(a));
    let Some(base) = deltas.clone().min() else { return };
    let widest = deltas.clone().map(|d| d.wrapping_sub(base) as u64).max().unwrap_or(0);
    let width = u64::BITS - widest.leading_zeros();
    out.push(width as u8);
    put_varint(out, zigzag(base));
    if width == 0 {
        return;
    }
    let (mut acc, mut bits) = (0u128, 0u32);
    for d in deltas {
        acc |= u128::from(d.wrapping_sub(base) as u64) << bits;
        bits += width;
        while bits >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            bits -= 8;
        }
    }
    if bits > 0 {
        out.push(acc as u8);
    }
}

/// One column of a packed header, read (`put_packed_column`) but not yet decoded.
struct PackedColumn<'a> {
    first: i64,
    /// The smallest difference between neighbours.
    base: i64,
    /// Bits per difference above `base`.
    width: u32,
    packed: &'a [u8],
}

impl<'a> PackedColumn<'a> {
    fn read(r: &mut Reader<'a>, count: usize) -> Result<PackedColumn<'a>, StoreError> {
        let mut column = PackedColumn { first: 0, base: 0, width: 0, packed: &[] };
        if count == 0 {
            return Ok(column);
        }
        column.first = unzigzag(r.varint()?);
        if count == 1 {
            return Ok(column);
        }
        column.width = u32::from(r.u8()?);
        if column.width > 64 {
            return Err(corrupt("column wider than 64 bits"));
        }
        column.base = unzigzag(r.varint()?);
        column.packed = r.bytes(((count - 1) * column.width as usize).div_ceil(8))?;
        Ok(column)
    }

    /// The largest difference above `base`.
    fn mask(&self) -> u64 {
        if self.width == 0 {
            0
        } else {
            u64::MAX >> (64 - self.width)
        }
    }

    /// Gives each value to `set` with its slot in `out` (`count` long), in order, and returns the
    /// last value.
    #[inline]
    fn decode_into<T>(&self, out: &mut [T], set: impl Fn(&mut T, i64)) -> i64 {
        let Some((first, rest)) = out.split_first_mut() else { return 0 };
        let mut value = self.first;
        set(first, value);
        let (width, mask, base, packed) = (self.width as usize, self.mask(), self.base, self.packed);
        if width == 0 {
            for slot in rest {
                value = value.wrapping_add(base);
                set(slot, value);
            }
            return value;
        }
        // Differences whose bits lie in one 8-byte word are read from where they start (a width
        // up to 57 bits, shifted by at most 7); the others, and those near the end, from a
        // padded copy.
        let fast =
            if width <= 57 && packed.len() >= 8 { ((packed.len() - 8) * 8 / width + 1).min(rest.len()) } else { 0 };
        let (quick, slow) = rest.split_at_mut(fast);
        for (j, slot) in quick.iter_mut().enumerate() {
            let bit = j * width;
            let word = u64::from_le_bytes(packed[bit / 8..bit / 8 + 8].try_into().expect("8 bytes"));
            value = value.wrapping_add(base.wrapping_add(((word >> (bit % 8)) & mask) as i64));
            set(slot, value);
        }
        for (j, slot) in slow.iter_mut().enumerate() {
            let bit = (fast + j) * width;
            let mut bytes = [0u8; 16];
            let from = &packed[bit / 8..packed.len().min(bit / 8 + 16)];
            bytes[..from.len()].copy_from_slice(from);
            let delta = ((u128::from_le_bytes(bytes) >> (bit % 8)) as u64) & mask;
            value = value.wrapping_add(base.wrapping_add(delta as i64));
            set(slot, value);
        }
        value
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
    messages: Messages<'a>,
}

/// A block's messages, one after the other.
#[derive(Debug, Clone, Copy)]
enum Messages<'a> {
    /// An owned block's, UTF-8 by construction.
    Text(&'a str),
    /// A decoded block's, each checked as it is read.
    Unchecked(&'a [u8]),
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
        match self.messages {
            Messages::Text(text) => text.as_bytes(),
            Messages::Unchecked(bytes) => bytes,
        }
    }

    /// Message `i`; an error if a decoded block's offsets or bytes are damaged.
    pub fn message(&self, i: usize) -> Result<&'a str, StoreError> {
        let ends = &self.columns.ends;
        let range = if i == 0 { 0 } else { ends[i - 1] as usize }..ends[i] as usize;
        match self.messages {
            Messages::Text(text) => {
                text.get(range).ok_or_else(|| corrupt("message offsets past the messages or inside a character"))
            }
            Messages::Unchecked(bytes) => {
                let bytes = bytes.get(range).ok_or_else(|| corrupt("message offsets past the messages"))?;
                std::str::from_utf8(bytes).map_err(|_| corrupt("message is not UTF-8"))
            }
        }
    }

    /// The block as one that owns its messages (a copy of them).
    pub fn to_block(self) -> Result<EventBlock, StoreError> {
        let mut block = self.columns.clone();
        block.data = match self.messages {
            Messages::Text(text) => text.to_owned(),
            Messages::Unchecked(bytes) => {
                std::str::from_utf8(bytes).map_err(|_| corrupt("messages are not UTF-8"))?.to_owned()
            }
        };
        Ok(block)
    }
}

/// Where an encoded block puts its column header, and how. Part formats up to 4 wrote it first;
/// from 5 it follows the messages (with its length in a 4-byte trailer), so that a block
/// decompressed into its own buffer is decoded without moving its messages. Up to format 6 the
/// header interleaves each event's varints; from 7 each column is stored on its own, bit-packed
/// (`PackedColumns`): interleaved, decoding took a ninth of a regex scan's CPU (~18 ns an event
/// on W3-like columns, 10 packed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockLayout {
    HeaderFirst,
    MessagesFirst,
    PackedColumns,
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
            for layout in [BlockLayout::HeaderFirst, BlockLayout::MessagesFirst, BlockLayout::PackedColumns] {
                let mut buf = Vec::new();
                b.encode(layout, &mut buf);
                // Read in place, into columns reused from the previous layout: the same block.
                let view = EventBlock::decode_view(&mut columns, 7, &buf, layout).unwrap();
                prop_assert!(view.message_bytes().as_ptr_range().end <= buf.as_ptr_range().end);
                prop_assert!(view.message_bytes().as_ptr() >= buf.as_ptr());
                let d = view.to_block().unwrap();
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
            for layout in [BlockLayout::HeaderFirst, BlockLayout::MessagesFirst, BlockLayout::PackedColumns] {
                let (mut range, mut expected) = (Vec::new(), Vec::new());
                b.encode_range(layout, lo..hi, &mut range);
                alone.encode(layout, &mut expected);
                prop_assert_eq!(range, expected);
            }
        }

        /// Any column, packed, reads back: constant ones (no bits a value), narrow and wide ones
        /// (up to 64 bits, read past the 8-byte word), and those whose last values sit in the
        /// column's final bytes.
        #[test]
        fn packed_columns_read_back(
            values in prop_oneof![
                proptest::collection::vec(any::<i64>(), 0..70),
                proptest::collection::vec(-3i64..3, 0..70),
                (any::<i64>(), 0usize..70).prop_map(|(v, n)| vec![v; n]),
                (any::<i64>(), 0u32..64, proptest::collection::vec(any::<u64>(), 0..70)).prop_map(|(start, bits, steps)| {
                    let mut v = start;
                    steps.iter().map(|s| { v = v.wrapping_add((s >> (63 - bits)) as i64); v }).collect()
                }),
            ],
            trailing in proptest::collection::vec(any::<u8>(), 0..4),
        ) {
            let mut buf = Vec::new();
            put_packed_column(&mut buf, values.iter().copied());
            let written = buf.len();
            buf.extend_from_slice(&trailing);
            let mut r = Reader::new(&buf);
            let column = PackedColumn::read(&mut r, values.len()).unwrap();
            prop_assert_eq!(buf.len() - r.remaining(), written, "the column ends where it was written");
            let mut read = vec![0i64; values.len()];
            let last = column.decode_into(&mut read, |slot, v| *slot = v);
            prop_assert_eq!(&read, &values);
            prop_assert_eq!(last, values.last().copied().unwrap_or(0));
        }

        #[test]
        fn decode_garbage_never_panics(bytes: Vec<u8>) {
            let mut columns = EventBlock::new(0);
            for layout in [BlockLayout::HeaderFirst, BlockLayout::MessagesFirst, BlockLayout::PackedColumns] {
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

    /// Every truncation and single-byte change of a messages-first block (either header) is an
    /// error or some valid block, never a panic, whether decoded whole or read in place message
    /// by message; a truncated block or a changed trailer is always an error.
    #[test]
    fn damaged_messages_first_blocks_are_errors_not_panics() {
        let mut b = EventBlock::new(3);
        for i in 0..200 {
            b.push(EventKey { timestamp: i * 7, seq: i as u64 }, i, &"é".repeat(i as usize % 9));
        }
        let mut columns = EventBlock::new(0);
        for layout in [BlockLayout::MessagesFirst, BlockLayout::PackedColumns] {
            let mut clean = Vec::new();
            b.encode(layout, &mut clean);
            for len in 0..clean.len() {
                assert!(EventBlock::decode_owned(3, clean[..len].to_vec(), layout).is_err());
                assert!(EventBlock::decode_view(&mut columns, 3, &clean[..len], layout).is_err());
            }
            for at in 0..clean.len() {
                for flip in [0x01u8, 0x41, 0x80] {
                    let mut bytes = clean.clone();
                    bytes[at] ^= flip;
                    if let Ok(view) = EventBlock::decode_view(&mut columns, 3, &bytes, layout) {
                        let read: Result<Vec<&str>, _> = (0..view.len()).map(|i| view.message(i)).collect();
                        assert_eq!(read.is_ok(), view.to_block().is_ok(), "{layout:?} byte {at} ^ {flip:#x}");
                    }
                    let decoded = EventBlock::decode_owned(3, bytes, layout);
                    assert!(decoded.is_err() || at < clean.len() - 4, "{layout:?} trailer byte {at} ^ {flip:#x}");
                }
            }
        }
    }

    /// Packed offsets that go back (a difference below 0 that a wide column still reaches past)
    /// are damage, found as the header is decoded.
    #[test]
    fn packed_offsets_that_go_back_are_damage() {
        let encode = |ends: &[i64]| {
            let mut buf = b"0123456789".to_vec();
            let header_start = buf.len();
            put_varint(&mut buf, ends.len() as u64);
            for column in [&[0i64, 1, 2, 3][..], &[0; 4], &[0; 4], ends] {
                put_packed_column(&mut buf, column.iter().copied());
            }
            let header_len = (buf.len() - header_start) as u32;
            put_u32(&mut buf, header_len);
            buf
        };
        let mut columns = EventBlock::new(0);
        let good = encode(&[0, 10, 10, 10]);
        assert!(EventBlock::decode_view(&mut columns, 1, &good, BlockLayout::PackedColumns).is_ok());
        let back = encode(&[0, 10, 5, 10]);
        let err = EventBlock::decode_view(&mut columns, 1, &back, BlockLayout::PackedColumns).unwrap_err();
        assert!(err.to_string().contains("message offsets out of range"), "{err}");
    }

    /// A block read in place checks each message as it is read: a damaged one is an error (and
    /// so is the whole block, decoded or copied), the others read as written.
    #[test]
    fn messages_read_in_place_are_checked_one_by_one() {
        let mut b = EventBlock::new(3);
        for (i, m) in ["first ✓", "second é", "third"].iter().enumerate() {
            b.push(EventKey { timestamp: i as i64, seq: 0 }, 0, m);
        }
        let mut buf = Vec::new();
        b.encode(BlockLayout::PackedColumns, &mut buf);
        // The last byte of "second é" (the second byte of 'é') becomes a lone lead byte.
        let at = b.raw_bytes_before(2) - 1;
        buf[at] = 0xC3;
        let mut columns = EventBlock::new(0);
        let view = EventBlock::decode_view(&mut columns, 3, &buf, BlockLayout::PackedColumns).unwrap();
        assert_eq!(view.message(0).unwrap(), "first ✓");
        assert!(view.message(1).unwrap_err().to_string().contains("not UTF-8"));
        assert_eq!(view.message(2).unwrap(), "third");
        assert!(view.to_block().is_err());
        assert!(EventBlock::decode_owned(3, buf, BlockLayout::PackedColumns).is_err());
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
