//! The UnixFS root CID of a file, identical to `ipfs add --cid-version=1` with its defaults:
//! fixed 256 KiB chunks stored as raw leaves, a balanced DAG of at most 174 links per node,
//! and a file of one chunk or less stored as a single raw block.
//!
//! Only the hashes are kept: one pending list of links per tree level, so memory is a few
//! kilobytes whatever the file size.

use cid::{multihash::Multihash, Cid};
use prost::Message;
use sha2::{Digest, Sha256};

use super::{DAG_PB_CODEC, RAW_CODEC, SHA2_256};

/// Bytes per leaf (kubo's `size-262144` chunker).
pub const CHUNK_SIZE: usize = 256 * 1024;
/// Links per node in the balanced layout (kubo's default).
pub const MAX_LINKS: usize = 174;

/// UnixFS `Data` message (unixfs.proto, proto2).
#[derive(Clone, PartialEq, Message)]
struct UnixfsData {
    #[prost(int32, required, tag = "1")]
    data_type: i32,
    #[prost(bytes = "vec", optional, tag = "2")]
    data: Option<Vec<u8>>,
    #[prost(uint64, optional, tag = "3")]
    filesize: Option<u64>,
    #[prost(uint64, repeated, packed = "false", tag = "4")]
    blocksizes: Vec<u64>,
}

/// UnixFS `DataType.File`.
pub(crate) const UNIXFS_FILE: i32 = 2;

/// DAG-PB `PBLink` (also read by the retrieval walk).
#[derive(Clone, PartialEq, Message)]
pub(crate) struct PbLink {
    #[prost(bytes = "vec", optional, tag = "1")]
    pub(crate) hash: Option<Vec<u8>>,
    #[prost(string, optional, tag = "2")]
    pub(crate) name: Option<String>,
    #[prost(uint64, optional, tag = "3")]
    pub(crate) tsize: Option<u64>,
}

/// A child of a node: its CID, the bytes of its whole subtree and the file bytes it holds.
#[derive(Debug, Clone)]
struct Link {
    cid: Cid,
    tsize: u64,
    file_size: u64,
}

fn sha256_cid(codec: u64, block: &[u8]) -> Cid {
    let digest = Sha256::digest(block);
    // A 32-byte digest always fits the 64-byte multihash.
    let mh = Multihash::<64>::wrap(SHA2_256, &digest).unwrap_or_default();
    Cid::new_v1(codec, mh)
}

/// Encodes a UnixFS file node over `links` and returns its link (and its block, if `keep`).
fn file_node(links: &[Link], keep: Option<&mut Vec<(Cid, bytes::Bytes)>>) -> Link {
    let file_size: u64 = links.iter().map(|l| l.file_size).sum();
    let data = UnixfsData {
        data_type: UNIXFS_FILE,
        data: None,
        filesize: Some(file_size),
        blocksizes: links.iter().map(|l| l.file_size).collect(),
    }
    .encode_to_vec();
    // DAG-PB's canonical form puts the links (field 2) before the data (field 1), so the
    // node is written field by field rather than derived.
    let mut block = Vec::with_capacity(links.len() * 48 + data.len() + 8);
    for link in links {
        let pb = PbLink {
            hash: Some(link.cid.to_bytes()),
            name: Some(String::new()),
            tsize: Some(link.tsize),
        };
        prost::encoding::message::encode(2, &pb, &mut block);
    }
    prost::encoding::bytes::encode(1, &data, &mut block);
    let tsize = block.len() as u64 + links.iter().map(|l| l.tsize).sum::<u64>();
    let cid = sha256_cid(DAG_PB_CODEC, &block);
    if let Some(out) = keep {
        out.push((cid, block.into()));
    }
    Link {
        cid,
        tsize,
        file_size,
    }
}

/// Streaming UnixFS hasher.
///
/// ```
/// use raas_core::cid::unixfs::UnixfsHasher;
/// let mut h = UnixfsHasher::new();
/// h.update(b"");
/// assert_eq!(h.finish().to_string(),
///     "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku");
/// ```
#[derive(Debug, Clone, Default)]
pub struct UnixfsHasher {
    chunk: Vec<u8>,
    /// `levels[0]` holds leaves; `levels[i]` nodes of height `i`. Each holds < 174 links.
    levels: Vec<Vec<Link>>,
    total: u64,
    /// The blocks made so far, when they are kept (an upload stores them).
    blocks: Option<Vec<(Cid, bytes::Bytes)>>,
}

