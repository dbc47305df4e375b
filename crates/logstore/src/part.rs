//! Part files: the immutable on-disk unit of the store. One part holds events of one log group and
//! one UTC day, grouped by stream into compressed blocks (LZ4 while the data is recent, zstd once it
//! is at rest: `BlockCodec`); an index at the end keeps, per block,
//! the stream, the key range (min/max timestamp and sequence), counts, offsets and a CRC.
//!
//! Layout: `MAGIC | block* | bloom* | index entry* | summary | footer`. Each bloom group (one
//! stream's consecutive blocks, see `BlockSplit`) has a token bloom (see `bloom`), which every one
//! of its index entries points at, so scans for required words can skip its blocks without
//! decompressing them. An open part
//! keeps in memory only its footer's facts, its key range and the streams it holds, which the
//! summary (`PartSummary`, format 6) states, so opening reads neither the index nor anything else
//! that grows with the number of blocks (older parts are summarised from their index as they
//! open). The block index is read when a scan or a merge needs it, checked against the footer's
//! checksum, and kept in a bounded cache (`BlockIndexCache`), so memory does not grow with what is
//! stored. A part is written to a temporary name, fsynced
//! and renamed; it becomes live only once the catalog records it (see `engine`), so a part file that
//! the catalog does not list is an orphan of an interrupted flush and is deleted at start.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use crate::block::{BlockLayout, BlockView, EventBlock, MAX_BLOCK_EVENTS, MAX_BLOCK_SPAN_MS, TARGET_BLOCK_RAW_BYTES};
use crate::cache::{BlockIndexCache, BloomPageCache};
use crate::codec::{put_i64, put_u32, put_u64, Reader};
use crate::{EventKey, GroupId, StoreError, StreamId};

const MAGIC: &[u8; 8] = b"LKPART02";
const FOOTER_MAGIC: &[u8; 8] = b"LKPARTF2";
/// 7: each block's column header is bit-packed column by column (`BlockLayout::PackedColumns`);
/// 6: a summary (`PartSummary`) between the index and the footer; 5: each block's column header follows its messages (`BlockLayout::MessagesFirst`); 4: the
/// footer's codec word may say LZ4; 3: blooms carry marks (`bloom::JSON_OBJECT_MARK`) and
/// the blocks are zstd; 2 (still read): the same layout without marks.
/// (Blooms that leave out hex fragments say so themselves, in a way older readers take for
/// "maybe": see `bloom.rs`.)
/// The footer's version word holds the format in its low 16 bits and, from format 3 on, the
/// blocks' codec in its high 16 bits (`BlockCodec::word`; 0 in parts written before it was
/// recorded, which are zstd).
const FORMAT_VERSION: u32 = 7;
const FIRST_VERSION_WITH_MARKS: u32 = 3;
const FIRST_VERSION_MESSAGES_FIRST: u32 = 5;
const FIRST_VERSION_WITH_SUMMARY: u32 = 6;
const FIRST_VERSION_PACKED_COLUMNS: u32 = 7;
const INDEX_ENTRY_LEN: usize = 76;
const FOOTER_LEN: usize = 48;

/// How the blocks of a part in format `version` are laid out.
fn block_layout(version: u32) -> BlockLayout {
    if version >= FIRST_VERSION_PACKED_COLUMNS {
        BlockLayout::PackedColumns
    } else if version >= FIRST_VERSION_MESSAGES_FIRST {
        BlockLayout::MessagesFirst
    } else {
        BlockLayout::HeaderFirst
    }
}

/// How a part's blocks are compressed (its footer says which).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum BlockCodec {
    /// LZ4's block format: what flushes and merges of recent data write. It compresses faster
    /// than zstd level 1 and decompresses about 3x faster (~3 GB/s per core against ~1), so
    /// searches of recent data are bound less by decompression; its files are larger (W3's
    /// 1 GB: 410 MB against 269 MB at zstd 1) until the data is at rest.
    Lz4,
    /// zstd at this level (0: a part written before levels were recorded).
    Zstd(i32),
}

/// The codec of parts written by flushes (fast: a flush keeps up with ingest on one core).
pub const FLUSH_CODEC: BlockCodec = BlockCodec::Lz4;

/// How an LZ4 part (recent data) stores a bloom group (up to `TARGET_BLOCK_RAW_BYTES` and
/// `MAX_BLOCK_SPAN_MS` of one stream's events, which share one bloom): as several blocks, each
/// compressed alone, a block being closed once it holds at least `min_raw_bytes` of messages and
/// spans at least `min_span_ms`. A time-ordered page must decode every block that starts before
/// its last event; with 2-hour blocks that was each quiet stream's first 2 hours (W3's `ERROR` at
/// 10 GB: ~280 MB decoded for a page of ~6 minutes). Blooms stay per group, so a search for a rare
/// word reads and tests as many blooms as before; zstd parts (data at rest) keep one block per
/// group, which compresses better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockSplit {
    pub min_raw_bytes: usize,
    pub min_span_ms: i64,
}

impl BlockSplit {
    /// What flushes and merges of recent data use.
    pub const RECENT: BlockSplit = BlockSplit { min_raw_bytes: 64 * 1024, min_span_ms: 10 * 60 * 1000 };
}

/// The footer's codec word for LZ4 (zstd levels are their own number, 0..=0x7FFF).
const LZ4_WORD: u32 = 0x8000;

impl BlockCodec {
    /// The high 16 bits of the footer's version word.
    fn word(self) -> u32 {
        match self {
            BlockCodec::Lz4 => LZ4_WORD,
            BlockCodec::Zstd(level) => level.clamp(0, 0x7FFF) as u32,
        }
    }

    fn from_word(word: u32) -> Result<BlockCodec, String> {
        match word {
            LZ4_WORD => Ok(BlockCodec::Lz4),
            0..0x8000 => Ok(BlockCodec::Zstd(word as i32)),
            other => Err(format!("unknown block codec {other:#x}")),
        }
    }

    /// True for zstd at `rest_level` or above: what compaction at rest writes.
    pub fn is_at_rest(self, rest_level: i32) -> bool {
        matches!(self, BlockCodec::Zstd(level) if level >= rest_level)
    }
}

/// What the part index says of one block.
#[derive(Debug, Clone, Copy)]
pub struct BlockMeta {
    pub stream_id: StreamId,
    pub min_key: EventKey,
    pub max_key: EventKey,
    /// Events in the block.
    #[allow(dead_code)]
    pub count: u32,
    pub raw_len: u32,
    pub offset: u64,
    pub comp_len: u32,
    pub crc: u32,
    pub bloom_offset: u64,
    pub bloom_len: u32,
}

/// A part's block index: one entry per block, in file order (by stream, then key).
pub type BlockIndex = Vec<BlockMeta>;

/// An open, immutable part file and what is known of it without its block index.
#[derive(Debug)]
pub struct Part {
    pub id: u64,
    pub group_id: GroupId,
    pub day: i64,
    pub path: PathBuf,
    pub file_bytes: u64,
    pub raw_bytes: u64,
    /// Blocks in the part.
    block_count: usize,
    /// The smallest of its blocks' smallest keys and the largest of their largest.
    pub min_key: EventKey,
    pub max_key: EventKey,
    /// The streams it holds events of, sorted.
    streams: Box<[StreamId]>,
    /// Where its block index starts, and the index's checksum.
    index_offset: u64,
    index_crc: u32,
    /// Its block index while something (a scan, a merge, the index cache) holds it: whoever
    /// needs it next shares that copy instead of reading another.
    loaded_index: parking_lot::Mutex<std::sync::Weak<BlockIndex>>,
    /// Whether the blooms carry marks (format 3 on): without them a mark says nothing.
    pub has_marks: bool,
    /// How its blocks are compressed.
    pub codec: BlockCodec,
    /// Where its blocks' column headers are (by format).
    layout: BlockLayout,
    /// When this process wrote or opened it (how long its partition has been quiet).
    pub opened_at: std::time::Instant,
    /// Where the blooms are in the file (they are written one after the other).
    bloom_section: std::ops::Range<u64>,
    file: File,
}

/// Blooms are read (and cached) in pages of this many bytes of a part's bloom section (small in
/// unit tests, so that they cross pages).
const BLOOM_PAGE_BYTES: u64 = if cfg!(test) { 4096 } else { 1 << 20 };

impl Part {
    pub fn file_name(id: u64) -> String {
        format!("{id:016x}.part")
    }

