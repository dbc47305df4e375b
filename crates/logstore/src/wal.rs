//! The write-ahead log: numbered segment files of checksummed records, one record per acknowledged
//! PutLogEvents batch. The single writer thread (see `engine`) writes the records of every request
//! that arrived since its last sync, then fdatasyncs once for all of them (group commit).
//!
//! Record: `len u32 | crc32 u32 | payload`, payload = `kind u8 (1 = append) | group u64 | stream u64 |
//! first_seq u64 | ingestion_time i64 | count u32 | (timestamp i64 | len u32 | message)*`.
//! Replay stops at the first short or corrupt record of a segment and truncates the segment there:
//! such a record was never acknowledged, because acknowledgement waits for the sync.
//!
//! Segments whose records are all in parts (below a committed checkpoint) are retired: kept as
//! spares (`<id>.spare`, at most [`MAX_SPARES`]) and renamed into the next new segment, which is
//! then written from its start over the old records. Overwriting blocks a file already has lets
//! fdatasync write data only: appending to a new file changes its size, so every group commit
//! waited for a filesystem journal commit — on ext4 (data=ordered) one that also wrote back the
//! part a flush was writing (measured beside a flusher: fdatasync p50 2.9 → 0.3 ms). The old
//! records left after the new ones are harmless: each is either cut off as a torn tail or intact,
//! and an intact one holds sequence numbers at or below the checkpoint that retired its segment,
//! which replay skips like every record a checkpoint covers.
//!
//! Where the filesystem takes it, a segment is written with direct I/O (`O_DIRECT`): each group
//! commit writes whole 4 KiB blocks from the segment's last partial block (rewritten with the
//! same bytes it held) to the end of its records, zero-filled after them, straight from the buffer
//! the writer encoded them into ([`WalSegment::start_records`]), and fdatasync then only flushes
//! the device. Buffered writes cost the writer thread a copy into the page cache at
//! ~1 GB/s — in a W1 ingest ~60 % of that thread's CPU, on a thread whose delay every
//! PutLogEvents waits for. A zero header is where the records end (no record has length 0), and
//! so are zeros shorter than a header at the end of the file (records that ended less than a
//! header before a block boundary).
//! Where the filesystem or device refuses it (older kernels' tmpfs, some FUSE filesystems),
//! segments are written through the page cache.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::codec::{put_i64, put_u32, put_u64, Reader};
use crate::{EventBatch, GroupId, StoreError, StreamId};

const RECORD_APPEND: u8 = 1;
const HEADER_LEN: usize = 8;
/// Upper bound of one record's payload: a 1 MiB batch plus per-event overhead, with margin.
const MAX_RECORD_LEN: usize = 64 << 20;

/// Direct I/O's alignment of file offsets, lengths and memory addresses (the largest logical
/// block size of common devices; a device that needs more refuses the first write, and the
/// segment is then written through the page cache).
const DIRECT_ALIGN: usize = 4096;

/// Retired segments kept for reuse, at most (each about a memtable's worth of bytes).
const MAX_SPARES: usize = 2;

pub fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:016x}.wal"))
}

fn spare_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:016x}.spare"))
}

/// The spare segments in the directory, oldest first.
fn list_spares(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let mut spares: Vec<PathBuf> = fs::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "spare"))
        .collect();
    spares.sort();
    Ok(spares)
}

/// Retires segment `id`, every record of which is below a committed checkpoint: kept as a spare
/// while there are fewer than `MAX_SPARES` (and it has more than a block to reuse), else deleted.
pub fn retire_segment(dir: &Path, id: u64) -> Result<(), StoreError> {
    let path = segment_path(dir, id);
    // A segment of one block at most (nothing written, or a direct write's first block) saves
    // nothing worth a spare.
    let reusable = fs::metadata(&path)?.len() > DIRECT_ALIGN as u64;
    if reusable && list_spares(dir)?.len() < MAX_SPARES {
        // Not synced: after a crash the file is a spare or still an old segment, which replay
        // skips (its records are below the checkpoint) and the next flush retires again.
        fs::rename(&path, spare_path(dir, id))?;
    } else {
        fs::remove_file(&path)?;
    }
    Ok(())
}

