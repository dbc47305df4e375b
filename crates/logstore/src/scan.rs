//! The scan: merges candidate blocks (from parts and memtables) into one key-ordered page without
//! reading more than it must. Blocks are visited in order of their smallest key (largest, when
//! reading backward); an event is emitted once no unvisited block can hold a smaller key (the
//! "watermark"), so a page stops as soon as it is full and the resume bound is exact. A forward page
//! of a query read page after page can leave the part blocks it decoded, with their matches beyond
//! it, to the next page (`CarriedState`, kept between requests by `cursor::CursorCache`).

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use rustc_hash::FxHashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

use crate::block::{BlockView, EventBlock};
use crate::cache::{BlockCache, ReadCaches};
use crate::part::{BlockIndex, Part, BLOOM_MAYBE, BLOOM_RULES_OUT};
use crate::readahead::{ReadAhead, StopOnDrop};
use crate::{Direction, EventKey, ScanPage, ScanRequest, StoreError, StoredEvent, StreamId};

/// The parts a scan reads, with their block indexes: its candidates name a part by its place
/// here, so that a candidate is 48 bytes and holds no reference of its own (W3's 10 GB has 80,000;
/// with a reference and a copy of the index entry each, they were 144 bytes, and building, sorting
/// and dropping them was a tenth of a rare word's search, and of every page of a long scan).
pub type ScanParts = [(Arc<Part>, Arc<BlockIndex>)];

pub enum BlockSource {
    /// Block `.1` of the scan's part `.0` (its place in `ScanParts`).
    Part(u32, u32),
    Memory(Arc<EventBlock>),
}

pub struct Candidate {
    pub min: EventKey,
    pub max: EventKey,
    pub source: BlockSource,
}

impl Candidate {
    /// The part block this is (None for a memtable block).
    fn part_block(&self, parts: &ScanParts) -> Option<BlockId> {
        match &self.source {
            BlockSource::Part(part, i) => Some((parts[*part as usize].0.id, *i)),
            BlockSource::Memory(_) => None,
        }
    }

    /// Runs `read` on the block (decoding it unless the cache has it) and returns what it gave
    /// and the block's raw bytes. A part block decoded here is read in place, in the decoding
    /// thread's reused buffers, and copied into the cache only while the page has decoded less
    /// than `1 / PAGE_CACHE_SHARE` of the cache (`filled`; small queries and pollers find their
    /// blocks there again) or when `read` left events behind (the next page reads it again): a big
    /// scan neither floods the cache nor writes fresh memory for each block (which cost a tenth
    /// of a regex scan of 1 GB).
    fn visit(
        &self,
        parts: &ScanParts,
        cache: &BlockCache,
        filled: &AtomicUsize,
        read: &dyn Fn(BlockView<'_>) -> Result<Collected, StoreError>,
    ) -> BlockResult {
        let raw_of = |view: BlockView<'_>| view.message_bytes().len() as u64;
        match &self.source {
            BlockSource::Part(number, i) => {
                let (part, index) = &parts[*number as usize];
                let key = (part.id, *i);
                if let Some(block) = cache.get(key) {
                    return Ok((read(block.view())?, raw_of(block.view())));
                }
                part.visit_block(*i as usize, &index[*i as usize], |view| {
                    let collected = read(view)?;
                    let raw = raw_of(view);
                    let before = filled.fetch_add(raw as usize, Ordering::Relaxed);
                    if collected.1.is_some() || before < cache.capacity() / PAGE_CACHE_SHARE {
                        cache.insert(key, Arc::new(view.to_block()?));
                    }
                    Ok((collected, raw))
                })
            }
            BlockSource::Memory(block) if block.is_sorted() => Ok((read(block.view())?, raw_of(block.view()))),
            BlockSource::Memory(block) => {
                let sorted = (**block).clone().into_sorted();
                Ok((read(sorted.view())?, raw_of(sorted.view())))
            }
        }
    }

    /// A part block not in the cache: loading it means decompressing it.
    fn needs_decoding(&self, parts: &ScanParts, cache: &BlockCache) -> bool {
        match &self.source {
            BlockSource::Part(number, i) => !cache.contains((parts[*number as usize].0.id, *i)),
            BlockSource::Memory(_) => false,
        }
    }
}

/// A page copies the blocks it decodes into the block cache until they fill this fraction of it
/// (4 MiB of the default 64: a GetLogEvents page of 10,000 events reads ~2 MB).
const PAGE_CACHE_SHARE: usize = 16;

/// The resolved bounds of a scan.
pub struct Bounds {
    /// Inclusive lower timestamp (start time, or the retention cut-off if later).
    pub low_ts: i64,
    /// Exclusive upper timestamp.
    pub high_ts: i64,
}

impl Bounds {
    /// Forward scans read keys >= this.
    pub fn lower_key(&self, req: &ScanRequest<'_>) -> EventKey {
        let start = EventKey { timestamp: self.low_ts, seq: 0 };
        match (req.direction, req.bound) {
            (Direction::Forward, Some(b)) => b.max(start),
            _ => start,
        }
    }