    /// Reads and verifies a part's footer and index.
    pub fn open(path: &Path, id: u64) -> Result<Part, StoreError> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        if len < (MAGIC.len() + FOOTER_LEN) as u64 {
            return Err(StoreError::Corrupt(format!("part {} is too short", path.display())));
        }
        let mut footer = [0u8; FOOTER_LEN];
        file.read_exact_at(&mut footer, len - FOOTER_LEN as u64)?;
        let mut r = Reader::new(&footer);
        let group_id = r.u64()?;
        let day = r.i64()?;
        let index_offset = r.u64()?;
        let block_count = r.u32()? as usize;
        let index_crc = r.u32()?;
        let version_word = r.u32()?;
        let version = version_word & 0xFFFF;
        let footer_crc = r.u32()?;
        let magic = r.bytes(8)?;
        if magic != FOOTER_MAGIC || version < 2 {
            return Err(StoreError::Corrupt(format!("part {} has a bad footer", path.display())));
        }
        if crc32fast::hash(&footer[..36]) != footer_crc {
            return Err(StoreError::Corrupt(format!("part {} footer checksum mismatch", path.display())));
        }
        if version > FORMAT_VERSION {
            return Err(StoreError::Corrupt(format!(
                "part {} has format {version}, newer than this lookout reads ({FORMAT_VERSION}): it was written by a \
                 newer lookout; run that version (or a later one) on this data directory",
                path.display()
            )));
        }
        let codec = BlockCodec::from_word(version_word >> 16)
            .map_err(|e| StoreError::Corrupt(format!("part {}: {e}", path.display())))?;
        if codec == BlockCodec::Lz4 && version < 4 {
            return Err(StoreError::Corrupt(format!("part {} has a bad footer", path.display())));
        }
        let index_end = index_offset.checked_add((block_count * INDEX_ENTRY_LEN) as u64);
        let summary_end = len - FOOTER_LEN as u64;
        let out_of_bounds = || StoreError::Corrupt(format!("part {} index out of bounds", path.display()));
        let summary = if version >= FIRST_VERSION_WITH_SUMMARY {
            let start = index_end.filter(|&end| end <= summary_end).ok_or_else(out_of_bounds)?;
            let mut bytes = vec![0u8; (summary_end - start) as usize];
            file.read_exact_at(&mut bytes, start)?;
            PartSummary::decode(&bytes, index_offset, block_count)
                .map_err(|what| StoreError::Corrupt(format!("part {} has a bad summary: {what}", path.display())))?
        } else {
            if index_end != Some(summary_end) {
                return Err(out_of_bounds());
            }
            PartSummary::of(&read_index(&file, path, index_offset, block_count, index_crc)?, 0, index_offset)
        };
        let PartSummary { raw_bytes, min_key, max_key, bloom_start, streams } = summary;
        let has_marks = version >= FIRST_VERSION_WITH_MARKS;
        let bloom_section = bloom_start..index_offset;
        Ok(Part {
            id,
            group_id,
            day,
            path: path.to_path_buf(),
            file_bytes: len,
            raw_bytes,
            block_count,
            min_key,
            max_key,
            streams: streams.into_boxed_slice(),
            index_offset,
            index_crc,
            loaded_index: parking_lot::Mutex::new(std::sync::Weak::new()),
            has_marks,
            codec,
            layout: block_layout(version),
            opened_at: std::time::Instant::now(),
            bloom_section,
            file,
        })
    }

    /// Whether it holds events of any of `streams`.
    pub fn holds_any<V, S: std::hash::BuildHasher>(&self, streams: &std::collections::HashMap<StreamId, V, S>) -> bool {
        if self.streams.len() <= streams.len() {
            self.streams.iter().any(|s| streams.contains_key(s))
        } else {
            streams.keys().any(|s| self.streams.binary_search(s).is_ok())
        }
    }

    /// Its block index: the copy someone already holds, the cache's, or a fresh read (checked
    /// against the footer's checksum) that the cache then keeps, when one is given (a merge,
    /// which reads each part once, passes none).
    pub fn block_index(&self, cache: Option<&BlockIndexCache>) -> Result<Arc<BlockIndex>, StoreError> {
        if let Some(index) = cache.and_then(|c| c.get((self.id, 0))) {
            return Ok(index);
        }
        let mut loaded = self.loaded_index.lock();
        if let Some(index) = loaded.upgrade() {
            return Ok(index);
        }
        let index = Arc::new(read_index(&self.file, &self.path, self.index_offset, self.block_count, self.index_crc)?);
        *loaded = Arc::downgrade(&index);
        drop(loaded);
        if let Some(cache) = cache {
            cache.insert((self.id, 0), index.clone());
        }
        Ok(index)
    }

    /// Reads, verifies and decodes block `i` (`meta`, its index entry) into a block of its own (a
    /// merge's input; a scan uses `visit_block`).
    pub fn read_block(&self, i: usize, meta: &BlockMeta) -> Result<EventBlock, StoreError> {
        let mut raw = Vec::with_capacity(meta.raw_len as usize);
        let raw_len = self.decompress_into(i, meta, &mut raw)?;
        raw.truncate(raw_len);
        EventBlock::decode_owned(meta.stream_id, raw, self.layout).map_err(|e| self.locate(i, e))
    }

    /// Reads, verifies and decodes block `i` (`meta`, its index entry) into this thread's reused
    /// buffers, and gives `visit` the block read in place: what a scan does with a block it does
    /// not keep, writing no fresh memory (and so taking no page faults) for it. `visit` must not
    /// visit another block. Damage `visit` finds (a message read in place that is not UTF-8) is
    /// reported with the part and the block, as damage found decoding is.
    pub fn visit_block<R>(
        &self,
        i: usize,
        meta: &BlockMeta,
        visit: impl FnOnce(BlockView<'_>) -> Result<R, StoreError>,
    ) -> Result<R, StoreError> {
        thread_local! {
            static DECOMPRESSED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
            static COLUMNS: RefCell<EventBlock> = RefCell::new(EventBlock::new(0));
        }
        DECOMPRESSED.with_borrow_mut(|out| {
            let result = self.decompress_into(i, meta, out).and_then(|raw_len| {
                COLUMNS.with_borrow_mut(|columns| {
                    let view = EventBlock::decode_view(columns, meta.stream_id, &out[..raw_len], self.layout)
                        .map_err(|e| self.locate(i, e))?;
                    visit(view).map_err(|e| self.locate(i, e))
                })
            });
            drop_if_large(out);
            result
        })
    }

    /// Reads, checks and decompresses block `i` into the start of `out`, and returns its raw
    /// length. `out` may hold more (a reused buffer is only grown); it is filled by `resize`, not
    /// allocated zeroed, because jemalloc zeroes a reused allocation by purging its pages (page
    /// faults, and TLB shootdowns on every core: 15 % of a regex scan).
    fn decompress_into(&self, i: usize, meta: &BlockMeta, out: &mut Vec<u8>) -> Result<usize, StoreError> {
        let raw_len = meta.raw_len as usize;
        with_compressed(|comp| {
            self.read_compressed(i, meta, comp)?;
            match self.codec {
                BlockCodec::Lz4 => {
                    if out.len() < raw_len {
                        out.resize(raw_len, 0);
                    }
                    self.lz4_decompress(i, comp, &mut out[..raw_len])?;
                }
                BlockCodec::Zstd(_) => {
                    out.clear();
                    out.reserve(raw_len);
                    let n = with_zstd(|zstd| zstd.decompress_to_buffer(comp, out)).map_err(|e| self.corrupt(i, &e))?;
                    if n != raw_len {
                        return Err(self.corrupt(i, &format!("{n} bytes decompressed, {raw_len} expected")));
                    }
                }
            }
            Ok(raw_len)
        })
    }

    /// Reads block `i`'s compressed bytes into `comp` and checks them.
    fn read_compressed(&self, i: usize, meta: &BlockMeta, comp: &mut Vec<u8>) -> Result<(), StoreError> {
        comp.resize(meta.comp_len as usize, 0);
        self.file.read_exact_at(comp, meta.offset)?;
        if crc32fast::hash(comp) != meta.crc {
            return Err(self.corrupt(i, &"checksum mismatch"));
        }
        Ok(())
    }

    /// Decompresses LZ4 block `i` into `out`, exactly its raw length, with LZ4's C library, whose
    /// safe decoder checks every bound: a damaged block is an error. (`lz4_flex`, in Rust,
    /// decompressed W3's data at 2.3 GB/s against 2.9.)
    fn lz4_decompress(&self, i: usize, comp: &[u8], out: &mut [u8]) -> Result<(), StoreError> {
        let raw_len = out.len();
        let len = i32::try_from(raw_len).map_err(|_| self.corrupt(i, &"block too large"))?;
        let n = lz4::block::decompress_to_buffer(comp, Some(len), out).map_err(|e| self.corrupt(i, &e))?;
        if n != raw_len {
            return Err(self.corrupt(i, &format!("{n} bytes decompressed, {raw_len} expected")));
        }
        Ok(())
    }

    fn corrupt(&self, i: usize, what: &dyn std::fmt::Display) -> StoreError {
        StoreError::Corrupt(format!("part {} block {i}: {what}", self.path.display()))
    }

    /// Names the part and the block in a decoding error.
    fn locate(&self, i: usize, e: StoreError) -> StoreError {
        match e {
            StoreError::Corrupt(what) => self.corrupt(i, &what),
            other => other,
        }
    }

    /// False only when block `meta` certainly lacks one of these token hashes, or one of these marks
    /// (see `bloom::JSON_OBJECT_MARK`; marks are ignored in parts without them). A bloom that
    /// cannot be read says "maybe" (the scan then decodes the block and finds out). Blooms are
    /// read a page of the bloom section at a time, through `pages`.
    #[cfg(test)]
    pub fn block_may_contain(
        &self,
        meta: &BlockMeta,
        token_hashes: &[u64],
        mark_hashes: &[u64],
        pages: &BloomPageCache,
    ) -> bool {
        let marks = if self.has_marks { mark_hashes } else { &[] };
        if (token_hashes.is_empty() && marks.is_empty()) || meta.bloom_len == 0 {
            return true;
        }
        match self.bloom_page(meta, pages) {
            Some((page, range)) => Self::bloom_says(&page, range.start, meta, token_hashes, marks),
            None => self.bloom_alone_says(meta, token_hashes, marks),
        }
    }

    /// Tests the bloom of block `i` of `index` (this part's block index) and of every other block
    /// whose bloom is on the same page of the bloom section, and records what each says in
    /// `verdicts` (indexed like `index`: `BLOOM_MAYBE` or `BLOOM_RULES_OUT`; threads testing the
    /// same page at once record the same). One page read and one cache lookup serve up to a page
    /// of blooms (~250 of W3's), where a scan that asked block by block spent a tenth of a rare
    /// word's search in cache lookups.
    pub fn test_blooms_on_page(
        &self,
        index: &BlockIndex,
        i: usize,
        token_hashes: &[u64],
        mark_hashes: &[u64],
        pages: &BloomPageCache,
        verdicts: &[AtomicU8],
    ) {
        let verdict = |maybe: bool| if maybe { BLOOM_MAYBE } else { BLOOM_RULES_OUT };
        let record = |j: usize, maybe: bool| verdicts[j].store(verdict(maybe), Ordering::Relaxed);
        let marks = if self.has_marks { mark_hashes } else { &[] };
        let meta = &index[i];
        if (token_hashes.is_empty() && marks.is_empty()) || meta.bloom_len == 0 {
            record(i, true);
            return;
        }
        let Some((page, range)) = self.bloom_page(meta, pages) else {
            record(i, self.bloom_alone_says(meta, token_hashes, marks));
            return;
        };
        let on_page =
            |m: &BlockMeta| m.bloom_offset >= range.start && m.bloom_offset + u64::from(m.bloom_len) <= range.end;
        // Blooms are in index order in the file: the blocks on this page are consecutive.
        let first = (0..i).rev().take_while(|&j| on_page(&index[j])).last().unwrap_or(i);
        let mut last_said: Option<((u64, u32), bool)> = None;
        for (j, m) in index.iter().enumerate().skip(first) {
            if !on_page(m) {
                break;
            }
            let bloom = (m.bloom_offset, m.bloom_len);
            let maybe = match last_said {
                // The blocks of a bloom group share its bloom.
                Some((last, said)) if last == bloom => said,
                _ => m.bloom_len == 0 || Self::bloom_says(&page, range.start, m, token_hashes, marks),
            };
            last_said = Some((bloom, maybe));
            record(j, maybe);
        }
    }

    /// The page of the bloom section holding all of `meta`'s bloom, and where the page is in the
    /// file (None: the bloom crosses pages, or the page cannot be read). The page's bytes may run
    /// on past its end (see `BloomPageCache::read`).
    fn bloom_page(&self, meta: &BlockMeta, pages: &BloomPageCache) -> Option<(Arc<Vec<u8>>, std::ops::Range<u64>)> {
        let (start, end) = (meta.bloom_offset, meta.bloom_offset + u64::from(meta.bloom_len));
        let page = start / BLOOM_PAGE_BYTES;
        let page_range = (page * BLOOM_PAGE_BYTES).max(self.bloom_section.start)
            ..((page + 1) * BLOOM_PAGE_BYTES).min(self.bloom_section.end);
        if start < page_range.start || end > page_range.end {
            return None;
        }
        let key = (self.id, page as u32);
        let bytes = match pages.get(key) {
            Some(bytes) => bytes,
            None => {
                let len = (page_range.end - page_range.start) as usize;
                pages.read(key, len, |page| self.file.read_exact_at(page, page_range.start))?
            }
        };
        Some((bytes, page_range))
    }

    /// What `meta`'s bloom says, read from its page (which starts at `page_start` in the file).
    fn bloom_says(page: &[u8], page_start: u64, meta: &BlockMeta, token_hashes: &[u64], marks: &[u64]) -> bool {
        let at = (meta.bloom_offset - page_start) as usize;
        let bloom = &page[at..at + meta.bloom_len as usize];
        token_hashes.iter().chain(marks).all(|h| crate::bloom::may_contain(bloom, *h))
    }

    /// What `meta`'s bloom says, read alone (it crosses pages); "maybe" when it cannot be read.
    fn bloom_alone_says(&self, meta: &BlockMeta, token_hashes: &[u64], marks: &[u64]) -> bool {
        let mut bloom = vec![0u8; meta.bloom_len as usize];
        if self.file.read_exact_at(&mut bloom, meta.bloom_offset).is_err() {
            return true;
        }
        token_hashes.iter().chain(marks).all(|h| crate::bloom::may_contain(&bloom, *h))
    }
}