/// Lists segment ids in the directory, oldest first.
pub fn list_segments(dir: &Path) -> Result<Vec<u64>, StoreError> {
    let mut ids = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if let Some(hex) = name.strip_suffix(".wal") {
            if let Ok(id) = u64::from_str_radix(hex, 16) {
                ids.push(id);
            }
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// Appends one append-record for a batch to `out`.
pub fn encode_append(
    out: &mut Vec<u8>,
    group_id: GroupId,
    stream_id: StreamId,
    first_seq: u64,
    ingestion_time: i64,
    events: &EventBatch,
) {
    let start = out.len();
    out.extend_from_slice(&[0u8; HEADER_LEN]);
    out.push(RECORD_APPEND);
    put_u64(out, group_id);
    put_u64(out, stream_id);
    put_u64(out, first_seq);
    put_i64(out, ingestion_time);
    put_u32(out, events.len() as u32);
    for (ts, msg) in events.iter() {
        put_i64(out, ts);
        put_u32(out, msg.len() as u32);
        out.extend_from_slice(msg.as_bytes());
    }
    let payload_len = (out.len() - start - HEADER_LEN) as u32;
    let crc = crc32fast::hash(&out[start + HEADER_LEN..]);
    out[start..start + 4].copy_from_slice(&payload_len.to_le_bytes());
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// The bytes [`encode_append`] writes for a batch of `events` events holding `message_bytes`
/// bytes of messages (which the writer knows without walking the events again).
pub fn record_len(events: usize, message_bytes: usize) -> usize {
    HEADER_LEN + 37 + 12 * events + message_bytes
}

/// One decoded append record, borrowing its messages from the segment buffer.
pub struct AppendRecord<'a> {
    pub group_id: GroupId,
    pub stream_id: StreamId,
    pub first_seq: u64,
    pub ingestion_time: i64,
    pub events: Vec<(i64, &'a str)>,
}

impl AppendRecord<'_> {
    pub fn last_seq(&self) -> u64 {
        self.first_seq + self.events.len() as u64 - 1
    }
}

fn decode_append(payload: &[u8]) -> Result<AppendRecord<'_>, StoreError> {
    let mut r = Reader::new(payload);
    if r.u8()? != RECORD_APPEND {
        return Err(StoreError::Corrupt("unknown wal record kind".into()));
    }
    let group_id = r.u64()?;
    let stream_id = r.u64()?;
    let first_seq = r.u64()?;
    let ingestion_time = r.i64()?;
    let count = r.u32()? as usize;
    if count == 0 || count > payload.len() {
        return Err(StoreError::Corrupt("bad wal event count".into()));
    }
    let mut events = Vec::with_capacity(count);
    for _ in 0..count {
        let ts = r.i64()?;
        let len = r.u32()? as usize;
        let msg =
            std::str::from_utf8(r.bytes(len)?).map_err(|_| StoreError::Corrupt("wal message is not UTF-8".into()))?;
        events.push((ts, msg));
    }
    Ok(AppendRecord { group_id, stream_id, first_seq, ingestion_time, events })
}

/// What replaying one segment found.
#[derive(Debug, Default)]
pub struct SegmentReplay {
    pub records: usize,
    pub max_seq: Option<u64>,
    /// Set when a tail was cut off: (offset kept, bytes dropped).
    pub truncated: Option<(u64, u64)>,
    /// Why: false for a torn or corrupt record (a write a crash interrupted, never acknowledged),
    /// true for the old records of a reused segment (see the module's documentation).
    pub stale_tail: bool,
}

/// Replays one segment, calling `apply` for every intact record of its current life, and
/// truncates what follows: a torn or corrupt record, or what was never written in this life of the
/// segment: a reused segment's old records (an intact record whose sequence numbers are not above
/// the previous record's) and zeros (the header a reused segment starts with until its first
/// record is written, or a direct write's zero fill after the last record, even one shorter than
/// a header).
pub fn replay_segment(path: &Path, mut apply: impl FnMut(&AppendRecord<'_>)) -> Result<SegmentReplay, StoreError> {
    // Names the segment, so that a failed start says which file could not be read.
    let unreadable =
        |e: std::io::Error| StoreError::Io(std::io::Error::new(e.kind(), format!("reading {}: {e}", path.display())));
    // Read record by record, not whole: a reused segment's old records after its new ones are
    // never read past the first of them.
    let file = File::open(path).map_err(unreadable)?;
    let file_len = file.metadata().map_err(unreadable)?.len();
    let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
    let mut report = SegmentReplay::default();
    let mut pos = 0u64;
    let mut last_seq: Option<u64> = None;
    let mut payload = Vec::new();
    while pos < file_len {
        // Lengths are checked against the file's before each read, so a read that fails is an
        // i/o error, not a torn tail: it fails the start instead of cutting acknowledged records.
        let mut header = [0u8; HEADER_LEN];
        let left = file_len - pos;
        if left < HEADER_LEN as u64 {
            // Less than a header: if only zeros, the end of a direct write's zero fill (its
            // records ended less than a header before a block boundary); else a torn header.
            reader.read_exact(&mut header[..left as usize]).map_err(unreadable)?;
            report.stale_tail = header == [0; HEADER_LEN];
            break;
        }
        reader.read_exact(&mut header).map_err(unreadable)?;
        if header == [0; HEADER_LEN] {
            // Nothing written here yet: a reused segment's start until its first record, or the
            // zeros a direct write leaves after the last record.
            report.stale_tail = true;
            break;
        }
        let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
        let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
        if len > MAX_RECORD_LEN || file_len - pos - (HEADER_LEN as u64) < len as u64 {
            break;
        }
        payload.resize(len, 0);
        reader.read_exact(&mut payload).map_err(unreadable)?;
        if crc32fast::hash(&payload) != crc {
            break;
        }
        let Ok(record) = decode_append(&payload) else { break };
        if last_seq.is_some_and(|last| record.first_seq <= last) {
            report.stale_tail = true;
            break;
        }
        report.records += 1;
        report.max_seq = Some(report.max_seq.unwrap_or(0).max(record.last_seq()));
        last_seq = Some(record.last_seq());
        apply(&record);
        pos += (HEADER_LEN + len) as u64;
    }
    if pos < file_len {
        let file = OpenOptions::new().write(true).open(path)?;
        file.set_len(pos)?;
        file.sync_all()?;
        report.truncated = Some((pos, file_len - pos));
    }
    Ok(report)
}

/// The open segment the writer thread appends to.
pub struct WalSegment {
    pub id: u64,
    file: File,
    /// Set when the segment is written with direct I/O (see the module's documentation).
    direct: Option<DirectWrites>,
}

/// How a segment is written: [`WriteMode::Direct`] where the filesystem takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    Direct,
    Buffered,
}

/// The state of a segment written with direct I/O.
struct DirectWrites {
    /// Where its records end.
    end: u64,
    /// The bytes of its last partial block (`end % DIRECT_ALIGN` of them), written again in front
    /// of the next records.
    tail: Vec<u8>,
    /// Aligned memory for a write whose buffer is not aligned (see [`WalSegment::write_records`]).
    mem: AlignedMemory,
}

impl WalSegment {
    /// Starts segment `id`: a spare renamed to it and written from its start (see the module's
    /// documentation), or a new file. The rename or creation is synced before any record is
    /// written. A file already named `id` is what an earlier call left when it failed after
    /// renaming or creating it (the writer then stayed on its segment and never wrote to this
    /// one): it is taken as it is, so that a failure there (a full directory, no file handles)
    /// does not stop every later segment.
    pub fn create(dir: &Path, id: u64) -> Result<WalSegment, StoreError> {
        Self::create_with(dir, id, WriteMode::Direct)
    }

    /// [`WalSegment::create`], with direct I/O only if `mode` asks for it (and the filesystem
    /// takes it).
    pub fn create_with(dir: &Path, id: u64, mode: WriteMode) -> Result<WalSegment, StoreError> {
        let path = segment_path(dir, id);
        if !path.exists() {
            match list_spares(dir)?.into_iter().next() {
                Some(spare) => fs::rename(&spare, &path)?,
                None => drop(OpenOptions::new().create_new(true).write(true).open(&path)?),
            }
        }
        crate::part::sync_dir(dir)?;
        if mode == WriteMode::Direct {
            if let Some(segment) = Self::open_direct(&path, id) {
                return Ok(segment);
            }
        }
        let file = OpenOptions::new().write(true).open(&path)?;
        if file.metadata()?.len() > 0 {
            // Until its first record overwrites them, zeros say "nothing written yet" to replay
            // (which would otherwise read the old records, then skip them, all of them). Not
            // synced: if they are lost, replay skips the old records all the same.
            file.write_all_at(&[0; HEADER_LEN], 0)?;
        }
        Ok(WalSegment { id, file, direct: None })
    }

    /// Opens the segment for direct writes, and zeroes its first block with one (which says
    /// "nothing written yet", as above, and proves that the filesystem and device take such
    /// writes). None when either fails: the caller then writes through the page cache.
    fn open_direct(path: &Path, id: u64) -> Option<WalSegment> {
        let flags = rustix::fs::OFlags::DIRECT.bits() as i32;
        let file = OpenOptions::new().write(true).custom_flags(flags).open(path).ok()?;
        let mut probe = AlignedMemory::default();
        let first = probe.blocks(DIRECT_ALIGN);
        first.fill(0);
        if let Err(e) = file.write_all_at(first, 0) {
            tracing::debug!(error = %e, path = %path.display(), "direct I/O refused; the WAL is written through the page cache");
            return None;
        }
        let direct = DirectWrites { end: 0, tail: Vec::new(), mem: AlignedMemory::default() };
        Some(WalSegment { id, file, direct: Some(direct) })
    }

    /// How this segment is written.
    pub fn mode(&self) -> WriteMode {
        if self.direct.is_some() {
            WriteMode::Direct
        } else {
            WriteMode::Buffered
        }
    }

    /// Clears `buf` for a group commit of `records_len` bytes of records and returns where they
    /// start in it. Written directly, they start after an alignment gap and the segment's last
    /// partial block, with room reserved for them and the zero fill, so that
    /// [`WalSegment::write_records`] writes from `buf` itself, without a copy.
    pub fn start_records(&self, buf: &mut Vec<u8>, records_len: usize) -> usize {
        buf.clear();
        let Some(direct) = &self.direct else { return 0 };
        buf.reserve(DIRECT_ALIGN + (direct.tail.len() + records_len).next_multiple_of(DIRECT_ALIGN));
        let gap = (DIRECT_ALIGN - buf.as_ptr() as usize % DIRECT_ALIGN) % DIRECT_ALIGN;
        buf.resize(gap, 0);
        buf.extend_from_slice(&direct.tail);
        buf.len()
    }

    /// Writes the records appended to `buf` from `records_at` (what [`WalSegment::start_records`]
    /// returned) and makes them durable (fdatasync).
    pub fn write_records(&mut self, buf: &mut Vec<u8>, records_at: usize) -> Result<(), StoreError> {
        match &mut self.direct {
            None => self.file.write_all(&buf[records_at..])?,
            Some(direct) => {
                let blocks_at = records_at - direct.tail.len();
                let records_len = buf.len() - records_at;
                let len = buf.len() - blocks_at;
                buf.resize(blocks_at + len.next_multiple_of(DIRECT_ALIGN), 0);
                let blocks = &buf[blocks_at..];
                let start = direct.end - direct.tail.len() as u64;
                if (blocks.as_ptr() as usize).is_multiple_of(DIRECT_ALIGN) {
                    self.file.write_all_at(blocks, start)?;
                } else {
                    // `buf` moved (it grew past the room reserved): written from aligned memory.
                    let aligned = direct.mem.blocks(blocks.len());
                    aligned.copy_from_slice(blocks);
                    self.file.write_all_at(aligned, start)?;
                }
                direct.end += records_len as u64;
                let tail_len = (direct.end % DIRECT_ALIGN as u64) as usize;
                direct.tail.clear();
                direct.tail.extend_from_slice(&buf[blocks_at + len - tail_len..blocks_at + len]);
            }
        }
        self.file.sync_data()?;
        Ok(())
    }

    /// Writes and makes durable (fdatasync) a buffer of whole records.
    #[cfg(test)]
    pub fn write_durable(&mut self, records: &[u8]) -> Result<(), StoreError> {
        let mut buf = Vec::new();
        let records_at = self.start_records(&mut buf, records.len());
        buf.extend_from_slice(records);
        self.write_records(&mut buf, records_at)
    }
}

/// Bytes at a [`DIRECT_ALIGN`]ed address, taken from an ordinary allocation (one alignment's
/// worth larger than asked for): where a direct write's blocks are copied when the buffer they
/// were encoded into is not aligned.
#[derive(Default)]
struct AlignedMemory {
    bytes: Vec<u8>,
}

impl AlignedMemory {
    /// `len` bytes starting at an aligned address (their content is whatever was left there).
    fn blocks(&mut self, len: usize) -> &mut [u8] {
        if self.bytes.len() < len + DIRECT_ALIGN {
            self.bytes = vec![0; (len + DIRECT_ALIGN).next_power_of_two()];
        }
        let misalignment = self.bytes.as_ptr() as usize % DIRECT_ALIGN;
        let start = (DIRECT_ALIGN - misalignment) % DIRECT_ALIGN;
        &mut self.bytes[start..start + len]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(n: usize) -> EventBatch {
        (0..n).map(|i| (i as i64, format!("message {i}"))).collect()
    }

    const MODES: [WriteMode; 2] = [WriteMode::Direct, WriteMode::Buffered];

    #[test]
    fn replay_returns_what_was_written_and_cuts_a_torn_tail() {
        for mode in MODES {
            replay_returns_what_was_written_and_cuts_a_torn_tail_in(mode);
        }
    }

    fn replay_returns_what_was_written_and_cuts_a_torn_tail_in(mode: WriteMode) {
        let dir = tempfile::tempdir().unwrap();
        let mut seg = WalSegment::create_with(dir.path(), 1, mode).unwrap();
        let mut buf = Vec::new();
        encode_append(&mut buf, 1, 2, 10, 99, &events(3));
        encode_append(&mut buf, 1, 3, 13, 99, &events(2));
        seg.write_durable(&buf).unwrap();
        // A torn third record: only half of it reached the disk.
        let mut torn = Vec::new();
        encode_append(&mut torn, 1, 2, 15, 99, &events(4));
        seg.write_durable(&torn[..torn.len() / 2]).unwrap();
        drop(seg);

        let mut seen = Vec::new();
        let path = segment_path(dir.path(), 1);
        let report = replay_segment(&path, |r| seen.push((r.stream_id, r.first_seq, r.events.len()))).unwrap();
        assert_eq!(seen, vec![(2, 10, 3), (3, 13, 2)]);
        assert_eq!(report.max_seq, Some(14));
        assert!(report.truncated.is_some());
        assert_eq!(fs::metadata(&path).unwrap().len() as usize, buf.len());
        // Replaying again finds the same records and nothing to cut.
        let again = replay_segment(&path, |_| {}).unwrap();
        assert_eq!((again.records, again.truncated), (2, None));
    }

    /// Records that end less than a header before a block boundary leave fewer zeros than a
    /// header after them in a direct write: replay takes those for the end of the records too,
    /// not for a torn tail. A torn header as short is still one.
    #[test]
    fn a_zero_fill_shorter_than_a_header_is_the_end_of_the_records() {
        for left in 1..HEADER_LEN {
            let dir = tempfile::tempdir().unwrap();
            let mut seg = WalSegment::create_with(dir.path(), 1, WriteMode::Direct).unwrap();
            // One record whose message makes it end `left` bytes before the block's end.
            let message = "m".repeat(DIRECT_ALIGN - left - record_len(1, 0));
            let mut buf = Vec::new();
            encode_append(&mut buf, 1, 2, 1, 99, &[(5, message)].into_iter().collect());
            assert_eq!(buf.len(), DIRECT_ALIGN - left);
            seg.write_durable(&buf).unwrap();
            let path = segment_path(dir.path(), 1);
            if seg.mode() == WriteMode::Buffered {
                // No direct I/O here: the zeros it would leave, appended by hand.
                fs::OpenOptions::new().append(true).open(&path).unwrap().write_all(&vec![0; left]).unwrap();
            }
            drop(seg);
            assert_eq!(fs::metadata(&path).unwrap().len(), DIRECT_ALIGN as u64);
            let report = replay_segment(&path, |_| {}).unwrap();
            assert_eq!(report.records, 1);
            assert!(report.stale_tail, "{left} zeros after the last record");
            assert_eq!(report.truncated, Some(((DIRECT_ALIGN - left) as u64, left as u64)));

            // The same length of a torn header (not all zeros) is a torn tail.
            let mut torn = buf.clone();
            torn.extend(std::iter::repeat_n(0, left - 1));
            torn.push(7);
            fs::write(&path, &torn).unwrap();
            let report = replay_segment(&path, |_| {}).unwrap();
            assert_eq!((report.records, report.stale_tail), (1, false), "{left} bytes of a torn header");
            assert_eq!(report.truncated, Some(((DIRECT_ALIGN - left) as u64, left as u64)));
        }
    }

    #[test]
    fn a_flipped_bit_ends_replay_at_that_record() {
        for mode in MODES {
            let dir = tempfile::tempdir().unwrap();
            a_flipped_bit_ends_replay_at_that_record_in(dir.path(), mode);
        }
    }

    fn a_flipped_bit_ends_replay_at_that_record_in(dir: &Path, mode: WriteMode) {
        let mut seg = WalSegment::create_with(dir, 7, mode).unwrap();
        let mut buf = Vec::new();
        encode_append(&mut buf, 1, 2, 1, 0, &events(1));
        let first = buf.len();
        encode_append(&mut buf, 1, 2, 2, 0, &events(1));
        buf[first + 20] ^= 1;
        seg.write_durable(&buf).unwrap();
        let report = replay_segment(&segment_path(dir, 7), |_| {}).unwrap();
        assert_eq!(report.records, 1);
        assert!(!report.stale_tail, "a corrupt record is not taken for the end of the records");
        assert_eq!(list_segments(dir).unwrap(), vec![7]);
    }

    /// A retired segment is reused from its start. Replay reads nothing of it until a record is
    /// written (the zeroed header), then only the new records, not the intact old ones after them
    /// (nor, written directly, the zeros after them).
    #[test]
    fn a_reused_segment_replays_only_its_new_records() {
        for mode in MODES {
            a_reused_segment_replays_only_its_new_records_in(mode);
        }
    }

    fn a_reused_segment_replays_only_its_new_records_in(mode: WriteMode) {
        let dir = tempfile::tempdir().unwrap();
        let mut old = WalSegment::create_with(dir.path(), 1, mode).unwrap();
        let mut buf = Vec::new();
        for i in 0..100 {
            encode_append(&mut buf, 1, 2, 1 + i, 99, &events(1));
        }
        assert!(buf.len() > DIRECT_ALIGN + 1000, "more than its first block");
        old.write_durable(&buf).unwrap();
        let record_len = buf.len() / 100;
        drop(old);
        retire_segment(dir.path(), 1).unwrap();
        assert!(!segment_path(dir.path(), 1).exists());

        let mut reused = WalSegment::create_with(dir.path(), 2, mode).unwrap();
        let path = segment_path(dir.path(), 2);
        let old_len = fs::metadata(&path).unwrap().len();
        assert!(old_len >= buf.len() as u64, "the spare was reused");
        assert!(list_spares(dir.path()).unwrap().is_empty());
        let mut seen = 0;
        let report = replay_segment(&path, |_| seen += 1).unwrap();
        assert_eq!((seen, report.stale_tail, report.truncated), (0, true, Some((0, old_len))));

        // Truncated by that replay: grow it back as the crash left it, then write 3 new records.
        fs::write(&path, &buf).unwrap();
        let mut new = Vec::new();
        for i in 0..3 {
            encode_append(&mut new, 1, 2, 101 + i, 99, &events(1));
        }
        reused.write_durable(&new).unwrap();
        let len = fs::metadata(&path).unwrap().len();
        let mut seqs = Vec::new();
        let report = replay_segment(&path, |r| seqs.push(r.first_seq)).unwrap();
        assert_eq!(seqs, [101, 102, 103]);
        assert!(report.stale_tail);
        assert_eq!(report.truncated, Some((3 * record_len as u64, len - 3 * record_len as u64)));
    }

    #[test]
    fn segments_beyond_the_spares_and_empty_ones_are_deleted() {
        for mode in MODES {
            segments_beyond_the_spares_and_empty_ones_are_deleted_in(mode);
        }
    }

    fn segments_beyond_the_spares_and_empty_ones_are_deleted_in(mode: WriteMode) {
        let dir = tempfile::tempdir().unwrap();
        for id in 1..=4 {
            let mut seg = WalSegment::create_with(dir.path(), id, mode).unwrap();
            if id != 2 {
                let mut buf = Vec::new();
                encode_append(&mut buf, 1, 2, id, 99, &events(400));
                seg.write_durable(&buf).unwrap();
            }
        }
        for id in 1..=4 {
            retire_segment(dir.path(), id).unwrap();
        }
        assert!(list_segments(dir.path()).unwrap().is_empty());
        let spares = list_spares(dir.path()).unwrap();
        assert_eq!(spares, [spare_path(dir.path(), 1), spare_path(dir.path(), 3)]);
    }

    /// A segment file left by a creation that failed half-way (renamed or created, then an
    /// error) is taken by the next attempt for the same id instead of failing it forever.
    #[test]
    fn a_segment_left_by_a_failed_creation_is_taken_as_it_is() {
        for mode in MODES {
            a_segment_left_by_a_failed_creation_is_taken_as_it_is_in(mode);
        }
    }

    fn a_segment_left_by_a_failed_creation_is_taken_as_it_is_in(mode: WriteMode) {
        let dir = tempfile::tempdir().unwrap();
        let mut old = Vec::new();
        encode_append(&mut old, 1, 2, 1, 99, &events(3));
        fs::write(segment_path(dir.path(), 7), &old).unwrap();
        let mut seg = WalSegment::create_with(dir.path(), 7, mode).unwrap();
        let mut seen = 0;
        replay_segment(&segment_path(dir.path(), 7), |_| seen += 1).unwrap();
        assert_eq!(seen, 0, "its old records are not replayed");
        let mut new = Vec::new();
        encode_append(&mut new, 1, 2, 10, 99, &events(1));
        seg.write_durable(&new).unwrap();
        let mut seqs = Vec::new();
        replay_segment(&segment_path(dir.path(), 7), |r| seqs.push(r.first_seq)).unwrap();
        assert_eq!(seqs, [10]);
    }

    /// A segment that cannot be read fails the start, naming the file (it is not cut as if torn).
    #[test]
    fn an_unreadable_segment_is_an_error_that_names_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = segment_path(dir.path(), 3);
        fs::create_dir(&path).unwrap(); // opens, but every read fails
        fs::write(path.join("x"), vec![1u8; 64]).unwrap();
        let err = replay_segment(&path, |_| {}).unwrap_err().to_string();
        assert!(err.contains(&path.display().to_string()), "{err}");
    }

    /// Written directly or through the page cache, a segment holds the same bytes up to the end
    /// of its records (a direct write leaves zeros after them, to the end of their block), and
    /// replay finds the same records in both. Batches of random sizes cross block boundaries
    /// in every way, so each direct write rewrites a partial block left by the one before.
    mod same_records_either_way {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]
            #[test]
            fn direct_and_buffered_segments_hold_the_same_records(
                batches in proptest::collection::vec(
                    (proptest::collection::vec((1usize..40, 0usize..700), 1..6), any::<bool>()),
                    1..12,
                ),
            ) {
                let dir = tempfile::tempdir().unwrap();
                let mut direct = WalSegment::create_with(dir.path(), 1, WriteMode::Direct).unwrap();
                let mut buffered = WalSegment::create_with(dir.path(), 2, WriteMode::Buffered).unwrap();
                prop_assert_eq!(buffered.mode(), WriteMode::Buffered);
                let mut seq = 1u64;
                let mut written = Vec::new();
                let mut expected = Vec::new();
                let mut buf = Vec::new();
                for (batch, moved) in &batches {
                    let mut records = Vec::new();
                    for &(n, len) in batch {
                        let events: Vec<(i64, String)> = (0..n).map(|i| (i as i64, "x".repeat((len + i) % 700))).collect();
                        let before = records.len();
                        encode_append(&mut records, 1, 2, seq, 99, &events.iter().map(|(t, m)| (*t, m)).collect());
                        let message_bytes = events.iter().map(|(_, m)| m.len()).sum();
                        prop_assert_eq!(records.len() - before, record_len(events.len(), message_bytes));
                        expected.push((seq, events));
                        seq += n as u64;
                    }
                    // As the writer does: encoded into the buffer the segment laid out.
                    let records_at = direct.start_records(&mut buf, records.len());
                    buf.extend_from_slice(&records);
                    if let Some(d) = &direct.direct {
                        // The room reserved held the records: their blocks start aligned.
                        let blocks_at = records_at - d.tail.len();
                        prop_assert_eq!((buf.as_ptr() as usize + blocks_at) % DIRECT_ALIGN, 0);
                    }
                    if *moved {
                        // Elsewhere in memory, most likely not aligned: copied to aligned memory.
                        let mut elsewhere = Vec::with_capacity(buf.len() + 1);
                        elsewhere.push(0);
                        elsewhere.extend_from_slice(&buf);
                        elsewhere.remove(0);
                        buf = elsewhere;
                    }
                    direct.write_records(&mut buf, records_at).unwrap();
                    buffered.write_durable(&records).unwrap();
                    written.extend_from_slice(&records);
                    if direct.mode() == WriteMode::Direct {
                        let len = fs::metadata(segment_path(dir.path(), 1)).unwrap().len();
                        prop_assert_eq!(len, written.len().div_ceil(DIRECT_ALIGN) as u64 * DIRECT_ALIGN as u64);
                    }
                }
                let direct_bytes = fs::read(segment_path(dir.path(), 1)).unwrap();
                prop_assert_eq!(&direct_bytes[..written.len()], &written[..]);
                prop_assert!(direct_bytes[written.len()..].iter().all(|&b| b == 0));
                prop_assert_eq!(fs::read(segment_path(dir.path(), 2)).unwrap(), written.clone());
                for id in [1, 2] {
                    let mut seen = Vec::new();
                    let report = replay_segment(&segment_path(dir.path(), id), |r| {
                        let events: Vec<(i64, String)> = r.events.iter().map(|(t, m)| (*t, m.to_string())).collect();
                        seen.push((r.first_seq, events));
                    })
                    .unwrap();
                    prop_assert_eq!(&seen, &expected);
                    prop_assert_eq!(report.max_seq, Some(seq - 1));
                    // Whatever was cut is the zeros after the records, taken for their end.
                    prop_assert!(report.truncated.is_none() || report.stale_tail);
                    prop_assert_eq!(fs::metadata(segment_path(dir.path(), id)).unwrap().len(), written.len() as u64);
                }
            }
        }
    }

    /// Where the filesystem is one that takes direct I/O (ext4, xfs, btrfs), segments are written
    /// with it. Elsewhere (tmpfs takes it on recent kernels, on older ones not) either way, and
    /// replay reads them the same. (Buffered writing itself is what the `WriteMode::Buffered` cases above test.)
    #[test]
    fn segments_are_written_directly_where_the_filesystem_takes_it() {
        const EXT4: u64 = 0xEF53;
        const XFS: u64 = 0x5846_5342;
        const BTRFS: u64 = 0x9123_683E;
        let mut dirs = vec![tempfile::tempdir().unwrap()];
        if Path::new("/dev/shm").is_dir() {
            dirs.push(tempfile::tempdir_in("/dev/shm").unwrap());
        }
        let mut checked = 0;
        for dir in &dirs {
            let kind = rustix::fs::statfs(dir.path()).unwrap().f_type as u64;
            let mut seg = WalSegment::create(dir.path(), 1).unwrap();
            if matches!(kind, EXT4 | XFS | BTRFS) {
                assert_eq!(seg.mode(), WriteMode::Direct, "{}", dir.path().display());
                checked += 1;
            }
            let mut buf = Vec::new();
            encode_append(&mut buf, 1, 2, 1, 99, &events(5));
            seg.write_durable(&buf).unwrap();
            let mut seen = 0;
            replay_segment(&segment_path(dir.path(), 1), |r| seen += r.events.len()).unwrap();
            assert_eq!(seen, 5);
        }
        if checked == 0 {
            eprintln!("no temporary directory on ext4, xfs or btrfs: direct writes were not required");
        }
    }
}
