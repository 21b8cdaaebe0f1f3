//! [`Latest`]: a newest-wins mailbox. A producer never waits and never
//! queues without bound: when the mailbox is full, the **oldest** item is
//! dropped to make room, so a slow consumer always gets the freshest
//! frames. Live outputs (MJPEG encoder, channels to front ends) use it.
//!
//! ```
//! use camshow_media::latest::Latest;
//! let m = Latest::new();
//! assert!(!m.put(1));
//! assert!(m.put(2), "1 was replaced before anyone took it");
//! assert_eq!(m.take(), Some(2));
//! assert_eq!(m.take(), None);
//! ```

use std::collections::VecDeque;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

#[derive(Debug)]
struct State<T> {
    items: VecDeque<T>,
    closed: bool,
    dropped: u64,
}

/// A bounded mailbox that keeps the newest `capacity` items.
#[derive(Debug)]
pub struct Latest<T> {
    state: Mutex<State<T>>,
    cond: Condvar,
    capacity: usize,
}

impl<T> Default for Latest<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Latest<T> {
    /// A mailbox holding one item (the newest).
    pub fn new() -> Self {
        Self::with_capacity(1)
    }

    /// A mailbox holding the newest `capacity` items (at least one).
    pub fn with_capacity(capacity: usize) -> Self {
        Self {
            state: Mutex::new(State {
                items: VecDeque::new(),
                closed: false,
                dropped: 0,
            }),
            cond: Condvar::new(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Puts an item in; when full, the oldest waiting item is dropped (and
    /// `true` returned). Never blocks.
    pub fn put(&self, item: T) -> bool {
        let mut s = self.lock();
        let dropped = s.items.len() >= self.capacity;
        if dropped {
            s.items.pop_front();
            s.dropped += 1;
        }
        s.items.push_back(item);
        drop(s);
        self.cond.notify_all();
        dropped
    }

    /// The oldest waiting item, if any.
    pub fn take(&self) -> Option<T> {
        self.lock().items.pop_front()
    }

    /// The oldest waiting item, waiting up to `timeout` for one.
    pub fn wait(&self, timeout: Duration) -> Option<T> {
        let s = self.lock();
        let (mut s, _) = self
            .cond
            .wait_timeout_while(s, timeout, |s| s.items.is_empty() && !s.closed)
            .unwrap_or_else(PoisonError::into_inner);
        s.items.pop_front()
    }

    /// The next item, waiting as long as it takes; `None` once the mailbox
    /// is closed and empty.
    pub fn recv(&self) -> Option<T> {
        let s = self.lock();
        let mut s = self
            .cond
            .wait_while(s, |s| s.items.is_empty() && !s.closed)
            .unwrap_or_else(PoisonError::into_inner);
        s.items.pop_front()
    }

    /// Every item until the mailbox is closed.
    pub fn iter(&self) -> impl Iterator<Item = T> + '_ {
        std::iter::from_fn(|| self.recv())
    }

    /// Closes the mailbox: waiting receivers wake up; items already in stay readable.
    pub fn close(&self) {
        self.lock().closed = true;
        self.cond.notify_all();
    }

    /// Whether [`Latest::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// How many items were dropped to make room for newer ones.
    pub fn dropped(&self) -> u64 {
        self.lock().dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn keeps_the_newest_items_and_drops_the_oldest() {
        let m = Latest::with_capacity(3);
        for i in 0..10 {
            m.put(i);
        }
        assert_eq!(m.dropped(), 7);
        assert_eq!(
            (m.take(), m.take(), m.take(), m.take()),
            (Some(7), Some(8), Some(9), None)
        );
    }

    #[test]
    fn receivers_wake_on_items_and_on_close() {
        let m = Arc::new(Latest::new());
        let r = {
            let m = Arc::clone(&m);
            std::thread::spawn(move || m.iter().collect::<Vec<u32>>())
        };
        std::thread::sleep(Duration::from_millis(20));
        m.put(5);
        std::thread::sleep(Duration::from_millis(20));
        m.close();
        assert_eq!(r.join().unwrap(), [5]);
        assert!(m.is_closed());
        assert_eq!(m.wait(Duration::from_millis(1)), None);
    }
}