/// What `Part::test_blooms_on_page` records of a block: its bloom may hold the words (or nothing
/// was asked), or it certainly lacks one. 0 is "not tested yet".
pub const BLOOM_MAYBE: u8 = 1;
pub const BLOOM_RULES_OUT: u8 = 2;

/// What opening a part needs to know of its blocks, which the index says block by block: stored
/// whole (format 6, between the index and the footer) so that opening a part does not read its
/// index. `raw u64 | min key | max key (i64 timestamp, u64 seq each) | bloom start u64 |
/// stream count u32 | stream id u64 (ascending)* | CRC-32 of all before it`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct PartSummary {
    /// Message bytes in all blocks.
    raw_bytes: u64,
    /// The smallest of the blocks' smallest keys and the largest of their largest (default when
    /// there are no blocks).
    min_key: EventKey,
    max_key: EventKey,
    /// Where the blooms start in the file (the index's offset when there are none).
    bloom_start: u64,
    /// The streams the blocks hold, ascending, each once.
    streams: Vec<StreamId>,
}

/// Bytes of a summary besides its stream ids: five u64 or i64, the count and the checksum.
const SUMMARY_FIXED_LEN: usize = 6 * 8 + 4 + 4;

impl PartSummary {
    /// The summary of `blocks`, whose bloom offsets are relative to `bloom_base`, in a part
    /// whose index starts at `index_offset`.
    fn of(blocks: &[BlockMeta], bloom_base: u64, index_offset: u64) -> PartSummary {
        let mut streams: Vec<StreamId> = blocks.iter().map(|b| b.stream_id).collect();
        streams.sort_unstable();
        streams.dedup();
        PartSummary {
            raw_bytes: blocks.iter().map(|b| u64::from(b.raw_len)).sum(),
            min_key: blocks.iter().map(|b| b.min_key).min().unwrap_or_default(),
            max_key: blocks.iter().map(|b| b.max_key).max().unwrap_or_default(),
            bloom_start: blocks
                .iter()
                .filter(|b| b.bloom_len > 0)
                .map(|b| bloom_base + b.bloom_offset)
                .min()
                .unwrap_or(index_offset),
            streams,
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        put_u64(out, self.raw_bytes);
        put_i64(out, self.min_key.timestamp);
        put_u64(out, self.min_key.seq);
        put_i64(out, self.max_key.timestamp);
        put_u64(out, self.max_key.seq);
        put_u64(out, self.bloom_start);
        put_u32(out, self.streams.len() as u32);
        for &stream in &self.streams {
            put_u64(out, stream);
        }
        let crc = crc32fast::hash(&out[start..]);
        put_u32(out, crc);
    }

    /// Reads the summary `bytes` hold (all of them) of a part whose index starts at
    /// `index_offset` and has `block_count` entries; the error says what is wrong.
    fn decode(bytes: &[u8], index_offset: u64, block_count: usize) -> Result<PartSummary, String> {
        let Some(body_len) = bytes.len().checked_sub(4).filter(|&n| n >= SUMMARY_FIXED_LEN - 4) else {
            return Err(format!("{} bytes, shorter than a summary", bytes.len()));
        };
        let (body, crc) = bytes.split_at(body_len);
        if crc32fast::hash(body) != u32::from_le_bytes([crc[0], crc[1], crc[2], crc[3]]) {
            return Err("checksum mismatch".into());
        }
        let mut r = Reader::new(body);
        let read = |r: &mut Reader<'_>| -> Result<PartSummary, StoreError> {
            let raw_bytes = r.u64()?;
            let min_key = EventKey { timestamp: r.i64()?, seq: r.u64()? };
            let max_key = EventKey { timestamp: r.i64()?, seq: r.u64()? };
            let bloom_start = r.u64()?;
            let count = r.u32()? as usize;
            let mut streams = Vec::with_capacity(count.min(r.remaining() / 8));
            for _ in 0..count {
                streams.push(r.u64()?);
            }
            Ok(PartSummary { raw_bytes, min_key, max_key, bloom_start, streams })
        };
        let summary = read(&mut r).map_err(|_| "stream ids cut short".to_string())?;
        if r.remaining() != 0 {
            return Err(format!("{} bytes after the stream ids", r.remaining()));
        }
        if summary.streams.windows(2).any(|w| w[0] >= w[1]) {
            return Err("stream ids not ascending".into());
        }
        if summary.streams.len() > block_count || (block_count > 0 && summary.streams.is_empty()) {
            return Err(format!("{} streams for {block_count} blocks", summary.streams.len()));
        }
        if block_count > 0 && summary.min_key > summary.max_key {
            return Err("smallest key after the largest".into());
        }
        if summary.bloom_start < MAGIC.len() as u64 || summary.bloom_start > index_offset {
            return Err("blooms out of bounds".into());
        }
        Ok(summary)
    }
}

/// Reads and checks a part's block index (`count` entries at `offset`, with checksum `crc`).
fn read_index(file: &File, path: &Path, offset: u64, count: usize, crc: u32) -> Result<BlockIndex, StoreError> {
    let mut bytes = vec![0u8; count * INDEX_ENTRY_LEN];
    file.read_exact_at(&mut bytes, offset)?;
    if crc32fast::hash(&bytes) != crc {
        return Err(StoreError::Corrupt(format!("part {} index checksum mismatch", path.display())));
    }
    let mut r = Reader::new(&bytes);
    let mut blocks = Vec::with_capacity(count);
    for _ in 0..count {
        let meta = BlockMeta {
            stream_id: r.u64()?,
            min_key: EventKey { timestamp: r.i64()?, seq: r.u64()? },
            max_key: EventKey { timestamp: r.i64()?, seq: r.u64()? },
            count: r.u32()?,
            raw_len: r.u32()?,
            offset: r.u64()?,
            comp_len: r.u32()?,
            crc: r.u32()?,
            bloom_offset: r.u64()?,
            bloom_len: r.u32()?,
        };
        if meta.offset + u64::from(meta.comp_len) > offset || meta.bloom_offset + u64::from(meta.bloom_len) > offset {
            return Err(StoreError::Corrupt(format!("part {} block out of bounds", path.display())));
        }
        blocks.push(meta);
    }
    Ok(blocks)
}

/// Runs `f` with this thread's reused buffer for compressed bytes (a fresh one per block costs
/// page faults).
fn with_compressed<R>(f: impl FnOnce(&mut Vec<u8>) -> Result<R, StoreError>) -> Result<R, StoreError> {
    thread_local! {
        static COMPRESSED: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    }
    COMPRESSED.with_borrow_mut(|comp| {
        let result = f(comp);
        drop_if_large(comp);
        result
    })
}

