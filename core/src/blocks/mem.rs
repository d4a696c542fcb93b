//! Blocks in memory: for tests and for nodes on `sqlite::memory:`.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use cid::Cid;

use super::{key, pin_form, BlockError, BlockFuture, BlockStore};

/// Blocks in a map (clones share it).
#[derive(Debug, Clone, Default)]
pub struct MemBlockStore {
    inner: Arc<Mutex<MemInner>>,
}

#[derive(Debug, Default)]
struct MemInner {
    blocks: HashMap<Cid, Bytes>,
    pins: BTreeSet<Cid>,
}

impl MemBlockStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut MemInner) -> T) -> Result<T, BlockError> {
        let mut g = self.inner.lock().map_err(|_| BlockError::Store {
            what: "memory".into(),
            reason: "a writer panicked".into(),
        })?;
        Ok(f(&mut g))
    }
}

impl BlockStore for MemBlockStore {
    fn get<'a>(&'a self, cid: &'a Cid) -> BlockFuture<'a, Option<Bytes>> {
        Box::pin(async move { self.with(|m| m.blocks.get(&key(cid)).cloned()) })
    }

    fn has<'a>(&'a self, cid: &'a Cid) -> BlockFuture<'a, bool> {
        Box::pin(async move { self.with(|m| m.blocks.contains_key(&key(cid))) })
    }

    fn put_many<'a>(&'a self, blocks: &'a [(Cid, Bytes)]) -> BlockFuture<'a, Vec<bool>> {
        Box::pin(async move {
            self.with(|m| {
                blocks
                    .iter()
                    .map(|(c, b)| m.blocks.insert(key(c), b.clone()).is_none())
                    .collect()
            })
        })
    }

    fn delete_many<'a>(&'a self, cids: &'a [Cid]) -> BlockFuture<'a, ()> {
        Box::pin(async move {
            self.with(|m| {
                for c in cids {
                    m.blocks.remove(&key(c));
                }
            })
        })
    }

    fn list(&self) -> BlockFuture<'_, Vec<Cid>> {
        Box::pin(async move { self.with(|m| m.blocks.keys().copied().collect()) })
    }

    fn pin<'a>(&'a self, root: &'a Cid) -> BlockFuture<'a, ()> {
        Box::pin(async move {
            self.with(|m| {
                m.pins.insert(pin_form(root));
            })
        })
    }

    fn unpin<'a>(&'a self, root: &'a Cid) -> BlockFuture<'a, bool> {
        Box::pin(async move { self.with(|m| m.pins.remove(&pin_form(root))) })
    }

    fn pins(&self) -> BlockFuture<'_, Vec<Cid>> {
        Box::pin(async move { self.with(|m| m.pins.iter().copied().collect()) })
    }
}
