//! Which messages of a block might match a pattern, found by searching all of the block's message
//! bytes at once instead of message by message.
//!
//! A store keeps a block's messages concatenated in one buffer, with each one's end offset
//! ([`MessageRun`]). [`crate::FilterPattern::candidates`] marks the messages that hold what every
//! match holds: the required literal of a terms pattern, or the literal tree of a JSON pattern's
//! prefilter (`json_prefilter.rs`: quoted keys, a number's spellings). The store then gives only
//! the marked messages to `matches`.
//!
//! * A literal, or a set of alternatives of which one is enough (a number's spellings, an `||` of
//!   literals), costs one pass over the buffer (memmem, or Aho-Corasick for alternatives). A hit
//!   marks its message and the pass goes on at the next message.
//! * `&&` narrows in turn, a number's spellings before keys (keys are in nearly every JSON
//!   message, numbers are rarer); once few messages are left, the rest are searched one by one.
//! * JSON only: a message with a `\` may spell a key or a number with escapes, so it is always
//!   marked (the prefilter admits it too).
//!
//! Sound: a message left unmarked is one `matches` rejects. `candidates_tests` checks that against
//! `matches` on random blocks and patterns, and the whole-buffer search against a search per message.

use aho_corasick::{AhoCorasick, MatchKind};
use memchr::memmem::Finder;

use crate::json_prefilter::{number_spellings, Need};

/// Messages concatenated in one buffer: message `j` is `data[ends[j - 1]..ends[j]]` (from 0 for
/// the first).
#[derive(Debug, Clone, Copy)]
pub(crate) struct MessageRun<'a> {
    data: &'a [u8],
    ends: &'a [u32],
}

impl<'a> MessageRun<'a> {
    /// `None` when the offsets do not describe `data` (decreasing, or past its end).
    pub(crate) fn new(data: &'a [u8], ends: &'a [u32]) -> Option<Self> {
        let ascending = ends.windows(2).all(|w| w[0] <= w[1]);
        let inside = ends.last().is_none_or(|&end| end as usize <= data.len());
        (ascending && inside).then_some(MessageRun { data, ends })
    }

    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    fn start(&self, j: usize) -> usize {
        if j == 0 {
            0
        } else {
            self.ends[j - 1] as usize
        }
    }

    fn message(&self, j: usize) -> &'a [u8] {
        &self.data[self.start(j)..self.ends[j] as usize]
    }

    /// Which messages hold a match of `search` inside them, in one pass over the buffer.
    pub(crate) fn holding(&self, search: &Search) -> Vec<bool> {
        let mut holds = vec![false; self.len()];
        let mut from = 0usize;
        while let Some((start, end)) = search.find(&self.data[from..]) {
            let (start, end) = (from + start, from + end);
            let j = self.ends.partition_point(|&e| e as usize <= start);
            let Some(&message_end) = self.ends.get(j) else { break };
            let message_end = message_end as usize;
            // A match that runs into the next message may hide another alternative that starts
            // at the same place and ends inside this one.
            holds[j] = end <= message_end || search.find(&self.data[start..message_end]).is_some();
            // This message is decided; the next one starts at `message_end` (past `start`).
            from = message_end;
        }
        holds
    }
}

/// One literal, or alternatives of which one is enough.
#[derive(Debug, Clone)]
pub(crate) enum Search {
    One(Finder<'static>),
    /// Teddy (SIMD), where the CPU has it.
    Packed(aho_corasick::packed::Searcher),
    AnyOf(AhoCorasick),
}

impl Search {
    /// `None` when nothing can be required (an empty literal is in every message).
    pub(crate) fn new(literals: &[String]) -> Option<Search> {
        if literals.is_empty() || literals.iter().any(String::is_empty) {
            return None;
        }
        if let [one] = literals {
            return Some(Search::One(Finder::new(one.as_bytes()).into_owned()));
        }
        if let Some(packed) = aho_corasick::packed::Searcher::new(literals) {
            return Some(Search::Packed(packed));
        }
        AhoCorasick::builder().match_kind(MatchKind::LeftmostFirst).build(literals).ok().map(Search::AnyOf)
    }

