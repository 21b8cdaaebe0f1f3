//! Pictures handed to the webview without temporary files: the engine
//! thread puts encoded frames under a key, the window's asset handler
//! (`/frames/<key>`) serves the newest one. A live `<img>` asks again from
//! its `onload`, so it pulls frames at the rate it can draw them.

use std::collections::HashMap;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// One stored picture.
#[derive(Debug, Clone)]
pub struct Picture {
    /// Increases with every picture stored (under any key).
    pub version: u64,
    /// The encoded bytes.
    pub bytes: Arc<Vec<u8>>,
    /// Its MIME type.
    pub mime: &'static str,
}

#[derive(Default)]
struct Inner {
    next: u64,
    pictures: HashMap<String, Picture>,
    /// The version last served per key (for [`FrameStore::next_after_served`]).
    served: HashMap<String, u64>,
}

/// The newest picture per key.
#[derive(Default)]
pub struct FrameStore {
    inner: Mutex<Inner>,
    changed: Condvar,
}

impl FrameStore {
    /// Stores `bytes` under `key`, replacing the picture there.
    pub fn put(&self, key: &str, bytes: Vec<u8>, mime: &'static str) {
        let mut g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        g.next += 1;
        let version = g.next;
        g.pictures.insert(
            key.to_string(),
            Picture {
                version,
                bytes: Arc::new(bytes),
                mime,
            },
        );
        drop(g);
        self.changed.notify_all();
    }

    /// The picture under `key`.
    pub fn get(&self, key: &str) -> Option<Picture> {
        let g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        g.pictures.get(key).cloned()
    }

    /// The first picture under `key` newer than the one served last,
    /// waiting up to `wait` for it; the current one when none comes.
    pub fn next_after_served(&self, key: &str, wait: Duration) -> Option<Picture> {
        let deadline = Instant::now() + wait;
        let mut g = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            let served = g.served.get(key).copied().unwrap_or(0);
            let newest = g.pictures.get(key).cloned();
            let fresh = newest.as_ref().is_some_and(|p| p.version > served);
            let left = deadline.saturating_duration_since(Instant::now());
            if fresh || left.is_zero() {
                if let Some(p) = &newest {
                    g.served.insert(key.to_string(), p.version);
                }
                return newest;
            }
            g = self
                .changed
                .wait_timeout(g, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn newest_picture_wins_and_a_waiting_reader_gets_the_next_one() {
        let store = Arc::new(FrameStore::default());
        assert!(store.get("live").is_none());
        store.put("live", vec![1], "image/jpeg");
        store.put("live", vec![2], "image/jpeg");
        assert_eq!(*store.get("live").unwrap().bytes, vec![2]);
        // Served once: the next read waits for a newer picture.
        let first = store
            .next_after_served("live", Duration::from_millis(1))
            .unwrap();
        assert_eq!(*first.bytes, vec![2]);
        let s = Arc::clone(&store);
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            s.put("live", vec![3], "image/jpeg");
        });
        let next = store
            .next_after_served("live", Duration::from_secs(10))
            .unwrap();
        assert_eq!(*next.bytes, vec![3]);
        writer.join().unwrap();
        // Nothing newer: the current picture after the wait.
        let again = store
            .next_after_served("live", Duration::from_millis(20))
            .unwrap();
        assert_eq!(again.version, next.version);
    }
}