/// Runs `f` with this thread's zstd decompression context (creating one per block costs more
/// than decompressing a small block).
fn with_zstd<R>(f: impl FnOnce(&mut zstd::bulk::Decompressor<'static>) -> std::io::Result<R>) -> std::io::Result<R> {
    thread_local! {
        static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
    }
    DECOMPRESSOR.with_borrow_mut(|slot| {
        let decompressor = match slot.as_mut() {
            Some(d) => d,
            None => slot.insert(zstd::bulk::Decompressor::new()?),
        };
        f(decompressor)
    })
}

/// Frees a reused per-thread buffer that an unusually large block grew (it is not kept).
fn drop_if_large(buf: &mut Vec<u8>) {
    if buf.capacity() > 4 << 20 {
        *buf = Vec::new();
    }
}

/// Bloom groups a part writer has handed to its encoders and not yet written, at most (≤ 8 MiB raw).
const MAX_GROUPS_IN_FLIGHT: usize = 16;

/// Threads that encode (serialize, compress, index) a part's blocks: the machine's cores, at most 4.
fn encode_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).min(4)
}

/// Turns a block into what a part stores: compressed bytes, bloom and index entry.
struct BlockEncoder {
    compressor: Compressor,
    layout: BlockLayout,
    scratch: Vec<u8>,
}

enum Compressor {
    Lz4,
    Zstd(zstd::bulk::Compressor<'static>),
}

/// A bloom group ready to be written: its blocks' index entries and compressed bytes, and their
/// one bloom. The entries' offsets are set when it is written.
struct EncodedGroup {
    blocks: Vec<(BlockMeta, Vec<u8>)>,
    bloom: Vec<u8>,
}

/// A bloom group handed to the encoders: one stream's events, and the positions at which blocks
/// after the first start.
type GroupJob = (EventBlock, Vec<usize>);

impl BlockEncoder {
    fn new(codec: BlockCodec, layout: BlockLayout) -> Result<BlockEncoder, StoreError> {
        let compressor = match codec {
            BlockCodec::Lz4 => Compressor::Lz4,
            BlockCodec::Zstd(level) => Compressor::Zstd(zstd::bulk::Compressor::new(level)?),
        };
        Ok(BlockEncoder { compressor, layout, scratch: Vec::new() })
    }

    fn encode(&mut self, (group, block_starts): &GroupJob) -> Result<EncodedGroup, StoreError> {
        debug_assert!(group.is_sorted());
        let mut bloom = crate::bloom::BloomBuilder::new(group.raw_bytes());
        let mut json_object = false;
        for i in 0..group.len() {
            let message = group.message(i);
            bloom.add_text(message);
            json_object = json_object || crate::bloom::is_json_object(message);
        }
        if json_object {
            bloom.add_mark(crate::bloom::JSON_OBJECT_MARK);
        }
        let bloom = bloom.finish();
        let starts = std::iter::once(0).chain(block_starts.iter().copied());
        let ends = block_starts.iter().copied().chain(std::iter::once(group.len()));
        let mut blocks = Vec::with_capacity(block_starts.len() + 1);
        for events in starts.zip(ends).map(|(start, end)| start..end) {
            self.scratch.clear();
            group.encode_range(self.layout, events.clone(), &mut self.scratch);
            let comp = match &mut self.compressor {
                Compressor::Lz4 => lz4::block::compress(&self.scratch, None, false)?,
                Compressor::Zstd(zstd) => zstd.compress(&self.scratch)?,
            };
            let meta = BlockMeta {
                stream_id: group.stream_id,
                min_key: group.key(events.start),
                max_key: group.key(events.end - 1),
                count: events.len() as u32,
                raw_len: self.scratch.len() as u32,
                offset: 0,
                comp_len: comp.len() as u32,
                crc: crc32fast::hash(&comp),
                bloom_offset: 0,
                bloom_len: bloom.len() as u32,
            };
            blocks.push((meta, comp));
        }
        Ok(EncodedGroup { blocks, bloom })
    }
}

/// Threads that encode one part writer's bloom groups while the writer's own thread builds the
/// next groups and writes the encoded ones. Groups are numbered as they are handed over and
/// written in that order whatever thread encoded them, so the file's bytes do not depend on the
/// threads.
struct EncodePipeline {
    jobs: Option<mpsc::Sender<(u64, GroupJob)>>,
    results: mpsc::Receiver<(u64, Result<EncodedGroup, StoreError>)>,
    threads: Vec<std::thread::JoinHandle<()>>,
    submitted: u64,
    written: u64,
    /// Encoded groups that came back before their turn.
    early: BTreeMap<u64, Result<EncodedGroup, StoreError>>,
}

impl EncodePipeline {
    fn start(threads: usize, codec: BlockCodec, layout: BlockLayout) -> Result<EncodePipeline, StoreError> {
        let (jobs, queue) = mpsc::channel::<(u64, GroupJob)>();
        let queue = Arc::new(Mutex::new(queue));
        let (done, results) = mpsc::channel();
        let mut handles = Vec::new();
        for _ in 0..threads.max(1) {
            let mut encoder = BlockEncoder::new(codec, layout)?;
            let (queue, done) = (Arc::clone(&queue), done.clone());
            // Unnamed, so it shows as the thread that started it (the flusher or the merger),
            // whose nice value it inherits.
            handles.push(std::thread::spawn(move || loop {
                let job = match queue.lock() {
                    Ok(queue) => queue.recv(),
                    Err(_) => return,
                };
                let Ok((number, group)) = job else { return };
                if done.send((number, encoder.encode(&group))).is_err() {
                    return;
                }
            }));
        }
        Ok(EncodePipeline {
            jobs: Some(jobs),
            results,
            threads: handles,
            submitted: 0,
            written: 0,
            early: BTreeMap::new(),
        })
    }

    fn gone() -> StoreError {
        StoreError::Io(std::io::Error::other("a block encoder thread stopped"))
    }

    fn submit(&mut self, group: GroupJob) -> Result<(), StoreError> {
        let jobs = self.jobs.as_ref().ok_or_else(Self::gone)?;
        jobs.send((self.submitted, group)).map_err(|_| Self::gone())?;
        self.submitted += 1;
        Ok(())
    }

    fn in_flight(&self) -> usize {
        (self.submitted - self.written) as usize
    }