    /// The leftmost match, as (start, end).
    fn find(&self, haystack: &[u8]) -> Option<(usize, usize)> {
        match self {
            Search::One(finder) => finder.find(haystack).map(|i| (i, i + finder.needle().len())),
            Search::Packed(packed) => packed.find(haystack).map(|m| (m.start(), m.end())),
            Search::AnyOf(ac) => ac.find(haystack).map(|m| (m.start(), m.end())),
        }
    }
}

#[derive(Debug, Clone)]
enum Tree {
    Nothing,
    Search(Box<Search>),
    All(Vec<Tree>),
    Any(Vec<Tree>),
}

impl Tree {
    fn compile(need: &Need) -> Tree {
        match need {
            Need::Nothing => Tree::Nothing,
            Need::Any(parts) if parts.iter().all(|p| literals_of(p).is_some()) => {
                let literals: Vec<String> = parts.iter().filter_map(literals_of).flatten().collect();
                Tree::search(&literals)
            }
            Need::Literal(_) | Need::Number(_) => Tree::search(&literals_of(need).unwrap_or_default()),
            Need::Any(parts) => Tree::Any(parts.iter().map(Tree::compile).collect()),
            Need::All(parts) => {
                let mut parts: Vec<&Need> = parts.iter().collect();
                // Numbers of two digits or more first: rarer than the keys beside them.
                parts.sort_by_key(|p| !matches!(p, Need::Number(d) if d.len() >= 2));
                Tree::All(parts.into_iter().map(Tree::compile).collect())
            }
        }
    }

    fn search(literals: &[String]) -> Tree {
        let mut unique: Vec<String> = Vec::with_capacity(literals.len());
        for l in literals {
            if !unique.contains(l) {
                unique.push(l.clone());
            }
        }
        Search::new(&unique).map_or(Tree::Nothing, |s| Tree::Search(Box::new(s)))
    }
}

/// The literals of which one is enough for a leaf `need`, `None` for a tree.
fn literals_of(need: &Need) -> Option<Vec<String>> {
    match need {
        Need::Literal(l) => Some(vec![l.clone()]),
        Need::Number(digits) => Some(number_spellings(digits)),
        Need::Nothing | Need::All(_) | Need::Any(_) => None,
    }
}

/// Below one kept message in this many, the rest are searched one by one.
const SPARSE: usize = 16;

#[derive(Clone)]
struct Marks {
    keep: Vec<bool>,
    count: usize,
}

impl Marks {
    fn retain(&mut self, j: usize, holds: bool) {
        if self.keep[j] && !holds {
            self.keep[j] = false;
            self.count -= 1;
        }
    }
}

fn narrow(tree: &Tree, run: &MessageRun<'_>, marks: &mut Marks) {
    if marks.count == 0 {
        return;
    }
    match tree {
        Tree::Nothing => {}
        Tree::Search(search) if marks.count * SPARSE <= run.len() => {
            for j in 0..run.len() {
                if marks.keep[j] {
                    marks.retain(j, search.find(run.message(j)).is_some());
                }
            }
        }
        Tree::Search(search) => {
            for (j, holds) in run.holding(search).into_iter().enumerate() {
                marks.retain(j, holds);
            }
        }
        Tree::All(parts) => parts.iter().for_each(|p| narrow(p, run, marks)),
        Tree::Any(parts) => {
            let mut union = Marks { keep: vec![false; run.len()], count: 0 };
            for part in parts {
                let mut mine = marks.clone();
                narrow(part, run, &mut mine);
                for (j, kept) in mine.keep.iter().enumerate() {
                    if *kept && !union.keep[j] {
                        union.keep[j] = true;
                        union.count += 1;
                    }
                }
                if union.count == marks.count {
                    break;
                }
            }
            *marks = union;
        }
    }
}

/// What every match of a pattern holds, compiled for whole-buffer search.
#[derive(Debug, Clone)]
pub(crate) struct Candidates {
    tree: Tree,
    /// Messages with a `\` are marked whatever they hold (JSON: escapes spell keys differently).
    unless_escaped: Option<Search>,
}

impl Candidates {
    pub(crate) fn nothing() -> Candidates {
        Candidates { tree: Tree::Nothing, unless_escaped: None }
    }

    /// Messages must hold `literal`.
    pub(crate) fn literal(literal: &str) -> Candidates {
        Candidates { tree: Tree::search(&[literal.to_string()]), unless_escaped: None }
    }

    /// Messages must satisfy a JSON prefilter's `need`, unless they hold a `\`.
    pub(crate) fn json(need: &Need) -> Candidates {
        Candidates { tree: Tree::compile(need), unless_escaped: Search::new(&["\\".to_string()]) }
    }

    /// Marks the messages that might match; `None` when none can be ruled out.
    pub(crate) fn mark(&self, run: &MessageRun<'_>) -> Option<Vec<bool>> {
        if matches!(self.tree, Tree::Nothing) {
            return None;
        }
        let mut marks = Marks { keep: vec![true; run.len()], count: run.len() };
        narrow(&self.tree, run, &mut marks);
        if let Some(backslash) = &self.unless_escaped {
            if marks.count < run.len() {
                let escaped = run.holding(backslash);
                for (kept, escaped) in marks.keep.iter_mut().zip(escaped) {
                    *kept |= escaped;
                }
            }
        }
        Some(marks.keep)
    }
}