    /// Backward scans read keys < this.
    pub fn upper_key(&self, req: &ScanRequest<'_>) -> EventKey {
        let end = EventKey { timestamp: self.high_ts, seq: 0 };
        match (req.direction, req.bound) {
            (Direction::Backward, Some(b)) => b.min(end),
            _ => end,
        }
    }

    /// Whether a block with this key range can hold an event of the scan.
    pub fn overlaps(&self, req: &ScanRequest<'_>, min: EventKey, max: EventKey) -> bool {
        if max.timestamp < self.low_ts || min.timestamp >= self.high_ts {
            return false;
        }
        match req.direction {
            Direction::Forward => max >= self.lower_key(req),
            Direction::Backward => min < self.upper_key(req),
        }
    }
}

/// The part number of a candidate that is not a part block (a memtable block).
const NO_PART: u32 = u32::MAX;

/// Candidates a scan passes before it may start a bloom scout (see `run`).
const SCOUT_AFTER: usize = 4096;

/// A part block's identity: (part id, block index). Part ids are never reused.
pub(crate) type BlockId = (u64, u32);

/// A matching event waiting in the merge for its turn.
pub(crate) struct Pending {
    key: EventKey,
    stream_id: StreamId,
    ingestion_time: i64,
    message: String,
    /// What it takes of the page's `max_bytes` (the request's `event_cost`), counted once, when
    /// `collect` took it. A page kept for the next one is continued only by the same query, so by
    /// the same cost function.
    cost: usize,
    /// The part block it came from (None: a memtable block).
    source: Option<BlockId>,
}

impl Pending {
    /// Memory it holds, as cursors count it.
    fn weight(&self) -> usize {
        self.message.len() + 64
    }
}

/// What a forward page leaves for the next page of the same query (kept in a `ScanCursor`).
pub(crate) struct CarriedState {
    /// The bound the page returned; the state continues only a request at exactly this bound.
    pub resume: EventKey,
    /// Part blocks decoded in full, with their largest key: every match they hold at or beyond
    /// `resume` is in `pending`, so the next page does not read them.
    consumed: FxHashMap<BlockId, EventKey>,
    /// Those matches, in no particular order.
    pending: Vec<Pending>,
    /// Memory held (messages plus overhead).
    pub bytes: usize,
}

impl CarriedState {
    /// The parts the state relies on: each must still be live for the state to be used.
    pub fn part_ids(&self) -> impl Iterator<Item = u64> + '_ {
        self.consumed.keys().map(|(part, _)| *part)
    }

    #[cfg(test)]
    pub fn empty_for_tests(resume: EventKey, bytes: usize) -> CarriedState {
        CarriedState { resume, consumed: FxHashMap::default(), pending: Vec::new(), bytes }
    }
}

/// While the merge holds less than this, a page that keeps state collects every match of each
/// block it decodes (so the block is consumed); beyond it, only what the page can still take.
const CARRY_HEAP_BYTES: usize = 16 << 20;
/// A page end holding more than this is not kept.
const CARRY_MAX_BYTES: usize = 32 << 20;

/// Fills a page under the request's limits.
struct PageBuilder<'r, 'a> {
    req: &'r ScanRequest<'a>,
    names: &'r FxHashMap<StreamId, Arc<str>>,
    /// The last stream looked up in `names`: a page mostly holds runs of one stream's events.
    last_name: Option<(StreamId, Arc<str>)>,
    events: Vec<StoredEvent>,
    bytes: usize,
}

impl PageBuilder<'_, '_> {
    /// Adds the event, or gives it back when the page is full.
    fn push(&mut self, p: Pending) -> Result<(), Pending> {
        if self.events.len() >= self.req.limit {
            return Err(p);
        }
        if !self.events.is_empty() && self.bytes + p.cost > self.req.max_bytes {
            return Err(p);
        }
        let name = match &self.last_name {
            Some((id, name)) if *id == p.stream_id => name.clone(),
            _ => {
                let name = self.names.get(&p.stream_id).cloned().unwrap_or_else(|| Arc::from(""));
                self.last_name = Some((p.stream_id, name.clone()));
                name
            }
        };
        self.bytes += p.cost;
        self.events.push(StoredEvent {
            stream_name: name,
            key: p.key,
            ingestion_time: p.ingestion_time,
            message: p.message,
        });
        Ok(())
    }
}

/// Matches of one block (or a previous page's leftovers) in scan order, stored reversed: the next
/// to emit is the last element.
struct Run {
    /// `order_key` of the next match: the heap's order.
    head: EventKey,
    rev: Vec<Pending>,
}

impl PartialEq for Run {
    fn eq(&self, other: &Self) -> bool {
        self.head == other.head
    }
}
impl Eq for Run {}
impl PartialOrd for Run {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Run {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.head.cmp(&other.head)
    }
}

/// The merge of one page: runs of matches in a heap ordered by their next match. Blocks that do
/// not overlap (one stream read in order) leave one run at a time, so an event costs a move, not
/// a heap operation.
struct Merge {
    forward: bool,
    runs: BinaryHeap<Reverse<Run>>,
    bytes: usize,
}