    /// The next group to write, once it is encoded: `None` when none is in flight, or when
    /// `wait` is false and it is not back yet.
    fn next_in_order(&mut self, wait: bool) -> Result<Option<EncodedGroup>, StoreError> {
        while self.written < self.submitted {
            if let Some(encoded) = self.early.remove(&self.written) {
                self.written += 1;
                return encoded.map(Some);
            }
            let (number, encoded) = if wait {
                self.results.recv().map_err(|_| Self::gone())?
            } else {
                match self.results.try_recv() {
                    Ok(back) => back,
                    Err(mpsc::TryRecvError::Empty) => return Ok(None),
                    Err(mpsc::TryRecvError::Disconnected) => return Err(Self::gone()),
                }
            };
            self.early.insert(number, encoded);
        }
        Ok(None)
    }
}

impl Drop for EncodePipeline {
    fn drop(&mut self) {
        // Closing the queue ends the threads once they finish what they hold.
        self.jobs = None;
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// Writes one part from per-stream runs of events (each run sorted by key, all in one group and day).
pub struct PartWriter {
    group_id: GroupId,
    day: i64,
    tmp_path: PathBuf,
    final_path: PathBuf,
    out: std::io::BufWriter<File>,
    offset: u64,
    metas: Vec<BlockMeta>,
    /// Blooms of the blocks written so far, concatenated; `BlockMeta::bloom_offset` is relative
    /// to this buffer until `finish` places it in the file.
    blooms: Vec<u8>,
    /// Closed blocks are encoded there, on every core.
    encoders: EncodePipeline,
    codec: BlockCodec,
    /// The part format written (`FORMAT_VERSION`; older ones only in tests of how they read).
    format: u32,
    /// The bloom group being filled, and the positions in it at which blocks after the first start.
    open: Option<EventBlock>,
    block_starts: Vec<usize>,
    /// How groups are stored as several blocks (LZ4 parts only; None: one block per group).
    split: Option<BlockSplit>,
    /// Bytes of the file already made durable by `write_back`.
    written_back: u64,
    /// Events and message bytes of the stream run `write_stream_run` is writing that are not
    /// pushed yet: a new group makes room for its share at once, rather than growing step by step.
    run_left: (usize, usize),
}

/// A part being written is made durable this many bytes at a time, not all at once by the final
/// fsync. A 20–150 MB burst of dirty pages queued at once delays every WAL fdatasync issued
/// meanwhile by 20–300 ms (the device and ext4's journal are shared), and PutLogEvents waits on
/// those (measured: WAL fdatasync p99 40 → 18 ms beside 20 MB flushes).
const WRITE_BACK_BYTES: u64 = 1 << 20;

impl PartWriter {
    /// A writer of flush parts (`FLUSH_CODEC`).
    pub fn create(dir: &Path, id: u64, group_id: GroupId, day: i64) -> Result<PartWriter, StoreError> {
        PartWriter::create_with_codec(dir, id, group_id, day, FLUSH_CODEC)
    }

    pub fn create_with_codec(
        dir: &Path,
        id: u64,
        group_id: GroupId,
        day: i64,
        codec: BlockCodec,
    ) -> Result<PartWriter, StoreError> {
        PartWriter::create_in_format(dir, id, group_id, day, codec, FORMAT_VERSION)
    }

    /// A writer of parts in format `format` (tests write older formats to check that they read).
    fn create_in_format(
        dir: &Path,
        id: u64,
        group_id: GroupId,
        day: i64,
        codec: BlockCodec,
        format: u32,
    ) -> Result<PartWriter, StoreError> {
        fs::create_dir_all(dir)?;
        let final_path = dir.join(Part::file_name(id));
        let tmp_path = dir.join(format!("{}.tmp", Part::file_name(id)));
        let file = File::create(&tmp_path)?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        out.write_all(MAGIC)?;
        Ok(PartWriter {
            group_id,
            day,
            tmp_path,
            final_path,
            out,
            offset: MAGIC.len() as u64,
            metas: Vec::new(),
            blooms: Vec::new(),
            encoders: EncodePipeline::start(encode_threads(), codec, block_layout(format))?,
            codec,
            format,
            open: None,
            block_starts: Vec::new(),
            split: (codec == BlockCodec::Lz4).then_some(BlockSplit::RECENT),
            written_back: 0,
            run_left: (0, 0),
        })
    }

    /// How an LZ4 part's bloom groups are cut into blocks (`BlockSplit::RECENT` unless set; a
    /// zstd part keeps one block per group whatever this says).
    pub fn set_block_split(&mut self, split: BlockSplit) {
        if self.codec == BlockCodec::Lz4 {
            self.split = Some(split);
        }
    }

    /// Adds one event to the stream run being written (events of a run in key order; runs of
    /// different streams one after the other). Bloom groups, and the blocks in them, are cut at a
    /// bounded size and span.
    pub fn push(
        &mut self,
        stream_id: StreamId,
        key: EventKey,
        ingestion: i64,
        message: &str,
    ) -> Result<(), StoreError> {
        let cut = self.open.as_ref().is_some_and(|g| {
            g.stream_id != stream_id || g.min_key().is_some_and(|m| key.timestamp - m.timestamp > MAX_BLOCK_SPAN_MS)
        });
        if cut {
            self.close_group()?;
        }
        let (events_left, bytes_left) = self.run_left;
        self.run_left = (events_left.saturating_sub(1), bytes_left.saturating_sub(message.len()));
        let group = self.open.get_or_insert_with(|| {
            let mut group = EventBlock::new(stream_id);
            // The event that takes a group past its target size is most often a short one.
            group.reserve(events_left.min(MAX_BLOCK_EVENTS), bytes_left.min(TARGET_BLOCK_RAW_BYTES + 4096));
            group
        });
        if let Some(split) = self.split.filter(|_| !group.is_empty()) {
            let block_start = self.block_starts.last().copied().unwrap_or(0);
            let block_bytes = group.raw_bytes() - group.raw_bytes_before(block_start);
            if block_bytes >= split.min_raw_bytes
                && key.timestamp - group.key(block_start).timestamp >= split.min_span_ms
            {
                self.block_starts.push(group.len());
            }
        }
        group.push(key, ingestion, message);
        if group.raw_bytes() >= TARGET_BLOCK_RAW_BYTES || group.len() >= MAX_BLOCK_EVENTS {
            self.close_group()?;
        }
        Ok(())
    }

    fn close_group(&mut self) -> Result<(), StoreError> {
        let block_starts = std::mem::take(&mut self.block_starts);
        if let Some(group) = self.open.take() {
            if !group.is_empty() {
                self.encoders.submit((group, block_starts))?;
                self.write_encoded(MAX_GROUPS_IN_FLIGHT)?;
            }
        }
        Ok(())
    }

    /// Writes the encoded groups that are next in order, waiting for them while more than
    /// `in_flight` groups are with the encoders.
    fn write_encoded(&mut self, in_flight: usize) -> Result<(), StoreError> {
        while let Some(group) = self.encoders.next_in_order(self.encoders.in_flight() > in_flight)? {
            self.write_group(group)?;
        }
        Ok(())
    }

    /// Appends one stream's events (sorted by key), cut into bloom groups and blocks of bounded size.
    pub fn write_stream_run<'a>(
        &mut self,
        stream_id: StreamId,
        events: impl Iterator<Item = (EventKey, i64, &'a str)> + Clone,
    ) -> Result<(), StoreError> {
        self.run_left = events.clone().fold((0, 0), |(n, bytes), (_, _, m)| (n + 1, bytes + m.len()));
        for (key, ingestion, message) in events {
            self.push(stream_id, key, ingestion, message)?;
        }
        self.run_left = (0, 0);
        self.close_group()
    }

    /// Writes a group's blocks one after the other; their index entries all point at its bloom.
    fn write_group(&mut self, group: EncodedGroup) -> Result<(), StoreError> {
        let bloom_offset = self.blooms.len() as u64;
        self.blooms.extend_from_slice(&group.bloom);
        for (mut meta, comp) in group.blocks {
            meta.offset = self.offset;
            meta.bloom_offset = bloom_offset;
            self.out.write_all(&comp)?;
            self.offset += comp.len() as u64;
            self.metas.push(meta);
        }
        if self.offset - self.written_back >= WRITE_BACK_BYTES {
            self.write_back()?;
        }
        Ok(())
    }

    /// Writes out and fdatasyncs what is buffered (see `WRITE_BACK_BYTES`).
    fn write_back(&mut self) -> Result<(), StoreError> {
        self.out.flush()?;
        self.out.get_ref().sync_data()?;
        self.written_back = self.offset;
        Ok(())
    }

    /// Writes index and footer, fsyncs, renames into place. Returns the final path.
    pub fn finish(mut self) -> Result<PathBuf, StoreError> {
        self.close_group()?;
        self.write_encoded(0)?;
        let blooms_offset = self.offset;
        self.out.write_all(&self.blooms)?;
        let index_offset = blooms_offset + self.blooms.len() as u64;
        let mut index = Vec::with_capacity(self.metas.len() * INDEX_ENTRY_LEN);
        for m in &self.metas {
            put_u64(&mut index, m.stream_id);
            put_i64(&mut index, m.min_key.timestamp);
            put_u64(&mut index, m.min_key.seq);
            put_i64(&mut index, m.max_key.timestamp);
            put_u64(&mut index, m.max_key.seq);
            put_u32(&mut index, m.count);
            put_u32(&mut index, m.raw_len);
            put_u64(&mut index, m.offset);
            put_u32(&mut index, m.comp_len);
            put_u32(&mut index, m.crc);
            put_u64(&mut index, blooms_offset + m.bloom_offset);
            put_u32(&mut index, m.bloom_len);
        }
        self.out.write_all(&index)?;
        if self.format >= FIRST_VERSION_WITH_SUMMARY {
            let mut summary = Vec::new();
            PartSummary::of(&self.metas, blooms_offset, index_offset).encode(&mut summary);
            self.out.write_all(&summary)?;
        }
        let mut footer = Vec::with_capacity(FOOTER_LEN);
        put_u64(&mut footer, self.group_id);
        put_i64(&mut footer, self.day);
        put_u64(&mut footer, index_offset);
        put_u32(&mut footer, self.metas.len() as u32);
        put_u32(&mut footer, crc32fast::hash(&index));
        put_u32(&mut footer, self.format | (self.codec.word() << 16));
        let footer_crc = crc32fast::hash(&footer);
        put_u32(&mut footer, footer_crc);
        footer.extend_from_slice(FOOTER_MAGIC);
        self.out.write_all(&footer)?;
        let file = self.out.into_inner().map_err(|e| StoreError::Io(e.into_error()))?;
        file.sync_all()?;
        drop(file);
        fs::rename(&self.tmp_path, &self.final_path)?;
        Ok(self.final_path)
    }
}

/// fsyncs a directory so that renames and unlinks inside it are durable.
pub fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)?.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Part {
        fn blocks(&self) -> Arc<BlockIndex> {
            self.block_index(None).unwrap()
        }

        fn read_nth(&self, i: usize) -> Result<EventBlock, StoreError> {
            self.read_block(i, &self.blocks()[i])
        }
    }

    /// A part of group 1 holding one event of stream 1.
    fn one_event_part(dir: &Path, message: &str) -> PathBuf {
        let mut w = PartWriter::create(dir, 1, 1, 1).unwrap();
        w.write_stream_run(1, std::iter::once((EventKey { timestamp: 5, seq: 1 }, 8, message))).unwrap();
        w.finish().unwrap()
    }

    /// Writes `word` as the part's footer version word, with a footer checksum that matches it.
    fn rewrite_version_word(path: &Path, word: u32) {
        let mut bytes = fs::read(path).unwrap();
        let footer = bytes.len() - FOOTER_LEN;
        bytes[footer + 32..footer + 36].copy_from_slice(&word.to_le_bytes());
        let crc = crc32fast::hash(&bytes[footer..footer + 36]);
        bytes[footer + 36..footer + 40].copy_from_slice(&crc.to_le_bytes());
        fs::write(path, &bytes).unwrap();
    }

    #[test]
    fn a_part_from_a_newer_lookout_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let path = one_event_part(dir.path(), "x");
        // The next format, zstd level 1.
        rewrite_version_word(&path, (FORMAT_VERSION + 1) | 1 << 16);
        let err = Part::open(&path, 1).unwrap_err().to_string();
        let next = format!("format {}", FORMAT_VERSION + 1);
        assert!(err.contains(&next) && err.contains("newer lookout"), "{err}");
    }

    /// Each codec's blocks read back as written, and the footer says which codec wrote them.
    #[test]
    fn every_codec_reads_back_what_it_wrote() {
        let msgs: Vec<String> = (0..30_000).map(|i| format!("GET /items/{} 200 {i} ms é", i % 97)).collect();
        for codec in [BlockCodec::Lz4, BlockCodec::Zstd(1), BlockCodec::Zstd(9)] {
            let dir = tempfile::tempdir().unwrap();
            let mut w = PartWriter::create_with_codec(dir.path(), 1, 1, 1, codec).unwrap();
            let key = |i: usize| EventKey { timestamp: i as i64, seq: i as u64 };
            w.write_stream_run(1, msgs.iter().enumerate().map(|(i, m)| (key(i), 3, m.as_str()))).unwrap();
            let part = Part::open(&w.finish().unwrap(), 1).unwrap();
            assert_eq!(part.codec, codec);
            assert!(part.blocks().len() > 1 && part.file_bytes < part.raw_bytes / 3, "{codec:?}: {part:?}");
            let mut read = Vec::new();
            for i in 0..part.blocks().len() {
                let block = part.read_nth(i).unwrap();
                read.extend((0..block.len()).map(|j| block.message(j).to_string()));
            }
            assert_eq!(read, msgs, "{codec:?}");
        }
    }

