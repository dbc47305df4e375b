//! `ReadAhead`: hands a scan's blocks, in order, to the threads that decode them, and gives the
//! results back in that order. Threads take the next queued block as soon as they are free (no
//! batch waits for its slowest block); the consumer queues blocks only a bounded distance ahead of
//! the one it needs, so a page that fills early has decoded at most that far. The consumer's own
//! thread works too: while the result it needs is not ready, it decodes the next queued block
//! instead of waiting.

use parking_lot::{Condvar, Mutex};

pub(crate) struct ReadAhead<T> {
    state: Mutex<State<T>>,
    changed: Condvar,
}

struct State<T> {
    /// What to decode, in the consumer's order (the scan: candidate numbers).
    queue: Vec<usize>,
    /// The next queue position to claim.
    next: usize,
    /// Results not yet taken, by queue position.
    done: Vec<Option<T>>,
    /// No more items are to be claimed (the consumer is finished, or a worker panicked).
    stopped: bool,
    /// A worker panicked: the result it owed will never come.
    panicked: bool,
}

/// Marks the read-ahead as broken if a worker unwinds while it owes a result.
struct OwedResult<'a, T> {
    ahead: &'a ReadAhead<T>,
    settled: bool,
}

impl<T> Drop for OwedResult<'_, T> {
    fn drop(&mut self) {
        if !self.settled {
            let mut state = self.ahead.state.lock();
            state.stopped = true;
            state.panicked = true;
            self.ahead.changed.notify_all();
        }
    }
}

impl<T> ReadAhead<T> {
    pub fn new() -> ReadAhead<T> {
        let state = State { queue: Vec::new(), next: 0, done: Vec::new(), stopped: false, panicked: false };
        ReadAhead { state: Mutex::new(state), changed: Condvar::new() }
    }

    /// Queues `item` to be decoded; returns its queue position (for `take`).
    pub fn push(&self, item: usize) -> usize {
        let mut state = self.state.lock();
        state.queue.push(item);
        state.done.push(None);
        self.changed.notify_all();
        state.queue.len() - 1
    }

    /// Ends the read-ahead: workers finish the item they hold and return.
    pub fn stop(&self) {
        self.state.lock().stopped = true;
        self.changed.notify_all();
    }

    /// Ends the read-ahead and gives back the results decoded and not taken, with their items,
    /// in queue order (an item being decoded now is not waited for, and not given).
    pub fn stop_and_take_ready(&self) -> Vec<(usize, T)> {
        self.stop();
        let mut state = self.state.lock();
        let state = &mut *state;
        state.done.iter_mut().zip(&state.queue).filter_map(|(done, &item)| done.take().map(|r| (item, r))).collect()
    }

    /// A worker's loop: decodes queued items, waiting for more when none is left, until the
    /// read-ahead is stopped.
    pub fn work(&self, decode: &(dyn Fn(usize) -> T + Sync)) {
        let mut state = self.state.lock();
        loop {
            if state.stopped {
                return;
            }
            if state.next >= state.queue.len() {
                self.changed.wait(&mut state);
                continue;
            }
            let at = state.next;
            let item = state.queue[at];
            state.next += 1;
            drop(state);
            let mut owed = OwedResult { ahead: self, settled: false };
            let result = decode(item);
            owed.settled = true;
            state = self.state.lock();
            state.done[at] = Some(result);
            self.changed.notify_all();
        }
    }

    /// The result of the item queued at `at`. While it is not ready, this thread decodes the next
    /// unclaimed item (possibly that one) rather than wait.
    pub fn take(&self, at: usize, decode: &(dyn Fn(usize) -> T + Sync)) -> T {
        let mut state = self.state.lock();
        assert!(at < state.queue.len(), "queue position {at} taken before it was queued");
        loop {
            if let Some(result) = state.done[at].take() {
                return result;
            }
            assert!(!state.panicked, "a scan worker panicked");
            if state.next < state.queue.len() {
                let claimed = state.next;
                let item = state.queue[claimed];
                state.next += 1;
                drop(state);
                let result = decode(item);
                if claimed == at {
                    return result;
                }
                state = self.state.lock();
                state.done[claimed] = Some(result);
            } else {
                self.changed.wait(&mut state);
            }
        }
    }
}

