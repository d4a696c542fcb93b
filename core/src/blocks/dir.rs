//! A directory of blocks, one file per block under a two-character shard (the layout of
//! kubo's flatfs `next-to-last/2`), and one empty file per pin.
//!
//! A block is written to `tmp/` and renamed into place, so a reader (or a crash) never sees
//! part of one. Blocks are not fsynced one by one (an upload of 1 GiB is 4 096 of them);
//! what a crash may tear is caught by reading: every block is verified against its CID when
//! it is served. Pins are fsynced.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use cid::Cid;

use super::{key, pin_form, BlockError, BlockFuture, BlockStore};

/// Blocks in a directory (created when first written).
#[derive(Debug, Clone)]
pub struct DirBlockStore {
    root: Arc<PathBuf>,
    /// Makes temporary names unique within the process (the pid separates processes).
    seq: Arc<AtomicU64>,
}

impl DirBlockStore {
    /// A store in `dir`; nothing is touched until the first write.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        DirBlockStore {
            root: Arc::new(dir.into()),
            seq: Arc::default(),
        }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.root
    }

    fn block_path(&self, cid: &Cid) -> PathBuf {
        let name = key(cid).to_string();
        // The next-to-last two characters: base32 of hash bytes, evenly spread.
        let n = name.len();
        let shard = name
            .get(n.saturating_sub(3)..n.saturating_sub(1))
            .unwrap_or("__");
        self.root.join("blocks").join(shard).join(name)
    }

    fn pin_path(&self, root: &Cid) -> PathBuf {
        self.root.join("pins").join(pin_form(root).to_string())
    }

    fn put_one(&self, cid: &Cid, block: &[u8]) -> Result<bool, BlockError> {
        let path = self.block_path(cid);
        if path.exists() {
            return Ok(false);
        }
        let tmp_dir = self.root.join("tmp");
        let tmp = tmp_dir.join(format!(
            "{}-{}",
            std::process::id(),
            self.seq.fetch_add(1, Ordering::Relaxed)
        ));
        let write = |tmp: &Path| -> std::io::Result<()> {
            let mut f = std::fs::File::create(tmp)?;
            f.write_all(block)?;
            Ok(())
        };
        if let Err(e) = write(&tmp) {
            if e.kind() != std::io::ErrorKind::NotFound {
                return Err(BlockError::io("write a block", &e));
            }
            std::fs::create_dir_all(&tmp_dir).map_err(|e| BlockError::io("create tmp/", &e))?;
            write(&tmp).map_err(|e| BlockError::io("write a block", &e))?;
        }
        let rename = std::fs::rename(&tmp, &path);
        if let Err(e) = rename {
            if e.kind() != std::io::ErrorKind::NotFound {
                let _ = std::fs::remove_file(&tmp);
                return Err(BlockError::io("store a block", &e));
            }
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| BlockError::io("create a shard", &e))?;
            }
            std::fs::rename(&tmp, &path).map_err(|e| {
                let _ = std::fs::remove_file(&tmp);
                BlockError::io("store a block", &e)
            })?;
        }
        Ok(true)
    }

    /// The entries of `dir` (none if it does not exist yet: nothing was written).
    fn entries(dir: &Path, what: &str) -> Result<Vec<std::fs::DirEntry>, BlockError> {
        match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .collect::<Result<_, _>>()
                .map_err(|e| BlockError::io(what, &e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(BlockError::io(what, &e)),
        }
    }

    fn list_dir(dir: &Path) -> Result<Vec<Cid>, BlockError> {
        let mut out = Vec::new();
        for entry in Self::entries(dir, "list")? {
            // Anything that is not a CID (an editor's backup, say) is not ours: skipped.
            if let Some(cid) = entry
                .file_name()
                .to_str()
                .and_then(|n| Cid::try_from(n).ok())
            {
                out.push(cid);
            }
        }
        Ok(out)
    }
}

/// Runs blocking file work off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, BlockError> + Send + 'static,
) -> Result<T, BlockError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| BlockError::Store {
            what: "a file task".into(),
            reason: e.to_string(),
        })?
}

impl BlockStore for DirBlockStore {
    fn get<'a>(&'a self, cid: &'a Cid) -> BlockFuture<'a, Option<Bytes>> {
        let path = self.block_path(cid);
        Box::pin(async move {
            match tokio::fs::read(&path).await {
                Ok(b) => Ok(Some(b.into())),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(e) => Err(BlockError::io("read a block", &e)),
            }
        })
    }

    fn has<'a>(&'a self, cid: &'a Cid) -> BlockFuture<'a, bool> {
        let path = self.block_path(cid);
        Box::pin(async move {
            tokio::fs::try_exists(&path)
                .await
                .map_err(|e| BlockError::io("look up a block", &e))
        })
    }

    fn put_many<'a>(&'a self, blocks: &'a [(Cid, Bytes)]) -> BlockFuture<'a, Vec<bool>> {
        let me = self.clone();
        let blocks = blocks.to_vec();
        Box::pin(blocking(move || {
            blocks.iter().map(|(c, b)| me.put_one(c, b)).collect()
        }))
    }

    fn delete_many<'a>(&'a self, cids: &'a [Cid]) -> BlockFuture<'a, ()> {
        let paths: Vec<PathBuf> = cids.iter().map(|c| self.block_path(c)).collect();
        Box::pin(blocking(move || {
            for p in paths {
                match std::fs::remove_file(&p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(BlockError::io("delete a block", &e)),
                }
            }
            Ok(())
        }))
    }

    fn list(&self) -> BlockFuture<'_, Vec<Cid>> {
        let blocks = self.root.join("blocks");
        Box::pin(blocking(move || {
            let mut out = Vec::new();
            for shard in Self::entries(&blocks, "list blocks")? {
                out.extend(Self::list_dir(&shard.path())?);
            }
            Ok(out)
        }))
    }

    fn pin<'a>(&'a self, root: &'a Cid) -> BlockFuture<'a, ()> {
        let path = self.pin_path(root);
        Box::pin(blocking(move || {
            let write = |p: &Path| -> std::io::Result<()> {
                if let Some(parent) = p.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::File::create(p)?.sync_all()?;
                // The directory entry itself is made durable too.
                if let Some(parent) = p.parent() {
                    std::fs::File::open(parent)?.sync_all()?;
                }
                Ok(())
            };
            write(&path).map_err(|e| BlockError::io("pin", &e))
        }))
    }

    fn unpin<'a>(&'a self, root: &'a Cid) -> BlockFuture<'a, bool> {
        let path = self.pin_path(root);
        Box::pin(async move {
            match tokio::fs::remove_file(&path).await {
                Ok(()) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                Err(e) => Err(BlockError::io("unpin", &e)),
            }
        })
    }

    fn pins(&self) -> BlockFuture<'_, Vec<Cid>> {
        let dir = self.root.join("pins");
        Box::pin(blocking(move || Self::list_dir(&dir)))
    }
}