    /// An open part knows its key range and streams without its block index; the index is read
    /// on demand, shared while anyone holds it, kept by the cache when one is given, and checked
    /// against the footer's checksum every time it is read.
    #[test]
    fn block_indexes_are_read_on_demand_shared_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = PartWriter::create(dir.path(), 1, 1, 1).unwrap();
        for (stream, first_ts) in [(3u64, 50i64), (7, 10), (9, 30)] {
            let events = (0..3).map(|i| (EventKey { timestamp: first_ts + i, seq: stream * 10 + i as u64 }, 8, "m"));
            w.write_stream_run(stream, events).unwrap();
        }
        let path = w.finish().unwrap();
        let part = Part::open(&path, 1).unwrap();
        assert_eq!(&*part.streams, &[3, 7, 9]);
        assert_eq!(
            (part.min_key, part.max_key),
            (EventKey { timestamp: 10, seq: 70 }, EventKey { timestamp: 52, seq: 32 })
        );
        assert_eq!(part.block_count, 3);
        let holds = |ids: &[StreamId]| {
            part.holds_any(&ids.iter().map(|s| (*s, ())).collect::<std::collections::HashMap<_, _>>())
        };
        assert!(holds(&[7]) && holds(&[1, 2, 9]) && holds(&[1, 2, 3, 4, 5]));
        assert!(!holds(&[]) && !holds(&[8]) && !holds(&[1, 2, 4, 5, 6, 8, 10]));
        assert!(part.loaded_index.lock().upgrade().is_none(), "opening keeps no index");

        let first = part.block_index(None).unwrap();
        assert!(Arc::ptr_eq(&first, &part.block_index(None).unwrap()), "one copy while it is held");
        assert_eq!(first.iter().map(|b| b.stream_id).collect::<Vec<_>>(), vec![3, 7, 9]);
        drop(first);
        assert!(part.loaded_index.lock().upgrade().is_none(), "nothing keeps it once let go");
        let cache = BlockIndexCache::new(1 << 20);
        let cached = part.block_index(Some(&cache)).unwrap();
        assert!(cache.bytes() >= 3 * std::mem::size_of::<BlockMeta>());
        drop(cached);
        assert!(part.loaded_index.lock().upgrade().is_some(), "the cache keeps it");