/// The merge's order: keys ascending when reading forward, descending when backward.
fn order_key(forward: bool, k: EventKey) -> EventKey {
    if forward {
        k
    } else {
        EventKey { timestamp: -k.timestamp, seq: u64::MAX - k.seq }
    }
}

impl Merge {
    /// Whether `a` comes before `b` in scan order.
    fn before(&self, a: EventKey, b: EventKey) -> bool {
        order_key(self.forward, a) < order_key(self.forward, b)
    }

    /// Adds matches already in scan order (what `collect` gives for one block).
    fn push_run(&mut self, mut run: Vec<Pending>) {
        let Some(first) = run.first() else { return };
        let head = order_key(self.forward, first.key);
        self.bytes += run.iter().map(Pending::weight).sum::<usize>();
        run.reverse();
        self.runs.push(Reverse(Run { head, rev: run }));
    }

    /// Adds matches in any order.
    fn push_unordered(&mut self, mut matches: Vec<Pending>) {
        let forward = self.forward;
        matches.sort_unstable_by_key(|p| order_key(forward, p.key));
        self.push_run(matches);
    }

    /// Moves matches strictly before `limit` (in scan order; None: all) into the page. Returns
    /// the key of the first one the full page refused (it stays in the merge).
    fn emit(&mut self, limit: Option<EventKey>, page: &mut PageBuilder<'_, '_>) -> Option<EventKey> {
        let forward = self.forward;
        let limit = limit.map(|l| order_key(forward, l));
        while let Some(mut top) = self.runs.peek_mut() {
            let run = &mut top.0;
            if limit.is_some_and(|l| run.head >= l) {
                return None;
            }
            let p = run.rev.pop().expect("runs in the heap are not empty");
            let weight = p.weight();
            match page.push(p) {
                Ok(()) => self.bytes -= weight,
                Err(p) => {
                    let key = p.key;
                    run.rev.push(p);
                    return Some(key);
                }
            }
            match run.rev.last() {
                // The heap puts the run back in its place when `top` is dropped.
                Some(next) => run.head = order_key(forward, next.key),
                None => {
                    std::collections::binary_heap::PeekMut::pop(top);
                }
            }
        }
        None
    }

    /// The state the next page starts from: the consumed blocks still reaching `resume` and
    /// their matches left in the merge (matches of other blocks are found again by reading them).
    fn carry(self, resume: EventKey, mut consumed: FxHashMap<BlockId, EventKey>) -> Option<CarriedState> {
        consumed.retain(|_, max| *max >= resume);
        let pending: Vec<Pending> = self
            .runs
            .into_iter()
            .flat_map(|Reverse(run)| run.rev)
            .filter(|p| p.source.is_some_and(|b| consumed.contains_key(&b)))
            .collect();
        let bytes = pending.iter().map(Pending::weight).sum::<usize>() + consumed.len() * 48;
        (bytes <= CARRY_MAX_BYTES).then_some(CarriedState { resume, consumed, pending, bytes })
    }
}

