//! A verified, resumable walk of a UnixFS file DAG.
//!
//! The walk knows which block it needs next (depth first, from the requested root, never
//! from a CAR header's roots). A block offered to it is accepted only if it is that block and
//! its bytes hash to its CID; anything else is dropped. File bytes leave the walk only from
//! verified blocks, in file order. Because the state is just the stack of blocks still
//! needed, a walk cut short at one source continues at the next one where it stopped.

use crate::cid::CidText;
use cid::multihash::Multihash;
use cid::Cid;
use prost::Message;
use sha2::{Digest, Sha256};

use super::error::RetrieveError;
use crate::cid::unixfs::{PbLink, UNIXFS_FILE};
use crate::cid::{DAG_PB_CODEC, RAW_CODEC, SHA2_256};

/// Multihash code of the identity hash (the data is inline in the CID).
const IDENTITY: u64 = 0x00;
/// Largest block accepted: IPFS transports cap blocks at 2 MiB; CAR sections at 4 MiB.
pub const MAX_BLOCK_BYTES: usize = 4 << 20;
/// Most links the walk holds pending at once (a hostile node could list millions).
pub const MAX_PENDING: usize = 1 << 20;

/// DAG-PB `PBNode` (links, then data).
#[derive(Clone, PartialEq, Message)]
struct PbNode {
    #[prost(message, repeated, tag = "2")]
    links: Vec<PbLink>,
    #[prost(bytes = "vec", optional, tag = "1")]
    data: Option<Vec<u8>>,
}

/// UnixFS `Data` as read: every field optional, so a node without a type is reported rather
/// than read as type 0 (the hasher's own message, which writes, has it required).
#[derive(Clone, PartialEq, Message)]
struct UnixfsData {
    #[prost(int32, optional, tag = "1")]
    data_type: Option<i32>,
    #[prost(bytes = "vec", optional, tag = "2")]
    data: Option<Vec<u8>>,
    #[prost(uint64, optional, tag = "3")]
    filesize: Option<u64>,
}

/// UnixFS `DataType.Raw`, which holds file bytes as `File` does.
const UNIXFS_RAW: i32 = 0;

/// What an offered block did.
#[derive(Debug, PartialEq, Eq)]
pub enum Offer {
    /// It was the block needed next: these verified file bytes follow (may be empty).
    Accepted(Vec<u8>),
    /// Not the block needed next: dropped.
    Dropped,
}

/// The walk's state: the blocks still needed, top of the stack first.
#[derive(Debug, Clone)]
pub struct Walk {
    root: Cid,
    pending: Vec<Cid>,
    released: u64,
    max_bytes: u64,
    declared_size: Option<u64>,
}

impl Walk {
    /// A walk of the file at `root`, releasing at most `max_bytes`.
    pub fn new(root: Cid, max_bytes: u64) -> Result<Self, RetrieveError> {
        check_supported(&root)?;
        Ok(Walk {
            root,
            pending: vec![root],
            released: 0,
            max_bytes,
            declared_size: None,
        })
    }

    /// The root being walked.
    pub fn root(&self) -> &Cid {
        &self.root
    }

    /// The block needed next, or `None` when the file is complete.
    pub fn next_needed(&self) -> Option<&Cid> {
        self.pending.last()
    }

    /// Whether every block has been verified.
    pub fn is_done(&self) -> bool {
        self.pending.is_empty()
    }

    /// File bytes released so far.
    pub fn released(&self) -> u64 {
        self.released
    }

    /// The file's size, once the root is verified: what a DAG-PB root declares (checked
    /// when the walk ends), or a raw root's length.
    pub fn file_size(&self) -> Option<u64> {
        if self.root.codec() == RAW_CODEC {
            return self.pending.is_empty().then_some(self.released);
        }
        self.declared_size
    }

    /// Resolves an identity CID at the top of the stack (its data is in the CID itself):
    /// returns its bytes, or `None` if the next block must come from a source.
    pub fn take_inline(&mut self) -> Result<Option<Vec<u8>>, RetrieveError> {
        match self.pending.last() {
            Some(c) if c.hash().code() == IDENTITY => {
                let cid = *c;
                let data = cid.hash().digest().to_vec();
                self.accept(&cid, &data).map(Some)
            }
            _ => Ok(None),
        }
    }

    /// Offers a block that `source` sent as `cid`. The CID is trusted only after the bytes
    /// hash to it: a block claiming the needed CID with other bytes is an `INTEGRITY` error.
    pub fn offer(&mut self, cid: &Cid, block: &[u8], source: &str) -> Result<Offer, RetrieveError> {
        if self.pending.last() != Some(cid) {
            return Ok(Offer::Dropped);
        }
        if block.len() > MAX_BLOCK_BYTES {
            return Err(RetrieveError::Integrity {
                cid: cid.text(),
                origin: source.to_string(),
                reason: format!("block of {} bytes, over {MAX_BLOCK_BYTES}", block.len()),
            });
        }
        verify_hash(cid, block, source)?;
        self.accept(cid, block).map(Offer::Accepted)
    }