impl UnixfsHasher {
    /// A new, empty hasher.
    pub fn new() -> Self {
        Self::default()
    }

    /// A hasher that also keeps every block it makes, leaves and nodes, for
    /// [`take_blocks`](Self::take_blocks): what an upload writes to a block store.
    pub fn with_blocks() -> Self {
        UnixfsHasher {
            blocks: Some(Vec::new()),
            ..Self::default()
        }
    }

    /// The blocks made since the last call, children before their parents (only with
    /// [`with_blocks`](Self::with_blocks); empty otherwise).
    pub fn take_blocks(&mut self) -> Vec<(Cid, bytes::Bytes)> {
        self.blocks.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// File bytes hashed so far.
    pub fn bytes_hashed(&self) -> u64 {
        self.total
    }

    /// Feeds more file bytes.
    pub fn update(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        if !self.chunk.is_empty() {
            let take = (CHUNK_SIZE - self.chunk.len()).min(data.len());
            self.chunk.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.chunk.len() < CHUNK_SIZE {
                return;
            }
            let chunk = std::mem::take(&mut self.chunk);
            self.push_leaf(&chunk);
            self.chunk = chunk;
            self.chunk.clear();
        }
        // Whole chunks are hashed in place, without a copy.
        while data.len() >= CHUNK_SIZE {
            let (leaf, rest) = data.split_at(CHUNK_SIZE);
            self.push_leaf(leaf);
            data = rest;
        }
        if self.chunk.capacity() == 0 {
            self.chunk.reserve_exact(CHUNK_SIZE);
        }
        self.chunk.extend_from_slice(data);
    }

    fn push_leaf(&mut self, leaf: &[u8]) {
        let link = Link {
            cid: sha256_cid(RAW_CODEC, leaf),
            tsize: leaf.len() as u64,
            file_size: leaf.len() as u64,
        };
        if let Some(out) = &mut self.blocks {
            out.push((link.cid, bytes::Bytes::copy_from_slice(leaf)));
        }
        self.push(0, link);
    }

    fn push(&mut self, level: usize, link: Link) {
        if self.levels.len() <= level {
            self.levels.resize_with(level + 1, Vec::new);
        }
        self.levels[level].push(link);
        if self.levels[level].len() == MAX_LINKS {
            let full = std::mem::take(&mut self.levels[level]);
            let node = file_node(&full, self.blocks.as_mut());
            self.push(level + 1, node);
        }
    }

    /// The root CID of the file.
    pub fn finish(self) -> Cid {
        self.finish_with_blocks().0
    }

    /// The root CID of the file and the blocks made since the last
    /// [`take_blocks`](Self::take_blocks), the root last (empty without
    /// [`with_blocks`](Self::with_blocks)).
    pub fn finish_with_blocks(mut self) -> (Cid, Vec<(Cid, bytes::Bytes)>) {
        let root = self.close();
        (root, self.take_blocks())
    }

    fn close(&mut self) -> Cid {
        if self.levels.iter().all(Vec::is_empty) {
            // One chunk or less: the file is that single raw block.
            let cid = sha256_cid(RAW_CODEC, &self.chunk);
            if let Some(out) = &mut self.blocks {
                out.push((cid, bytes::Bytes::copy_from_slice(&self.chunk)));
            }
            return cid;
        }
        if !self.chunk.is_empty() {
            let chunk = std::mem::take(&mut self.chunk);
            self.push_leaf(&chunk);
        }
        // Close each level's partial group bottom-up, as the balanced layout does: the node
        // made from a lower level comes after the links already waiting one level up.
        let top = self.levels.len() - 1;
        let mut carry: Option<Link> = None;
        for (level, mut links) in std::mem::take(&mut self.levels).into_iter().enumerate() {
            links.extend(carry.take());
            if level == top && links.len() == 1 {
                return links.swap_remove(0).cid;
            }
            if !links.is_empty() {
                carry = Some(file_node(&links, self.blocks.as_mut()));
            }
        }
        // The top level is never empty, so `carry` is the root node here.
        carry.map_or_else(|| sha256_cid(RAW_CODEC, &[]), |root| root.cid)
    }
}