/// Collects from one block the events of the scan that could still enter this page: at most
/// `max_count` matches, stopping once they cost `max_bytes`, in scan order. Returns the key of the
/// first matching event left behind (None when the block was exhausted): no event at or beyond it
/// may be emitted in this page, because the events left behind are not in the heap.
#[allow(clippy::too_many_arguments)]
fn collect<'a>(
    block: BlockView<'a>,
    source: Option<BlockId>,
    direction: Direction,
    bounds: &Bounds,
    bound_key: EventKey,
    matches: &dyn Fn(&str) -> bool,
    candidates: Option<crate::CandidateFilter<'_>>,
    cost: &dyn Fn(&str) -> usize,
    max_count: usize,
    max_bytes: usize,
    out: &mut Vec<Pending>,
) -> Result<Option<EventKey>, StoreError> {
    // Events that might match, found by searching the block's messages at once; the others
    // cannot match and are not given to the predicate.
    let holds = candidates.and_then(|f| f(block.message_bytes(), block.ends()));
    let candidate = |j: usize| holds.as_ref().is_none_or(|h| h.get(j).copied().unwrap_or(true));
    let in_range = |k: EventKey| match direction {
        Direction::Forward => k >= bound_key && k.timestamp < bounds.high_ts,
        Direction::Backward => k < bound_key && k.timestamp >= bounds.low_ts,
    };
    // Qualifying events (index, message, cost), in scan order, capped.
    let mut picked: Vec<(usize, &'a str, usize)> = Vec::new();
    let mut left_behind = None;
    if block.is_sorted() {
        let keys = block.keys();
        let mut bytes = 0usize;
        // What an event says: go on (None), or stop with the first key left behind.
        let mut visit =
            |j: usize, picked: &mut Vec<(usize, &'a str, usize)>| -> Result<Option<Option<EventKey>>, StoreError> {
                // Most events of a long scan are not candidates: they are passed over before their
                // key is read. (Past the time range every event is, so stopping at the first
                // candidate there stops with the same result.)
                if !candidate(j) {
                    return Ok(None);
                }
                let k = keys[j];
                if !in_range(k) {
                    return Ok(Some(None)); // past the time range: stop, nothing left behind
                }
                let msg = block.message(j)?;
                if matches(msg) {
                    if picked.len() >= max_count || bytes >= max_bytes {
                        return Ok(Some(Some(k)));
                    }
                    let c = cost(msg);
                    bytes += c;
                    picked.push((j, msg, c));
                }
                Ok(None)
            };
        match direction {
            Direction::Forward => {
                let start = keys.partition_point(|k| *k < bound_key);
                for j in start..keys.len() {
                    if let Some(stop) = visit(j, &mut picked)? {
                        left_behind = stop;
                        break;
                    }
                }
            }
            Direction::Backward => {
                let end = keys.partition_point(|k| *k < bound_key);
                for j in (0..end).rev() {
                    if let Some(stop) = visit(j, &mut picked)? {
                        left_behind = stop;
                        break;
                    }
                }
            }
        }
    } else {
        // An unsorted (open memtable) block: select the best `max_count` without sorting it all.
        let mut all: Vec<(EventKey, usize, &'a str)> = Vec::new();
        for j in 0..block.len() {
            if in_range(block.key(j)) && candidate(j) {
                let msg = block.message(j)?;
                if matches(msg) {
                    all.push((block.key(j), j, msg));
                }
            }
        }
        let order = |a: &(EventKey, usize, &str), b: &(EventKey, usize, &str)| match direction {
            Direction::Forward => a.0.cmp(&b.0),
            Direction::Backward => b.0.cmp(&a.0),
        };
        if all.len() > max_count {
            all.select_nth_unstable_by(max_count, order);
            left_behind = Some(all[max_count].0);
            all.truncate(max_count);
        }
        all.sort_unstable_by(order);
        let mut bytes = 0usize;
        for (i, &(k, j, msg)) in all.iter().enumerate() {
            if bytes >= max_bytes {
                left_behind = Some(match (left_behind, direction) {
                    (None, _) => k,
                    (Some(prev), Direction::Forward) => prev.min(k),
                    (Some(prev), Direction::Backward) => prev.max(k),
                });
                picked.truncate(i);
                break;
            }
            let c = cost(msg);
            bytes += c;
            picked.push((j, msg, c));
        }
    }
    out.extend(picked.into_iter().map(|(j, msg, cost)| Pending {
        key: block.key(j),
        stream_id: block.stream_id(),
        ingestion_time: block.ingestion_time(j),
        message: msg.to_owned(),
        cost,
        source,
    }));
    Ok(left_behind)
}

/// What `collect` took from one block: its matches for the page, and the first key it left behind.
type Collected = (Vec<Pending>, Option<EventKey>);
/// What one block gives a page: what was collected, and the raw bytes read.
type BlockResult = Result<(Collected, u64), StoreError>;

/// What a block may still give the page (`collect`'s `max_count` and `max_bytes`), as the page
/// last set it; the threads decoding ahead read it when they reach a block.
#[derive(Default)]
struct PageCaps {
    count: AtomicUsize,
    bytes: AtomicUsize,
}

impl PageCaps {
    fn update(&self, keep_state: bool, merge: &Merge, page: &PageBuilder<'_, '_>, req: &ScanRequest<'_>) {
        // A page that keeps state takes every match of a block while the merge is small, so
        // that the next page need not read the block again.
        let (count, bytes) = if keep_state && merge.bytes < CARRY_HEAP_BYTES {
            (usize::MAX, usize::MAX)
        } else {
            (req.limit.saturating_sub(page.events.len()), req.max_bytes.saturating_sub(page.bytes).max(1))
        };
        self.count.store(count, Ordering::Relaxed);
        self.bytes.store(bytes, Ordering::Relaxed);
    }

    fn get(&self) -> (usize, usize) {
        (self.count.load(Ordering::Relaxed), self.bytes.load(Ordering::Relaxed))
    }
}

/// The candidates in scan order (smallest key first forward, largest first backward), sorted a
/// stretch at a time as the scan reaches them: a page mostly reads the first thousand of tens of
/// thousands (W3's 10 GB: 80,000 candidates, ~900 a page of a regex; sorting them all took 2.6 ms
/// of every page, on one core). Each entry is a candidate's key, number, and part number and
/// block (`NO_PART` for a memtable block), so that blocks whose bloom ruled them out are passed
/// over without reading their candidates; the candidates themselves (48 bytes) are not moved.
/// Unstable sorts: no two blocks share a key (each key is one event's), and a stable sort
/// allocates scratch as large as the list.
struct ScanOrder {
    entries: Vec<(EventKey, u32, u32, u32)>,
    /// Entries before this are in their final places.
    sorted: usize,
    forward: bool,
}

/// The first stretch sorted; each next one is as long as all those before it.
const FIRST_SORTED_STRETCH: usize = 2048;

impl ScanOrder {
    fn new(candidates: &[Candidate], forward: bool) -> ScanOrder {
        let entries = candidates
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let (part, block) = match c.source {
                    BlockSource::Part(part, block) => (part, block),
                    BlockSource::Memory(_) => (NO_PART, 0),
                };
                (if forward { c.min } else { c.max }, i as u32, part, block)
            })
            .collect();
        ScanOrder { entries, sorted: 0, forward }
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    /// The entry `k`-th in scan order (`k < len()`: past the end it panics, as indexing does).
    fn get(&mut self, k: usize) -> (EventKey, u32, u32, u32) {
        while self.sorted <= k && self.sorted < self.entries.len() {
            let end = (self.sorted + self.sorted.max(FIRST_SORTED_STRETCH)).min(self.entries.len());
            self.sort_stretch(end);
        }
        self.entries[k]
    }

    /// Every entry, in scan order.
    fn all(&mut self) -> &[(EventKey, u32, u32, u32)] {
        self.sort_stretch(self.entries.len());
        &self.entries
    }

    /// Puts the entries up to `end` in their final places: the smallest of the rest moved ahead
    /// of the others (`select_nth_unstable`, linear), then sorted.
    fn sort_stretch(&mut self, end: usize) {
        if end <= self.sorted {
            return;
        }
        let (rest, stretch) = (&mut self.entries[self.sorted..], end - self.sorted);
        if self.forward {
            sort_first(rest, stretch, |&(k, ..)| k);
        } else {
            sort_first(rest, stretch, |&(k, ..)| Reverse(k));
        }
        self.sorted = end;
    }
}

/// Puts the `n` smallest of `items` by `key` first, sorted; the others after them, in any order.
fn sort_first<T, K: Ord>(items: &mut [T], n: usize, key: impl Fn(&T) -> K + Copy) {
    if n < items.len() {
        items.select_nth_unstable_by_key(n, key);
    }
    items[..n].sort_unstable_by_key(key);
}

/// A page, and (for a request with a `continuation`) the state its next page can start from.
pub(crate) type PageAndState = (ScanPage, Option<CarriedState>);

/// Runs one page of a scan. `resumed` is the state a previous page of the same query left at
/// exactly this request's bound (the caller checked that, and that its parts are still live).
pub(crate) fn run(
    req: &ScanRequest<'_>,
    bounds: &Bounds,
    names: &FxHashMap<StreamId, Arc<str>>,
    mut candidates: Vec<Candidate>,
    parts: &ScanParts,
    caches: &ReadCaches,
    resumed: Option<CarriedState>,
) -> Result<PageAndState, StoreError> {
    let mut page = PageBuilder { req, names, last_name: None, events: Vec::new(), bytes: 0 };
    let mut scanned = 0u64;
    let matches = |msg: &str| req.predicate.is_none_or(|p| p(msg));
    let message_filter = req.predicate.and(req.candidates);
    // Hashes of the required words a part block's bloom must hold (only indexed tokens can
    // prune, see `bloom::is_indexed`).
    let token_hashes: Vec<u64> = if req.predicate.is_some() {
        req.required_tokens
            .iter()
            .filter(|t| crate::bloom::is_indexed(t))
            .map(|t| crate::bloom::token_hash(t))
            .collect()
    } else {
        Vec::new()
    };
    // Marks a part block's bloom must hold: JSON patterns need a message that is a JSON object.
    let mark_hashes: Vec<u64> = if req.predicate.is_some() && req.json_objects_only {
        vec![crate::bloom::token_hash(crate::bloom::JSON_OBJECT_MARK)]
    } else {
        Vec::new()
    };
    let mut pruned = 0u64;
    let forward = req.direction == Direction::Forward;
    // Only forward scans keep state between pages (FilterLogEvents pages forward).
    let keep_state = forward && req.continuation.is_some();
    let bound_key = if forward { bounds.lower_key(req) } else { bounds.upper_key(req) };
    let mut merge = Merge { forward, runs: BinaryHeap::new(), bytes: 0 };
    // Part blocks whose every match at or beyond the bound is in the merge (see `CarriedState`).
    let mut consumed: FxHashMap<BlockId, EventKey> = FxHashMap::default();
    if let Some(state) = resumed.filter(|_| keep_state) {
        candidates.retain(|c| c.part_block(parts).is_none_or(|b| !state.consumed.contains_key(&b)));
        // Streams deleted since, and days retention dropped since, are not shown.
        let kept = state.pending.into_iter().filter(|p| {
            names.contains_key(&p.stream_id)
                && p.key >= bound_key
                && p.key.timestamp >= bounds.low_ts
                && p.key.timestamp < bounds.high_ts
        });
        merge.push_unordered(kept.collect());
        consumed = state.consumed;
    }
    let mut order = ScanOrder::new(&candidates, forward);
    // Emission is allowed strictly before this (in scan order): events left behind by capped blocks.
    let mut cap_limit: Option<EventKey> = None;
    // Blocks (candidate numbers) whose every match at or beyond the bound is in the merge.
    let mut reached: Vec<u32> = Vec::new();
    let ahead: ReadAhead<BlockResult> = ReadAhead::new();
    let ahead = &ahead;
    // Ends the page: `resume` None when nothing is left.
    let finish = |mut events: Vec<StoredEvent>,
                  resume: Option<EventKey>,
                  mut merge: Merge,
                  mut consumed: FxHashMap<BlockId, EventKey>,
                  reached: Vec<u32>,
                  scanned: u64,
                  pruned_blocks: u64| {
        if !forward {
            events.reverse();
        }
        let state = match resume {
            Some(r) if keep_state => {
                for i in reached {
                    let c = &candidates[i as usize];
                    if let Some(b) = c.part_block(parts).filter(|_| c.max >= r) {
                        consumed.insert(b, c.max);
                    }
                }
                // Blocks decoded ahead and not reached: those that gave all their matches join
                // the state as if the page had reached them (every unvisited block starts at or
                // after `r`, so their matches are all still to come), while the merge stays
                // small; the next page need not decode them again.
                for (i, result) in ahead.stop_and_take_ready() {
                    let c = &candidates[i];
                    let (Ok(((collected, None), _)), Some(b)) = (result, c.part_block(parts)) else {
                        continue;
                    };
                    let weight = collected.iter().map(Pending::weight).sum::<usize>();
                    if merge.bytes + weight > CARRY_HEAP_BYTES {
                        break;
                    }
                    merge.push_run(collected);
                    consumed.insert(b, c.max);
                }
                merge.carry(r, consumed)
            }
            _ => None,
        };
        Ok((ScanPage { events, resume, scanned_bytes: scanned, pruned_blocks, cursor: None }, state))
    };
    // The resume bound for an event that did not fit: forward is inclusive, backward exclusive.
    let resume_at = |k: EventKey| if forward { k } else { k.successor() };
    // Blocks are decoded and filtered ahead of the merge by every core (`ReadAhead`), up to a
    // number of blocks that starts at one per core (as quick as one block when the first fills the
    // page) and grows while the page keeps going. Part blocks whose bloom lacks a required word are
    // ruled out before they are queued, one cheap read each, as the scan reaches them (a page that
    // fills early reads few blooms). What a block may give the page is read when the block is
    // decoded: any reading is correct (a capped block stops emission where it left events
    // behind), and the page only fills up meanwhile, so a stale reading mostly costs memory.
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
    let caps = PageCaps::default();
    caps.update(keep_state, &merge, &page, req);
    let filled = AtomicUsize::new(0);
    // Decodes candidate `i` (the read-ahead's items are candidate numbers).
    let process = |i: usize| -> BlockResult {
        let c = &candidates[i];
        let read = |block: BlockView<'_>| -> Result<Collected, StoreError> {
            let name = names.get(&block.stream_id()).cloned().unwrap_or_else(|| Arc::from(""));
            let cost = |m: &str| (req.event_cost)(&name, m);
            let (max_count, max_bytes) = caps.get();
            let mut out = Vec::new();
            let left = collect(
                block,
                c.part_block(parts),
                req.direction,
                bounds,
                bound_key,
                &matches,
                message_filter,
                &cost,
                max_count,
                max_bytes,
                &mut out,
            )?;
            Ok((out, left))
        };
        c.visit(parts, &caches.blocks, &filled, &read)
    };
    // What each part's blooms said of its blocks (`Part::test_blooms_on_page`; unset until a bloom
    // of the part is read): a bloom page is read and tested once, for all the blocks whose blooms
    // it holds (the blocks of a bloom group, or of one stream's hours, are queued minutes of the
    // scan's order apart).
    let bloom_verdicts: Vec<std::sync::OnceLock<Box<[AtomicU8]>>> =
        parts.iter().map(|_| std::sync::OnceLock::new()).collect();
    let prunes = !token_hashes.is_empty() || !mark_hashes.is_empty();
    // What the bloom of block `block` of the scan's part `part` says (0: not tested yet).
    let verdict_of = |part: u32, block: u32| -> u8 {
        let verdicts = bloom_verdicts.get(part as usize).and_then(|v| v.get());
        verdicts.map_or(0, |v| v[block as usize].load(Ordering::Relaxed))
    };
    // Tests the bloom of block `i` of the scan's part `number` (and the others on its page)
    // unless it was, and returns what it says (a memtable block, `NO_PART`: maybe).
    let bloom_test = |number: u32, i: u32| -> u8 {
        if number == NO_PART {
            return BLOOM_MAYBE;
        }
        let (part, index) = &parts[number as usize];
        let verdicts = bloom_verdicts[number as usize].get_or_init(|| index.iter().map(|_| AtomicU8::new(0)).collect());
        let i = i as usize;
        if verdicts[i].load(Ordering::Relaxed) == 0 {
            part.test_blooms_on_page(index, i, &token_hashes, &mark_hashes, &caches.bloom_pages, verdicts);
        }
        verdicts[i].load(Ordering::Relaxed)
    };
    // How far the scan's thread has tested blooms (the scout stops there), and whether the page
    // is over.
    let tested_up_to = AtomicUsize::new(0);
    let page_over = AtomicBool::new(false);
    std::thread::scope(|scope| {
        // Ends the read-ahead however the page ends, so that the helpers return.
        let _stop = StopOnDrop(ahead);
        struct EndScout<'a>(&'a AtomicBool);
        impl Drop for EndScout<'_> {
            fn drop(&mut self) {
                self.0.store(true, Ordering::Relaxed);
            }
        }
        let _end_scout = EndScout(&page_over);
        // Each candidate's place in the read-ahead's queue (None: its bloom ruled it out), for the
        // candidates examined so far.
        let mut queue_at: Vec<Option<usize>> = Vec::with_capacity(order.len());
        let (mut queued, mut taken) = (0usize, 0usize);
        // Helper threads only pay when there are blocks to decompress: memtable and cached blocks
        // take microseconds, and a thread started on a busy machine may wait milliseconds for a
        // core (GetLogEvents during an ingest waited ~5 ms per page for its helper).
        let mut helpers_started = workers == 1;
        let mut to_decompress = 0usize;
        // Once the scan has passed `SCOUT_AFTER` candidates and its blooms ruled out nearly all,
        // it looks like a search for a rare word over all the blooms: a scout thread tests blooms
        // from the other end of the scan's order, toward the scan's thread (`bloom_test`).
        let mut scout_started = !prunes || workers == 1;
        let mut ruled_out = 0usize;
        for j in 0..order.len() {
            let wanted = taken + 1 + taken.clamp(workers, 16 * workers);
            while queue_at.len() < order.len() && (queue_at.len() <= j || queued < wanted) {
                let k = queue_at.len();
                tested_up_to.store(k, Ordering::Relaxed);
                let (_, i, part, block) = order.get(k);
                if verdict_of(part, block) == BLOOM_RULES_OUT {
                    // Its bloom ruled it out: its candidate need not be read.
                    ruled_out += 1;
                    queue_at.push(None);
                    continue;
                }
                let c = &candidates[i as usize];
                // Counted before its bloom is read (a cold bloom page takes a while to read).
                if !helpers_started && c.needs_decoding(parts, &caches.blocks) {
                    to_decompress += 1;
                    if to_decompress >= 2 {
                        helpers_started = true;
                        for _ in 1..workers {
                            scope.spawn(|| ahead.work(&process));
                        }
                    }
                }
                let keep = !prunes || bloom_test(part, block) != BLOOM_RULES_OUT;
                ruled_out += usize::from(!keep);
                queue_at.push(keep.then(|| ahead.push(i as usize)));
                queued += usize::from(keep);
                if !scout_started && k >= SCOUT_AFTER && ruled_out * 20 >= k * 19 {
                    scout_started = true;
                    // The scout goes through the blocks in scan order from the end: the whole
                    // order is sorted now, and the scout takes its own list of them.
                    let blocks: Vec<(u32, u32)> =
                        order.all().iter().map(|&(_, _, part, block)| (part, block)).collect();
                    let (tested_up_to, page_over) = (&tested_up_to, &page_over);
                    scope.spawn(move || {
                        for (k, &(part, block)) in blocks.iter().enumerate().rev() {
                            if page_over.load(Ordering::Relaxed) || k <= tested_up_to.load(Ordering::Relaxed) {
                                return;
                            }
                            if verdict_of(part, block) == 0 {
                                bloom_test(part, block);
                            }
                        }
                    });
                    // Unit tests scan in microseconds: give the scout time to test what it would
                    // in a real scan, so that its verdicts are the ones used.
                    if cfg!(test) {
                        std::thread::sleep(std::time::Duration::from_millis(50));
                    }
                }
            }
            let ((collected, left), raw) = match queue_at[j] {
                Some(at) => {
                    taken += 1;
                    ahead.take(at, &process)?
                }
                None => {
                    pruned += 1;
                    ((Vec::new(), None), 0)
                }
            };
            scanned += raw;
            match left {
                Some(k) => {
                    cap_limit = Some(match cap_limit {
                        Some(prev) if merge.before(prev, k) => prev,
                        _ => k,
                    });
                }
                // Every match of this block is in the merge (or none: a pruned block). The state
                // the page may leave is made of these only if the page ends with a resume bound.
                None if keep_state => reached.push(order.get(j).1),
                None => {}
            }
            merge.push_run(collected);
            // Everything before the watermark is final: no unvisited block can hold such a key.
            let next = (j + 1 < order.len()).then(|| order.get(j + 1).0);
            let mut limit = next;
            if let Some(cap) = cap_limit {
                limit = Some(match limit {
                    Some(w) if merge.before(w, cap) => w,
                    _ => cap,
                });
            }
            if let Some(refused) = merge.emit(limit, &mut page) {
                return finish(page.events, Some(resume_at(refused)), merge, consumed, reached, scanned, pruned);
            }
            caps.update(keep_state, &merge, &page, req);
            if let Some(l) = limit {
                let page_full = page.events.len() >= req.limit;
                let over_budget = scanned >= req.scan_budget_bytes && next.is_some();
                let progress = if forward { l > bound_key } else { l.successor() < bound_key };
                if (page_full || over_budget || (next.is_none() && cap_limit.is_some())) && progress {
                    // Stop here; resume exactly where emission stopped.
                    return finish(page.events, Some(resume_at(l)), merge, consumed, reached, scanned, pruned);
                }
            }
        }
        // Every block was visited; what is left in the merge came from a previous page's state
        // (when no block remained to read) and is all final.
        if let Some(refused) = merge.emit(cap_limit, &mut page) {
            return finish(page.events, Some(resume_at(refused)), merge, consumed, reached, scanned, pruned);
        }
        // Events left behind by a capped block (not in the merge) start the next page.
        finish(page.events, cap_limit.map(resume_at), merge, consumed, reached, scanned, pruned)
    })
}