    /// Takes a verified block off the stack: pushes its links, returns its file bytes.
    fn accept(&mut self, cid: &Cid, block: &[u8]) -> Result<Vec<u8>, RetrieveError> {
        let is_root = self.released == 0 && self.pending.len() == 1 && *cid == self.root;
        self.pending.pop();
        let data = match cid.codec() {
            RAW_CODEC => block.to_vec(),
            DAG_PB_CODEC => {
                let FileNode {
                    data,
                    links,
                    filesize,
                } = decode_file_node(cid, block)?;
                if is_root {
                    self.declared_size = filesize;
                }
                if self.pending.len() + links.len() > MAX_PENDING {
                    return Err(RetrieveError::TooLarge {
                        reason: format!("the DAG lists more than {MAX_PENDING} pending blocks"),
                    });
                }
                for link in links.into_iter().rev() {
                    check_supported(&link)?;
                    self.pending.push(link);
                }
                data
            }
            other => {
                return Err(RetrieveError::Unsupported {
                    reason: format!("block {} has codec 0x{other:x}", cid.shown()),
                })
            }
        };
        self.released += data.len() as u64;
        if self.released > self.max_bytes {
            return Err(RetrieveError::TooLarge {
                reason: format!("the file is over the limit of {} bytes", self.max_bytes),
            });
        }
        if self.pending.is_empty() {
            if let Some(size) = self.declared_size {
                if size != self.released {
                    return Err(RetrieveError::Integrity {
                        cid: self.root.text(),
                        origin: "the DAG".into(),
                        reason: format!(
                            "the root declares {size} bytes; its blocks hold {}",
                            self.released
                        ),
                    });
                }
            }
        }
        Ok(data)
    }
}

/// Only what the walk can verify and decode: CIDv1/v0 with SHA2-256 (or identity) over raw
/// or DAG-PB.
fn check_supported(cid: &Cid) -> Result<(), RetrieveError> {
    let hash = cid.hash().code();
    if hash != SHA2_256 && hash != IDENTITY {
        return Err(RetrieveError::Unsupported {
            reason: format!(
                "{} uses multihash 0x{hash:x}; only sha2-256 is verified",
                cid.shown()
            ),
        });
    }
    if cid.codec() != RAW_CODEC && cid.codec() != DAG_PB_CODEC {
        return Err(RetrieveError::Unsupported {
            reason: format!(
                "{} has codec 0x{:x}; only raw and dag-pb files are retrieved",
                cid.shown(),
                cid.codec()
            ),
        });
    }
    Ok(())
}

/// Hashes the block and compares it with the CID's digest (SHA2-256 or identity; any
/// other hash fails).
pub(crate) fn verify_hash(cid: &Cid, block: &[u8], source: &str) -> Result<(), RetrieveError> {
    let ok = match cid.hash().code() {
        SHA2_256 => {
            let digest = Sha256::digest(block);
            Multihash::<64>::wrap(SHA2_256, &digest).is_ok_and(|mh| &mh == cid.hash())
        }
        IDENTITY => cid.hash().digest() == block,
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(RetrieveError::Integrity {
            cid: cid.text(),
            origin: source.to_string(),
            reason: "its bytes do not hash to its CID".into(),
        })
    }
}

/// The links of a DAG-PB block, whatever UnixFS type it is (garbage collection follows
/// directories too); `None` if it does not decode.
#[cfg(not(target_family = "wasm"))]
pub(crate) fn dag_pb_links(block: &[u8]) -> Option<Vec<Cid>> {
    let node = PbNode::decode(block).ok()?;
    node.links
        .iter()
        .map(|l| Cid::read_bytes(l.hash.as_deref().unwrap_or_default()).ok())
        .collect()
}

/// A decoded UnixFS file node.
struct FileNode {
    /// Its inline bytes.
    data: Vec<u8>,
    /// Its children, in file order.
    links: Vec<Cid>,
    /// The file size it declares.
    filesize: Option<u64>,
}

