//! `EventBatch`: the events of one append, as PutLogEvents carries them: a timestamp and a message
//! each, the messages one after the other in one buffer. The write path (decode, validate, WAL,
//! memtable) then allocates per batch, never per event: a `String` per event cost one allocation
//! on a decoder thread and one free on the writer thread, which is serial.

use std::ops::Range;

/// Timestamps and messages, in order. Built by [`EventBatch::push`], from `(timestamp, message)`
/// pairs, or by a decoder that writes the messages into one buffer ([`EventBatch::from_parts`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventBatch {
    timestamps: Vec<i64>,
    /// Where each message ends in `text`; it starts where the one before ends.
    ends: Vec<usize>,
    text: String,
}

/// Why [`EventBatch::from_parts`] refused its parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchPartsError {
    /// Not as many message ends as timestamps.
    CountMismatch,
    /// An end goes back, or past the text.
    BadEnd,
    /// The text is not UTF-8, or a message ends inside a character.
    NotUtf8,
}

impl EventBatch {
    pub fn with_capacity(events: usize, message_bytes: usize) -> EventBatch {
        EventBatch {
            timestamps: Vec::with_capacity(events),
            ends: Vec::with_capacity(events),
            text: String::with_capacity(message_bytes),
        }
    }

    /// A batch from a decoder's parts: each event's timestamp, where each message ends in `text`
    /// (non-decreasing), and the messages one after the other. Checked: every message must be
    /// UTF-8 on its own, not only the text as a whole.
    pub fn from_parts(timestamps: Vec<i64>, ends: Vec<usize>, text: Vec<u8>) -> Result<EventBatch, BatchPartsError> {
        if timestamps.len() != ends.len() {
            return Err(BatchPartsError::CountMismatch);
        }
        let mut start = 0;
        for &end in &ends {
            if end < start || end > text.len() {
                return Err(BatchPartsError::BadEnd);
            }
            start = end;
        }
        if ends.last().map_or(!text.is_empty(), |&last| last != text.len()) {
            return Err(BatchPartsError::BadEnd);
        }
        let text = String::from_utf8(text).map_err(|_| BatchPartsError::NotUtf8)?;
        // Valid as a whole, but two halves of one character may be two messages.
        if !ends.iter().all(|&end| text.is_char_boundary(end)) {
            return Err(BatchPartsError::NotUtf8);
        }
        Ok(EventBatch { timestamps, ends, text })
    }

    pub fn push(&mut self, timestamp: i64, message: &str) {
        self.text.push_str(message);
        self.timestamps.push(timestamp);
        self.ends.push(self.text.len());
    }

    pub fn len(&self) -> usize {
        self.timestamps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.timestamps.is_empty()
    }

    /// Bytes of all the messages together.
    pub fn message_bytes(&self) -> usize {
        self.text.len()
    }

    /// The timestamps, in order.
    pub fn timestamps(&self) -> &[i64] {
        &self.timestamps
    }

    /// Event `i`'s timestamp and message. Panics past the end, as indexing does.
    pub fn get(&self, i: usize) -> (i64, &str) {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        (self.timestamps[i], &self.text[start..self.ends[i]])
    }

    /// Each event's timestamp and message, in order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (i64, &str)> + Clone + '_ {
        (0..self.len()).map(|i| self.get(i))
    }

    /// Keeps only the events in `range` (which must be within the batch).
    pub fn keep(&mut self, range: Range<usize>) {
        assert!(range.start <= range.end && range.end <= self.len(), "{range:?} is not within {} events", self.len());
        if range == (0..self.len()) {
            return;
        }
        let kept: EventBatch = self.iter().skip(range.start).take(range.len()).collect();
        *self = kept;
    }
}

impl<S: AsRef<str>> FromIterator<(i64, S)> for EventBatch {
    fn from_iter<I: IntoIterator<Item = (i64, S)>>(events: I) -> EventBatch {
        let mut batch = EventBatch::default();
        for (timestamp, message) in events {
            batch.push(timestamp, message.as_ref());
        }
        batch
    }
}

impl From<Vec<(i64, String)>> for EventBatch {
    fn from(events: Vec<(i64, String)>) -> EventBatch {
        let bytes = events.iter().map(|(_, m)| m.len()).sum();
        let mut batch = EventBatch::with_capacity(events.len(), bytes);
        for (timestamp, message) in &events {
            batch.push(*timestamp, message);
        }
        batch
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parts_are_checked_message_by_message() {
        let ok = EventBatch::from_parts(vec![1, 2, 3], vec![2, 2, 5], b"ab\xc3\xa9c".to_vec()).unwrap();
        assert_eq!(ok.iter().collect::<Vec<_>>(), vec![(1, "ab"), (2, ""), (3, "éc")]);
        // "é" split between two messages: the text is UTF-8, the messages are not.
        assert_eq!(
            EventBatch::from_parts(vec![1, 2], vec![3, 5], b"ab\xc3\xa9c".to_vec()),
            Err(BatchPartsError::NotUtf8)
        );
        assert_eq!(EventBatch::from_parts(vec![1], vec![2], b"a\xff".to_vec()), Err(BatchPartsError::NotUtf8));
        assert_eq!(EventBatch::from_parts(vec![1, 2], vec![2], b"ab".to_vec()), Err(BatchPartsError::CountMismatch));
        assert_eq!(EventBatch::from_parts(vec![1, 2], vec![2, 1], b"ab".to_vec()), Err(BatchPartsError::BadEnd));
        assert_eq!(EventBatch::from_parts(vec![1], vec![3], b"ab".to_vec()), Err(BatchPartsError::BadEnd));
        assert_eq!(EventBatch::from_parts(vec![1], vec![1], b"ab".to_vec()), Err(BatchPartsError::BadEnd));
        assert_eq!(EventBatch::from_parts(vec![], vec![], b"ab".to_vec()), Err(BatchPartsError::BadEnd));
        assert_eq!(EventBatch::from_parts(vec![], vec![], vec![]), Ok(EventBatch::default()));
    }

    proptest! {
        #[test]
        fn a_batch_holds_what_was_pushed(
            events in proptest::collection::vec((any::<i64>(), "\\PC{0,12}"), 0..40),
            a in 0usize..41,
            b in 0usize..41,
        ) {
            let batch: EventBatch = events.iter().map(|(t, m)| (*t, m.as_str())).collect();
            prop_assert_eq!(batch.len(), events.len());
            prop_assert_eq!(batch.message_bytes(), events.iter().map(|(_, m)| m.len()).sum::<usize>());
            let got: Vec<(i64, String)> = batch.iter().map(|(t, m)| (t, m.to_owned())).collect();
            prop_assert_eq!(&got, &events);
            for (i, (t, m)) in events.iter().enumerate() {
                prop_assert_eq!(batch.get(i), (*t, m.as_str()));
            }
            prop_assert_eq!(&EventBatch::from(events.clone()), &batch);
            let starts: Vec<usize> = batch.iter().scan(0, |end, (_, m)| { *end += m.len(); Some(*end) }).collect();
            let parts = EventBatch::from_parts(
                batch.timestamps().to_vec(), starts, batch.iter().flat_map(|(_, m)| m.bytes()).collect());
            prop_assert_eq!(parts.as_ref(), Ok(&batch));

            let (lo, hi) = (a.min(b).min(events.len()), a.max(b).min(events.len()));
            let mut kept = batch.clone();
            kept.keep(lo..hi);
            prop_assert_eq!(kept, events[lo..hi].iter().map(|(t, m)| (*t, m.as_str())).collect::<EventBatch>());
        }
    }
}
