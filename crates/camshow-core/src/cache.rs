//! Loaded models, shared: [`ModelCache`] keeps each loaded component (a
//! session and what was derived from its file) under a key, so that a
//! changed option reuses what is already loaded instead of reading and
//! compiling the model again (the 500 MB inswapper included).

use std::any::Any;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::error::Result;

type Entry = Arc<dyn Any + Send + Sync>;
/// One key's slot: locked while its component loads, so that two threads
/// asking for the same model load it once (other keys load in parallel).
type Slot = Arc<Mutex<Option<Entry>>>;

/// Components loaded once and shared, by key. Cheap to clone (shared).
#[derive(Clone, Default)]
pub struct ModelCache {
    entries: Arc<Mutex<HashMap<String, Slot>>>,
}

impl std::fmt::Debug for ModelCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut keys: Vec<String> = self.lock().keys().cloned().collect();
        keys.sort();
        f.debug_struct("ModelCache").field("keys", &keys).finish()
    }
}

impl ModelCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Slot>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The component under `key`, loaded by `load` the first time. `T` is
    /// cheap to clone (it holds its sessions in `Arc`s). Only this key's slot
    /// is locked while it loads: the same model is never loaded twice at
    /// once, and different models load in parallel.
    pub fn get_or_load<T: Clone + Send + Sync + 'static>(
        &self,
        key: &str,
        load: impl FnOnce() -> Result<T>,
    ) -> Result<T> {
        let slot = Arc::clone(self.lock().entry(key.to_string()).or_default());
        let mut held = slot.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(v) = held.as_ref().and_then(|e| e.downcast_ref::<T>().cloned()) {
            return Ok(v);
        }
        let v = load()?;
        *held = Some(Arc::new(v.clone()));
        Ok(v)
    }

    /// How many components are held.
    pub fn len(&self) -> usize {
        self.lock()
            .values()
            .filter(|s| s.lock().unwrap_or_else(PoisonError::into_inner).is_some())
            .count()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every component (sessions still used by a loaded engine stay alive until it goes).
    pub fn clear(&self) {
        self.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_once_per_key_and_type() {
        let cache = ModelCache::new();
        let mut loads = 0;
        for _ in 0..3 {
            let v = cache
                .get_or_load("a", || {
                    loads += 1;
                    Ok(Arc::new(7u32))
                })
                .unwrap();
            assert_eq!(*v, 7);
        }
        assert_eq!(loads, 1);
        let b: String = cache.get_or_load("b", || Ok("x".to_string())).unwrap();
        assert_eq!(b, "x");
        assert_eq!(cache.len(), 2);
        let e = cache.get_or_load::<u8>("c", || Err(crate::Error::Internal("no".into())));
        assert!(e.is_err());
        assert_eq!(cache.len(), 2, "a failed load is not kept");
        cache.clear();
        assert!(cache.is_empty());
    }

    #[test]
    fn concurrent_first_requests_load_once() {
        let cache = ModelCache::new();
        let loads = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let v: u32 = cache
                        .get_or_load("slow", || {
                            loads.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            std::thread::sleep(std::time::Duration::from_millis(50));
                            Ok(9)
                        })
                        .unwrap();
                    assert_eq!(v, 9);
                });
            }
        });
        assert_eq!(loads.load(std::sync::atomic::Ordering::SeqCst), 1);
    }
}