/// Decodes a DAG-PB UnixFS file node.
fn decode_file_node(cid: &Cid, block: &[u8]) -> Result<FileNode, RetrieveError> {
    let malformed = |reason: String| RetrieveError::Integrity {
        cid: cid.text(),
        origin: "the DAG".into(),
        reason,
    };
    let node = PbNode::decode(block).map_err(|e| malformed(format!("not DAG-PB: {e}")))?;
    let unixfs = match &node.data {
        Some(d) => {
            UnixfsData::decode(d.as_slice()).map_err(|e| malformed(format!("not UnixFS: {e}")))?
        }
        None => return Err(malformed("a DAG-PB node without UnixFS data".into())),
    };
    match unixfs.data_type {
        Some(UNIXFS_FILE) | Some(UNIXFS_RAW) => {}
        Some(t) => {
            return Err(RetrieveError::Unsupported {
                reason: format!(
                    "{} is a UnixFS node of type {t} (directory, symlink…), not a file",
                    cid.shown()
                ),
            })
        }
        None => return Err(malformed("UnixFS data without a type".into())),
    }
    let links = node
        .links
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let bytes = l.hash.as_deref().unwrap_or_default();
            Cid::read_bytes(bytes).map_err(|e| malformed(format!("link {i}: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(FileNode {
        data: unixfs.data.unwrap_or_default(),
        links,
        filesize: unixfs.filesize,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(data: &[u8]) -> (Cid, Vec<u8>) {
        let mh = Multihash::<64>::wrap(SHA2_256, &Sha256::digest(data)).unwrap();
        (Cid::new_v1(RAW_CODEC, mh), data.to_vec())
    }

    fn file(children: &[(Cid, u64)]) -> (Cid, Vec<u8>) {
        let data = UnixfsData {
            data_type: Some(UNIXFS_FILE),
            data: None,
            filesize: Some(children.iter().map(|c| c.1).sum()),
        }
        .encode_to_vec();
        let node = PbNode {
            links: children
                .iter()
                .map(|(c, s)| PbLink {
                    hash: Some(c.to_bytes()),
                    name: Some(String::new()),
                    tsize: Some(*s),
                })
                .collect(),
            data: Some(data),
        };
        let block = node.encode_to_vec();
        let mh = Multihash::<64>::wrap(SHA2_256, &Sha256::digest(&block)).unwrap();
        (Cid::new_v1(DAG_PB_CODEC, mh), block)
    }

    #[test]
    fn walks_depth_first_and_drops_strangers() {
        let (a, ab) = raw(b"hello ");
        let (b, bb) = raw(b"world");
        let (root, rb) = file(&[(a, 6), (b, 5)]);
        let (x, xb) = raw(b"unrelated");
        let mut w = Walk::new(root, 100).unwrap();
        assert_eq!(w.offer(&x, &xb, "t").unwrap(), Offer::Dropped);
        assert_eq!(w.offer(&a, &ab, "t").unwrap(), Offer::Dropped);
        assert_eq!(w.file_size(), None);
        assert_eq!(w.offer(&root, &rb, "t").unwrap(), Offer::Accepted(vec![]));
        assert_eq!(w.file_size(), Some(11), "declared by the root");
        assert_eq!(w.offer(&b, &bb, "t").unwrap(), Offer::Dropped);
        assert_eq!(w.offer(&a, &ab, "t").unwrap(), Offer::Accepted(ab));
        assert_eq!(w.offer(&b, &bb, "t").unwrap(), Offer::Accepted(bb));
        assert!(w.is_done());
        assert_eq!(w.released(), 11);
    }

    #[test]
    fn a_raw_root_is_its_own_size() {
        let (a, ab) = raw(b"hello");
        let mut w = Walk::new(a, 100).unwrap();
        assert_eq!(w.file_size(), None);
        w.offer(&a, &ab, "t").unwrap();
        assert_eq!(w.file_size(), Some(5));
    }

    #[test]
    fn a_block_with_other_bytes_is_an_integrity_error() {
        let (a, _) = raw(b"hello");
        let mut w = Walk::new(a, 100).unwrap();
        let e = w.offer(&a, b"hellp", "gw").unwrap_err();
        assert_eq!(crate::error::ErrorCode::code(&e), "INTEGRITY");
        assert!(!w.is_done(), "a refused block leaves the walk where it was");
    }

    #[test]
    fn a_root_whose_blocks_disagree_with_its_size_fails() {
        let (a, ab) = raw(b"abc");
        let (root, rb) = file(&[(a, 5)]);
        let mut w = Walk::new(root, 100).unwrap();
        w.offer(&root, &rb, "t").unwrap();
        let e = w.offer(&a, &ab, "t").unwrap_err();
        assert_eq!(crate::error::ErrorCode::code(&e), "INTEGRITY");
    }

    #[test]
    fn over_the_cap_is_too_large() {
        let (a, ab) = raw(&[7; 64]);
        let mut w = Walk::new(a, 63).unwrap();
        let e = w.offer(&a, &ab, "t").unwrap_err();
        assert_eq!(crate::error::ErrorCode::code(&e), "TOO_LARGE");
    }

    #[test]
    fn identity_cids_need_no_source() {
        let mh = Multihash::<64>::wrap(IDENTITY, b"inline").unwrap();
        let c = Cid::new_v1(RAW_CODEC, mh);
        let mut w = Walk::new(c, 100).unwrap();
        assert_eq!(w.take_inline().unwrap(), Some(b"inline".to_vec()));
        assert!(w.is_done());
    }
}