#[cfg(test)]
mod tests {
    use super::{BlockSource, Candidate, ScanOrder, FIRST_SORTED_STRETCH};
    use crate::testsuite::{now_ms, request, scan_all};
    use crate::{BlockSplit, Direction, EmbeddedStore, EventKey, LogStore, StoreConfig};
    use proptest::prelude::*;
    use std::sync::atomic::Ordering;

    proptest! {
        /// Read a stretch at a time, with the whole order asked for at any point, the scan order
        /// is the candidates sorted by key (ascending forward, descending backward).
        #[test]
        fn the_scan_order_sorted_a_stretch_at_a_time_is_the_sorted_order(
            keys in proptest::collection::btree_set((0i64..5000, 0u64..4), 0..3 * FIRST_SORTED_STRETCH + 50),
            shuffle in any::<u64>(),
            forward: bool,
            whole_at in 0usize..4 * FIRST_SORTED_STRETCH,
        ) {
            let mut keys: Vec<EventKey> = keys.into_iter().map(|(timestamp, seq)| EventKey { timestamp, seq }).collect();
            // A fixed shuffle (the candidates come in part and stream order, not key order).
            let mut x = shuffle | 1;
            for i in (1..keys.len()).rev() {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                keys.swap(i, (x % (i as u64 + 1)) as usize);
            }
            let candidates: Vec<Candidate> = keys
                .iter()
                .enumerate()
                .map(|(i, &k)| Candidate { min: k, max: k, source: BlockSource::Part(7, i as u32) })
                .collect();
            let mut expected = keys.clone();
            expected.sort_unstable();
            if !forward {
                expected.reverse();
            }
            let mut order = ScanOrder::new(&candidates, forward);
            let mut read = Vec::new();
            for k in 0..order.len() {
                if k == whole_at {
                    let all: Vec<EventKey> = order.all().iter().map(|e| e.0).collect();
                    prop_assert_eq!(&all, &expected);
                }
                let (key, i, part, block) = order.get(k);
                prop_assert_eq!((key, part, block), (keys[i as usize], 7, i));
                read.push(key);
            }
            prop_assert_eq!(read, expected);
        }
    }