        // Damage to the index is an error when the index is next read (opening does not read it).
        let mut bytes = fs::read(&path).unwrap();
        bytes[part.index_offset as usize + 9] ^= 1;
        fs::write(&path, &bytes).unwrap();
        let reopened = Part::open(&path, 2).unwrap();
        assert_eq!((reopened.min_key, reopened.max_key), (part.min_key, part.max_key));
        let err = reopened.block_index(None).unwrap_err().to_string();
        assert!(err.contains("index checksum mismatch"), "{err}");
        let held = part.block_index(None);
        assert!(held.is_ok(), "the cache still holds the index read before the damage");
        drop((held, cache));
        let err = part.block_index(None).unwrap_err().to_string();
        assert!(err.contains("index checksum mismatch"), "{err}");
    }

    /// Parts from before LZ4 (format 3: the codec word is a zstd level) open as zstd; LZ4 claimed
    /// by a format older than it, or a codec word this lookout does not know, is a bad footer.
    #[test]
    fn codec_words_and_layouts_of_older_and_unknown_parts() {
        let dir = tempfile::tempdir().unwrap();
        let msgs: Vec<String> = (0..3000).map(|i| format!("old event {i}")).collect();
        let write = |id: u64, codec: BlockCodec, format: u32| {
            let mut w = PartWriter::create_in_format(dir.path(), id, 1, 1, codec, format).unwrap();
            let events =
                msgs.iter().enumerate().map(|(i, m)| (EventKey { timestamp: i as i64, seq: 1 }, 8, m.as_str()));
            w.write_stream_run(1, events).unwrap();
            w.finish().unwrap()
        };
        // Format 3 (zstd) and 4 (LZ4) put each block's header first, 5 and 6 interleave its
        // columns' varints after the messages: all still read.
        let formats = [
            (1, BlockCodec::Zstd(1), 3),
            (2, BlockCodec::Lz4, 4),
            (3, BlockCodec::Lz4, 5),
            (5, BlockCodec::Zstd(3), 6),
            (6, BlockCodec::Lz4, 6),
            (7, BlockCodec::Lz4, 7),
        ];
        for (id, codec, format) in formats {
            let part = Part::open(&write(id, codec, format), id).unwrap();
            assert_eq!((part.codec, part.layout), (codec, block_layout(format)));
            let blocks: Vec<EventBlock> = (0..part.blocks().len()).map(|i| part.read_nth(i).unwrap()).collect();
            let read = blocks.iter().flat_map(|b| b.iter_messages());
            assert!(read.eq(msgs.iter().map(String::as_str)), "format {format}");
        }
        // A block read in the other layout is damage, reported as such.
        let path = write(4, BlockCodec::Lz4, 5);
        rewrite_version_word(&path, 4 | LZ4_WORD << 16);
        let err = Part::open(&path, 4).unwrap().read_nth(0).unwrap_err().to_string();
        assert!(err.contains("block 0"), "{err}");
        for (claimed, written) in [(6u32, 7u32), (7, 6)] {
            let path = write(10 + u64::from(claimed), BlockCodec::Lz4, written);
            rewrite_version_word(&path, claimed | LZ4_WORD << 16);
            let err = Part::open(&path, 10 + u64::from(claimed)).unwrap().read_nth(0).unwrap_err().to_string();
            assert!(err.contains("block 0"), "format {written} read as {claimed}: {err}");
        }
        let path = write(1, BlockCodec::Zstd(1), 3);
        rewrite_version_word(&path, 3 | LZ4_WORD << 16);
        assert!(Part::open(&path, 1).unwrap_err().to_string().contains("bad footer"));
        rewrite_version_word(&path, 4 | 0x9000 << 16);
        let err = Part::open(&path, 1).unwrap_err().to_string();
        assert!(err.contains("unknown block codec 0x9000"), "{err}");
    }

    /// An LZ4 block whose bytes were changed and checksummed again (so that the CRC passes) reads
    /// as an error or as some other valid block, never as a panic.
    #[test]
    fn damaged_lz4_blocks_with_matching_checksums_are_errors_not_panics() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = PartWriter::create_with_codec(dir.path(), 1, 1, 1, BlockCodec::Lz4).unwrap();
        let msgs: Vec<String> = (0..500).map(|i| format!("event {i} {}", "ab".repeat(i % 40))).collect();
        let key = |i: usize| EventKey { timestamp: i as i64, seq: i as u64 };
        w.write_stream_run(1, msgs.iter().enumerate().map(|(i, m)| (key(i), 0, m.as_str()))).unwrap();
        let path = w.finish().unwrap();
        let clean = fs::read(&path).unwrap();
        let meta = Part::open(&path, 1).unwrap().blocks()[0];
        let (start, len) = (meta.offset as usize, meta.comp_len as usize);
        let mut errors = 0;
        for at in (0..len).step_by(7) {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut bytes = clean.clone();
                bytes[start + at] ^= flip;
                let crc = crc32fast::hash(&bytes[start..start + len]);
                let footer = bytes.len() - FOOTER_LEN;
                let index_offset = u64::from_le_bytes(bytes[footer + 16..footer + 24].try_into().unwrap()) as usize;
                let block_count = u32::from_le_bytes(bytes[footer + 24..footer + 28].try_into().unwrap()) as usize;
                bytes[index_offset + 60..index_offset + 64].copy_from_slice(&crc.to_le_bytes());
                let index_crc = crc32fast::hash(&bytes[index_offset..index_offset + block_count * INDEX_ENTRY_LEN]);
                bytes[footer + 28..footer + 32].copy_from_slice(&index_crc.to_le_bytes());
                let footer_crc = crc32fast::hash(&bytes[footer..footer + 36]);
                bytes[footer + 36..footer + 40].copy_from_slice(&footer_crc.to_le_bytes());
                fs::write(&path, &bytes).unwrap();
                let part = Part::open(&path, 1).unwrap();
                let whole = part.read_nth(0);
                // Read in place message by message, as a scan does: the same verdict, and the
                // error names the block.
                let meta = part.blocks()[0];
                let in_place =
                    part.visit_block(0, &meta, |view| (0..view.len()).try_for_each(|j| view.message(j).map(drop)));
                assert_eq!(whole.is_err(), in_place.is_err(), "byte {at} ^ {flip:#x}");
                if let Err(e) = in_place {
                    assert!(e.to_string().contains("block 0"), "{e}");
                    errors += 1;
                }
            }
        }
        assert!(errors > len / 7, "most damage is detected: {errors}");
    }

    #[test]
    fn write_then_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = PartWriter::create(dir.path(), 9, 3, 20_000).unwrap();
        let msgs: Vec<String> = (0..40_000).map(|i| format!("line {i} of stream one")).collect();
        w.write_stream_run(
            1,
            msgs.iter()
                .enumerate()
                .map(|(i, m)| (EventKey { timestamp: i as i64, seq: i as u64 + 100 }, 7, m.as_str())),
        )
        .unwrap();
        w.write_stream_run(2, std::iter::once((EventKey { timestamp: 5, seq: 1 }, 8, "other"))).unwrap();
        let path = w.finish().unwrap();
        let part = Part::open(&path, 9).unwrap();
        assert_eq!((part.group_id, part.day), (3, 20_000));
        assert!(part.blocks().len() >= 3);
        let mut seen = 0;
        for (i, meta) in part.blocks().iter().enumerate() {
            let b = part.read_nth(i).unwrap();
            assert_eq!(b.len() as u32, meta.count);
            assert_eq!(b.min_key(), Some(meta.min_key));
            if meta.stream_id == 1 {
                for j in 0..b.len() {
                    assert_eq!(b.message(j), msgs[seen]);
                    seen += 1;
                }
            } else {
                assert_eq!(b.message(0), "other");
            }
        }
        assert_eq!(seen, msgs.len());
    }

    /// Blocks are encoded on several threads: the file is the same bytes whatever their number,
    /// and holds every event in order.
    #[test]
    fn parts_are_the_same_bytes_whatever_the_number_of_encoding_threads() {
        // 200 small streams (many more blocks than may be in flight) and a large one (blocks of
        // full size).
        let small: Vec<Vec<String>> = (0..200)
            .map(|s| (0..1 + s % 7).map(|i| format!("stream {s} event {i} id={}", s * 31 + i)).collect())
            .collect();
        let large: Vec<String> = (0..120_000).map(|i| format!("large event {i} status={}", i % 13)).collect();
        let write = |dir: &Path, threads: usize| -> Vec<u8> {
            let mut w = PartWriter::create(dir, 1, 1, 1).unwrap();
            w.encoders = EncodePipeline::start(threads, FLUSH_CODEC, block_layout(FORMAT_VERSION)).unwrap();
            for (s, msgs) in small.iter().enumerate() {
                let key = |i: usize| EventKey { timestamp: i as i64, seq: i as u64 };
                w.write_stream_run(s as u64 + 1, msgs.iter().enumerate().map(|(i, m)| (key(i), 0, m.as_str())))
                    .unwrap();
            }
            let key = |i: usize| EventKey { timestamp: i as i64, seq: i as u64 };
            w.write_stream_run(500, large.iter().enumerate().map(|(i, m)| (key(i), 0, m.as_str()))).unwrap();
            fs::read(w.finish().unwrap()).unwrap()
        };
        let (one, three) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let bytes = write(one.path(), 1);
        assert!(bytes == write(three.path(), 3), "three encoding threads wrote other bytes than one");
        let part = Part::open(&one.path().join(Part::file_name(1)), 1).unwrap();
        assert!(part.blocks().len() > MAX_GROUPS_IN_FLIGHT + 10, "{} blocks", part.blocks().len());
        let mut read: Vec<(u64, String)> = Vec::new();
        for i in 0..part.blocks().len() {
            let b = part.read_nth(i).unwrap();
            read.extend((0..b.len()).map(|j| (b.stream_id, b.message(j).to_owned())));
        }
        let expected: Vec<(u64, String)> = small
            .iter()
            .enumerate()
            .flat_map(|(s, msgs)| msgs.iter().map(move |m| (s as u64 + 1, m.clone())))
            .chain(large.iter().map(|m| (500, m.clone())))
            .collect();
        assert_eq!(read, expected);
    }

    #[test]
    fn blocks_span_at_most_two_hours() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = PartWriter::create(dir.path(), 4, 1, 1).unwrap();
        let minute = 60_000;
        w.write_stream_run(1, (0..960).map(|i| (EventKey { timestamp: i * minute, seq: i as u64 }, 0, "x"))).unwrap();
        let part = Part::open(&w.finish().unwrap(), 4).unwrap();
        assert_eq!(part.blocks().len(), 8);
        assert!(part.blocks().iter().all(|b| b.max_key.timestamp - b.min_key.timestamp <= MAX_BLOCK_SPAN_MS));
    }

    /// An LZ4 part stores each bloom group as blocks of at least `min_raw_bytes` spanning at least
    /// `min_span_ms`, all pointing at the group's one bloom; a zstd part keeps one block per group.
    /// Every event reads back, in order.
    #[test]
    fn lz4_parts_cut_bloom_groups_into_blocks_that_share_the_bloom() {
        use crate::bloom::token_hash;
        let minute = 60_000;
        // Stream 1: 4 h, an event of ~1 KiB a minute (two bloom groups of 2 h), "needle" only in
        // its first minute; stream 2: half an hour of 1-byte events (never 8 KiB: one block).
        let long = |i: i64| format!("event {i} {}", if i == 0 { "needle " } else { "hay " }.repeat(160));
        let stream_1: Vec<(EventKey, String)> =
            (0..240).map(|i| (EventKey { timestamp: i * minute, seq: i as u64 }, long(i))).collect();
        let stream_2: Vec<(EventKey, String)> =
            (0..30).map(|i| (EventKey { timestamp: i * minute, seq: 1000 + i as u64 }, "z".to_string())).collect();
        let split = BlockSplit { min_raw_bytes: 8 * 1024, min_span_ms: 15 * minute };
        for (id, codec) in [(1, BlockCodec::Lz4), (2, BlockCodec::Zstd(3))] {
            let dir = tempfile::tempdir().unwrap();
            let mut w = PartWriter::create_with_codec(dir.path(), id, 1, 1, codec).unwrap();
            w.set_block_split(split);
            for (stream, events) in [(1, &stream_1), (2, &stream_2)] {
                w.write_stream_run(stream, events.iter().map(|(k, m)| (*k, 0, m.as_str()))).unwrap();
            }
            let part = Part::open(&w.finish().unwrap(), id).unwrap();
            let blocks = part.blocks();
            let mut read = Vec::new();
            for (i, meta) in blocks.iter().enumerate() {
                let block = part.read_nth(i).unwrap();
                assert_eq!(
                    (block.len() as u32, block.min_key(), block.max_key()),
                    (meta.count, Some(meta.min_key), Some(meta.max_key))
                );
                read.extend((0..block.len()).map(|j| (meta.stream_id, block.key(j), block.message(j).to_string())));
            }
            let written = stream_1.iter().map(|e| (1, e)).chain(stream_2.iter().map(|e| (2, e)));
            assert!(read.iter().eq(written.map(|(s, (k, m))| (s, *k, m.clone())).collect::<Vec<_>>().iter()));
            // Groups: the blocks pointing at one bloom, consecutive.
            let mut groups: Vec<Vec<&BlockMeta>> = Vec::new();
            for meta in blocks.iter() {
                match groups.last_mut() {
                    Some(g) if g[0].bloom_offset == meta.bloom_offset => g.push(meta),
                    _ => groups.push(vec![meta]),
                }
            }
            let sizes: Vec<usize> = groups.iter().map(Vec::len).collect();
            let minutes = |b: &BlockMeta| (b.max_key.timestamp - b.min_key.timestamp) / minute;
            if codec == BlockCodec::Lz4 {
                // Minutes 0-120 (121 events: 8 blocks of 15 minutes and one of 1), 121-239 (7 of 15
                // and one of 14), and stream 2's half hour of small events.
                assert_eq!(sizes, [9, 8, 1]);
                let counts: Vec<Vec<u32>> = groups.iter().map(|g| g.iter().map(|b| b.count).collect()).collect();
                assert_eq!(counts[0], [15, 15, 15, 15, 15, 15, 15, 15, 1]);
                assert_eq!(counts[1], [15, 15, 15, 15, 15, 15, 15, 14]);
                assert!(groups[0][..8].iter().all(|b| minutes(b) == 14));
            } else {
                assert_eq!(sizes, [1, 1, 1]);
            }
            // One bloom for the group: the word of its first minute is "maybe" in all its blocks.
            let pages = BloomPageCache::new(1 << 20);
            let needle = [token_hash("needle")];
            assert!(groups[0].iter().all(|b| part.block_may_contain(b, &needle, &[], &pages)));
            assert!(groups[1..].iter().flatten().all(|b| !part.block_may_contain(b, &needle, &[], &pages)));
        }
    }

    #[test]
    fn blooms_prune_blocks_without_a_word() {
        use crate::bloom::token_hash;
        let dir = tempfile::tempdir().unwrap();
        let mut w = PartWriter::create(dir.path(), 2, 1, 1).unwrap();
        w.write_stream_run(1, std::iter::once((EventKey { timestamp: 5, seq: 1 }, 8, "user login ok"))).unwrap();
        w.write_stream_run(2, std::iter::once((EventKey { timestamp: 6, seq: 2 }, 8, "disk ERROR: full"))).unwrap();
        let part = Part::open(&w.finish().unwrap(), 2).unwrap();
        assert_eq!(part.blocks().len(), 2);
        let pages = BloomPageCache::new(1 << 20);
        assert!(part.block_may_contain(&part.blocks()[1], &[token_hash("ERROR")], &[], &pages));
        assert!(part.block_may_contain(&part.blocks()[1], &[token_hash("disk"), token_hash("full")], &[], &pages));
        assert!(!part.block_may_contain(&part.blocks()[0], &[token_hash("ERROR")], &[], &pages));
        assert!(part.block_may_contain(&part.blocks()[0], &[], &[], &pages));
    }

    /// Blooms read through cached pages (4 KiB in tests: many blooms cross a page boundary) say
    /// exactly what each bloom read alone says, with a cache large enough for all pages or for one.
    #[test]
    fn paged_bloom_reads_equal_reading_each_bloom() {
        use crate::bloom::token_hash;
        let dir = tempfile::tempdir().unwrap();
        let mut w = PartWriter::create(dir.path(), 5, 1, 1).unwrap();
        // Blocks of a few events: the last stream's bloom groups are many blocks each.
        w.set_block_split(BlockSplit { min_raw_bytes: 64, min_span_ms: 1 });
        let words = |s: u64| format!("w{s} x{} y{}", s % 7, s % 13);
        for stream in 0..3000u64 {
            let text = format!("{} {}", words(stream), "pad ".repeat((stream % 50) as usize));
            w.write_stream_run(stream, std::iter::once((EventKey { timestamp: 1, seq: stream }, 0, text.as_str())))
                .unwrap();
        }
        let long_run: Vec<String> = (0..3000u64).map(|i| format!("{} {}", words(i), "pad ".repeat(10))).collect();
        let events =
            long_run.iter().enumerate().map(|(i, m)| (EventKey { timestamp: i as i64, seq: i as u64 }, 0, m.as_str()));
        w.write_stream_run(3000, events).unwrap();
        let part = Part::open(&w.finish().unwrap(), 5).unwrap();
        let index = part.blocks();
        let shared = index.windows(2).filter(|w| w[0].bloom_offset == w[1].bloom_offset).count();
        assert!(shared > 1000, "{shared} blocks share the bloom before them");
        let section = part.bloom_section.end - part.bloom_section.start;
        assert!(section > 4 * BLOOM_PAGE_BYTES, "{section}");
        let probes: Vec<u64> = ["w3", "x4", "y12", "w1499", "absent", "pad"].iter().map(|w| token_hash(w)).collect();
        for capacity in [1 << 20, 5000] {
            let pages = BloomPageCache::new(capacity);
            for (i, meta) in part.blocks().iter().enumerate() {
                let mut bloom = vec![0u8; meta.bloom_len as usize];
                part.file.read_exact_at(&mut bloom, meta.bloom_offset).unwrap();
                for h in &probes {
                    let alone = crate::bloom::may_contain(&bloom, *h);
                    assert_eq!(part.block_may_contain(meta, &[*h], &[], &pages), alone, "block {i}");
                }
                let own = token_hash(&format!("w{}", meta.stream_id.min(2999)));
                assert!(part.block_may_contain(meta, &[own], &[], &pages));
            }
            // A page's blooms tested at once say what each bloom read alone says, whichever
            // block's page is asked for first.
            for h in &probes {
                let verdicts: Vec<AtomicU8> = (0..index.len()).map(|_| AtomicU8::new(0)).collect();
                for i in (0..index.len()).rev().step_by(7).chain(0..index.len()) {
                    if verdicts[i].load(Ordering::Relaxed) == 0 {
                        part.test_blooms_on_page(&index, i, &[*h], &[], &pages, &verdicts);
                    }
                    assert_ne!(verdicts[i].load(Ordering::Relaxed), 0, "block {i} was tested");
                }
                let verdicts: Vec<u8> = verdicts.into_iter().map(AtomicU8::into_inner).collect();
                for (i, meta) in index.iter().enumerate() {
                    let mut bloom = vec![0u8; meta.bloom_len as usize];
                    part.file.read_exact_at(&mut bloom, meta.bloom_offset).unwrap();
                    let alone = if crate::bloom::may_contain(&bloom, *h) { BLOOM_MAYBE } else { BLOOM_RULES_OUT };
                    assert_eq!(verdicts[i], alone, "block {i}");
                }
            }
        }
    }

    #[test]
    fn the_json_mark_prunes_text_blocks_in_new_parts_only() {
        use crate::bloom::{token_hash, JSON_OBJECT_MARK};
        let dir = tempfile::tempdir().unwrap();
        let write = |id: u64, codec: BlockCodec, format: u32| {
            let mut w = PartWriter::create_in_format(dir.path(), id, 1, 1, codec, format).unwrap();
            w.write_stream_run(1, std::iter::once((EventKey { timestamp: 5, seq: 1 }, 8, "text {not json"))).unwrap();
            w.write_stream_run(2, std::iter::once((EventKey { timestamp: 6, seq: 2 }, 8, " \r\n\t{\"a\": 1}")))
                .unwrap();
            w.finish().unwrap()
        };
        let mark = [token_hash(JSON_OBJECT_MARK)];
        let part = Part::open(&write(3, FLUSH_CODEC, FORMAT_VERSION), 3).unwrap();
        let pages = BloomPageCache::new(1 << 20);
        assert!(part.has_marks);
        assert!(!part.block_may_contain(&part.blocks()[0], &[], &mark, &pages));
        assert!(part.block_may_contain(&part.blocks()[1], &[], &mark, &pages));
        // The same part as format 2 wrote it (no marks): the mark can no longer rule anything out.
        let old = Part::open(&write(4, BlockCodec::Zstd(1), 2), 4).unwrap();
        let pages = BloomPageCache::new(1 << 20);
        assert!(!old.has_marks);
        assert!(old.block_may_contain(&old.blocks()[0], &[], &mark, &pages));
    }

    /// Writes the same runs (stream, event count) in `format`, with messages that fill blocks
    /// unevenly, and opens the part.
    fn part_of_runs(dir: &Path, id: u64, format: u32, runs: &[(StreamId, usize)]) -> Part {
        let mut w = PartWriter::create_in_format(dir, id, 1, 1, BlockCodec::Lz4, format).unwrap();
        for &(stream, count) in runs {
            let msgs: Vec<String> =
                (0..count).map(|i| format!("s{stream} e{i} {}", "x".repeat((i * 7 + stream as usize) % 300))).collect();
            let key = |i: usize| EventKey { timestamp: (stream as i64) * 1000 + i as i64 * 3, seq: i as u64 };
            w.write_stream_run(stream, msgs.iter().enumerate().map(|(i, m)| (key(i), 1, m.as_str()))).unwrap();
        }
        Part::open(&w.finish().unwrap(), id).unwrap()
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]
        /// A part opened from its summary (format 6) knows what one opened from its index
        /// (format 5) knows of the same blocks, and what its index says.
        #[test]
        fn summaries_say_what_the_index_says(
            streams in proptest::collection::btree_map(1u64..200, 1usize..3000, 1..6),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let runs: Vec<(StreamId, usize)> = streams.into_iter().collect();
            // The same blocks (a packed column header, from format 7, changes their raw lengths).
            let new = part_of_runs(dir.path(), 1, FIRST_VERSION_WITH_SUMMARY, &runs);
            let old = part_of_runs(dir.path(), 2, FIRST_VERSION_WITH_SUMMARY - 1, &runs);
            let facts = |p: &Part| {
                (p.raw_bytes, p.min_key, p.max_key, p.streams.to_vec(), p.bloom_section.end - p.bloom_section.start, p.block_count)
            };
            proptest::prop_assert_eq!(facts(&new), facts(&old));
            let current = part_of_runs(dir.path(), 3, FORMAT_VERSION, &runs);
            for new in [new, current] {
                let index = new.blocks();
                let mut streams: Vec<StreamId> = runs.iter().map(|r| r.0).collect();
                streams.sort_unstable();
                let from_index = PartSummary {
                    raw_bytes: index.iter().map(|b| u64::from(b.raw_len)).sum(),
                    min_key: index.iter().map(|b| b.min_key).min().unwrap(),
                    max_key: index.iter().map(|b| b.max_key).max().unwrap(),
                    bloom_start: index.iter().map(|b| b.bloom_offset).min().unwrap(),
                    streams,
                };
                let opened = PartSummary {
                    raw_bytes: new.raw_bytes,
                    min_key: new.min_key,
                    max_key: new.max_key,
                    bloom_start: new.bloom_section.start,
                    streams: new.streams.to_vec(),
                };
                proptest::prop_assert_eq!(&opened, &from_index);
                proptest::prop_assert_eq!(new.streams.len(), runs.len());
                let mut bytes = Vec::new();
                opened.encode(&mut bytes);
                proptest::prop_assert_eq!(PartSummary::decode(&bytes, new.index_offset, new.block_count), Ok(opened));
            }
        }
    }

    /// Any damage to a summary makes its part unreadable, with a message that says so; a summary
    /// whose checksum matches but whose facts cannot be true is refused too.
    #[test]
    fn damaged_summaries_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let part = part_of_runs(dir.path(), 1, FORMAT_VERSION, &[(3, 2000), (9, 10)]);
        let clean = fs::read(&part.path).unwrap();
        let summary_at = part.index_offset as usize + part.block_count * INDEX_ENTRY_LEN;
        let footer_at = clean.len() - FOOTER_LEN;
        assert_eq!(footer_at - summary_at, SUMMARY_FIXED_LEN + 2 * 8);
        for at in summary_at..footer_at {
            let mut bytes = clean.clone();
            bytes[at] ^= 0x10;
            fs::write(&part.path, &bytes).unwrap();
            let err = Part::open(&part.path, 1).unwrap_err().to_string();
            assert!(err.contains("bad summary: checksum mismatch"), "byte {at}: {err}");
        }
        // A footer (checksummed again) claiming more index entries than fit before the summary.
        let mut bytes = clean.clone();
        let more = (part.block_count as u32 + 1000).to_le_bytes();
        bytes[footer_at + 24..footer_at + 28].copy_from_slice(&more);
        let footer_crc = crc32fast::hash(&bytes[footer_at..footer_at + 36]);
        bytes[footer_at + 36..footer_at + 40].copy_from_slice(&footer_crc.to_le_bytes());
        fs::write(&part.path, &bytes).unwrap();
        let err = Part::open(&part.path, 1).unwrap_err().to_string();
        assert!(err.contains("index out of bounds"), "{err}");
        let summary = PartSummary::decode(&clean[summary_at..footer_at], part.index_offset, part.block_count).unwrap();
        let refused = |s: &PartSummary, blocks: usize| {
            let mut bytes = Vec::new();
            s.encode(&mut bytes);
            PartSummary::decode(&bytes, part.index_offset, blocks).unwrap_err()
        };
        let mut s = summary.clone();
        s.streams.reverse();
        assert_eq!(refused(&s, part.block_count), "stream ids not ascending");
        s.streams = vec![3, 3];
        assert_eq!(refused(&s, part.block_count), "stream ids not ascending");
        assert_eq!(refused(&summary, 1), "2 streams for 1 blocks");
        let mut s = summary.clone();
        (s.min_key, s.max_key) = (s.max_key, s.min_key);
        assert_eq!(refused(&s, part.block_count), "smallest key after the largest");
        let mut s = summary.clone();
        s.bloom_start = part.index_offset + 1;
        assert_eq!(refused(&s, part.block_count), "blooms out of bounds");
        let mut bytes = clean[summary_at..footer_at - 4].to_vec();
        bytes.extend_from_slice(&[0; 3]);
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        let err = PartSummary::decode(&bytes, part.index_offset, part.block_count).unwrap_err();
        assert_eq!(err, "3 bytes after the stream ids");
        assert!(PartSummary::decode(&[0; 12], part.index_offset, 1).unwrap_err().contains("shorter than a summary"));
    }

    #[test]
    fn a_flipped_byte_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let path = one_event_part(dir.path(), "hello");
        let mut bytes = fs::read(&path).unwrap();
        bytes[MAGIC.len() + 2] ^= 0xff;
        fs::write(&path, &bytes).unwrap();
        let part = Part::open(&path, 1).unwrap();
        assert!(matches!(part.read_nth(0), Err(StoreError::Corrupt(_))));
    }
}