/// Stops the read-ahead when dropped, however the consumer ends.
pub(crate) struct StopOnDrop<'a, T>(pub &'a ReadAhead<T>);

impl<T> Drop for StopOnDrop<'_, T> {
    fn drop(&mut self) {
        self.0.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[test]
    fn results_come_back_in_order_whoever_decodes_them() {
        let ahead = ReadAhead::new();
        let decoded = AtomicUsize::new(0);
        let decode = |item: usize| {
            decoded.fetch_add(1, Ordering::Relaxed);
            // Uneven work, so that threads overtake each other.
            std::thread::sleep(std::time::Duration::from_micros((item % 7) as u64 * 50));
            item * 3
        };
        std::thread::scope(|scope| {
            let _stop = StopOnDrop(&ahead);
            for _ in 0..3 {
                scope.spawn(|| ahead.work(&decode));
            }
            // Every other number is queued, up to five ahead of the one taken.
            let items: Vec<usize> = (0..400).step_by(2).collect();
            let mut queued = 0;
            for (at, item) in items.iter().enumerate() {
                while queued < (at + 5).min(items.len()) {
                    assert_eq!(ahead.push(items[queued]), queued, "push returns the queue position");
                    queued += 1;
                }
                assert_eq!(ahead.take(at, &decode), item * 3);
            }
        });
        assert_eq!(decoded.load(Ordering::Relaxed), 200, "every item decoded exactly once");
    }

    #[test]
    fn a_worker_waits_for_more_items_until_stopped() {
        let ahead = ReadAhead::new();
        let highest = AtomicUsize::new(0);
        let decode = |item: usize| {
            highest.fetch_max(item, Ordering::Relaxed);
            item
        };
        std::thread::scope(|scope| {
            scope.spawn(|| ahead.work(&decode));
            for item in 0..10 {
                ahead.push(item);
            }
            for at in 0..4 {
                assert_eq!(ahead.take(at, &decode), at);
            }
            // Let the worker drain the queue and wait for more, then end early.
            std::thread::sleep(std::time::Duration::from_millis(20));
            ahead.stop();
        });
        assert_eq!(highest.load(Ordering::Relaxed), 9);
    }

    #[test]
    fn results_decoded_ahead_and_not_taken_are_given_back_once() {
        let ahead = ReadAhead::new();
        for item in [10, 11, 12, 13, 14] {
            ahead.push(item);
        }
        let decode = |item: usize| item * 2;
        assert_eq!(ahead.take(0, &decode), 20);
        std::thread::scope(|scope| {
            scope.spawn(|| ahead.work(&decode));
            // The worker decodes the rest, then waits for more.
            while ahead.state.lock().done.iter().filter(|d| d.is_some()).count() < 4 {
                std::thread::yield_now();
            }
            assert_eq!(ahead.stop_and_take_ready(), vec![(11, 22), (12, 24), (13, 26), (14, 28)]);
        });
        assert!(ahead.stop_and_take_ready().is_empty());
    }

    #[test]
    fn the_consumer_alone_decodes_everything() {
        let ahead = ReadAhead::new();
        for item in 0..5 {
            ahead.push(item);
        }
        let got: Vec<usize> = (0..5).map(|at| ahead.take(at, &|item| item + 1)).collect();
        assert_eq!(got, vec![1, 2, 3, 4, 5]);
    }

    #[test]
    #[should_panic(expected = "a scan worker panicked")]
    fn a_worker_that_panics_does_not_leave_the_consumer_waiting() {
        let ahead = ReadAhead::new();
        let decode = |item: usize| {
            if item == 0 {
                panic!("worker failure");
            }
            item
        };
        std::thread::scope(|scope| {
            let worker = scope.spawn(|| ahead.work(&decode));
            // Only the worker can claim item 0 before the consumer asks for it.
            ahead.push(0);
            let _ = worker.join();
            ahead.take(0, &decode);
        });
    }
}