    /// A rare word over thousands of blocks whose blooms fill many pages (4 KiB pages in unit
    /// tests), with each stream's hours one after the other: the scan rules out nearly all and
    /// starts its scout, which tests the last streams' blooms. Every event with the word is found,
    /// whichever thread tested its bloom, in both directions and page by page.
    #[test]
    fn a_rare_word_over_thousands_of_blocks_is_found_beside_the_scout() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = StoreConfig::new(dir.path());
        config.block_split = BlockSplit { min_raw_bytes: 256, min_span_ms: 1 };
        let store = EmbeddedStore::open(config).unwrap();
        crate::testsuite::group(&store, "g");
        let t = now_ms() - 3_600_000;
        let needles = [(0, 0), (300, 17), (599, 29)];
        for s in 0..600i64 {
            let name = format!("s{s}");
            store.create_stream("g", &name, 0).unwrap();
            let events = (0..30i64)
                .map(|i| {
                    let word = if needles.contains(&(s, i)) { "NEEDLE" } else { "hay" };
                    (t + s * 1000 + i, format!("stream {s} line {i} {word} {}", "x".repeat(90)))
                })
                .collect();
            store.append("g", &name, events, t).unwrap().blocking_recv().unwrap().unwrap();
        }
        store.flush().unwrap();
        let is_needle = |m: &str| m.contains(" NEEDLE ");
        let required = vec!["NEEDLE".to_string()];
        let expected: Vec<String> =
            needles.iter().map(|(s, i)| format!("stream {s} line {i} NEEDLE {}", "x".repeat(90))).collect();
        for (direction, limit) in [(Direction::Forward, 10_000), (Direction::Backward, 10_000), (Direction::Forward, 1)]
        {
            let pruned_before = store.stats().blocks_pruned.load(Ordering::Relaxed);
            let mut req = request("g", direction, None, limit);
            req.predicate = Some(&is_needle);
            req.required_tokens = &required;
            let found: Vec<String> = scan_all(&store, req).into_iter().map(|e| e.message).collect();
            assert_eq!(found, expected, "{direction:?} limit {limit}");
            let pruned = store.stats().blocks_pruned.load(Ordering::Relaxed) - pruned_before;
            assert!(pruned > 5000, "{pruned} blocks pruned");
        }
    }
}
