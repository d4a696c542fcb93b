//! A storage provider's `GET /piece/{pieceCid}` as a source: the exact piece bytes (the CAR
//! and its zero padding), verified by recomputing CommP against the deal's piece CID before
//! anything is read from them, then served block by block from a CAR index.
//!
//! CommP covers the whole piece, so nothing can be trusted before the last byte arrives: the
//! piece goes to an unnamed temporary file (deleted when closed), never to memory. CARs made
//! by common tools (`ipfs-car`) put leaves before their parents, so the blocks the walk needs
//! are read by offset, not in file order.
//!
//! The CAR index is read here rather than with `iroh-car`: a piece's payload is followed by
//! zero padding, whose first section length reads as 0, and `iroh-car` fails on a
//! zero-length section instead of ending; it also reads every block into memory in order,
//! and this index needs only their offsets.

use crate::cid::CidText;
use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::sync::Arc;
use std::time::Duration;

use cid::Cid;

use super::error::RetrieveError;
use super::walk::MAX_BLOCK_BYTES;
use crate::cid::piece::PieceHasher;

/// Bytes gathered before each write and hash step (one blocking task per step).
const STEP_BYTES: usize = 8 << 20;
/// Most blocks indexed per piece (an index entry costs about 100 bytes).
const MAX_INDEXED: usize = 1 << 20;
/// The body of the CARv2 pragma (`{"version": 2}` in DAG-CBOR), after its length byte 10.
const CARV2_PRAGMA: [u8; 10] = [0xa1, 0x67, 0x76, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e, 0x02];
/// Largest CAR header read.
const MAX_HEADER: u64 = 1 << 20;

/// A deal's piece at one provider address.
#[derive(Debug, Clone)]
pub(super) struct PieceSource {
    /// The provider's HTTP base, without a trailing slash.
    pub(super) base: String,
    /// The name in errors: provider, piece and address.
    pub(super) name: String,
    /// The deal's piece CID.
    pub(super) piece_cid: Cid,
    /// The deal's padded piece size (a power of two).
    pub(super) piece_size: u64,
}

/// A piece verified on disk and its blocks' places.
pub(super) struct PieceFile {
    file: Arc<File>,
    /// CID → (offset, length) of the block's bytes in the file.
    index: HashMap<Cid, (u64, u32)>,
}

impl std::fmt::Debug for PieceFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PieceFile")
            .field("blocks", &self.index.len())
            .finish_non_exhaustive()
    }
}

impl PieceSource {
    fn integrity(&self, reason: String) -> RetrieveError {
        RetrieveError::Integrity {
            cid: self.piece_cid.text(),
            origin: self.name.clone(),
            reason,
        }
    }

    fn transport(&self, e: crate::net::NetError) -> RetrieveError {
        RetrieveError::transport(&self.name, e)
    }

    fn local(&self, e: impl std::fmt::Display) -> RetrieveError {
        RetrieveError::Network {
            origin: self.name.clone(),
            reason: format!("temporary file: {e}"),
        }
    }

    /// Downloads the piece (each chunk within `wait`), checks its CommP and indexes the CAR
    /// it holds. The root's absence is found later, by the walk.
    pub(super) async fn fetch(
        &self,
        client: &crate::net::Http,
        wait: Duration,
    ) -> Result<PieceFile, RetrieveError> {
        let unpadded = self.piece_size / 128 * 127;
        let url = format!("{}/piece/{}", self.base, self.piece_cid);
        let mut resp = crate::rt::timeout(wait, client.get(&url, &[]))
            .await
            .ok_or_else(|| RetrieveError::Timeout {
                origin: self.name.clone(),
                reason: "no answer to the piece request".into(),
            })?
            .map_err(|e| self.transport(e))?;
        let status = resp.status();
        match status {
            200 => {}
            404 | 410 => {
                return Err(RetrieveError::NotFound {
                    cid: self.piece_cid.text(),
                    tried: format!("{} answered {status}", self.name),
                })
            }
            _ => {
                return Err(RetrieveError::Http {
                    origin: self.name.clone(),
                    status,
                })
            }
        }
        if let Some(n) = resp.content_length() {
            if n > unpadded {
                return Err(self.integrity(format!(
                    "it announced {n} bytes; the piece holds at most {unpadded}"
                )));
            }
        }
        let file = tokio::task::spawn_blocking(tempfile::tempfile)
            .await
            .map_err(|e| self.local(e))?
            .map_err(|e| self.local(e))?;
        // Hasher, file and the bytes gathered for the next step: moved into each blocking
        // step and back.
        let mut parts = (PieceHasher::new(), file, Vec::with_capacity(STEP_BYTES));
        let mut total = 0u64;
        loop {
            let next = crate::rt::timeout(wait, resp.chunk())
                .await
                .ok_or_else(|| RetrieveError::Timeout {
                    origin: self.name.clone(),
                    reason: format!("no piece bytes within {wait:?} after {total}"),
                })?;
            let chunk = next.map_err(|e| self.transport(e))?;
            let last = chunk.is_none();
            if let Some(chunk) = chunk {
                total += chunk.len() as u64;
                if total > unpadded {
                    return Err(self.integrity(format!(
                        "it sent over {unpadded} bytes, more than the piece holds"
                    )));
                }
                parts.2.extend_from_slice(&chunk);
            }
            if parts.2.len() >= STEP_BYTES || last {
                parts = tokio::task::spawn_blocking(move || {
                    let (mut hasher, mut file, mut buf) = parts;
                    hasher.update(&buf);
                    file.write_all(&buf).map(|()| {
                        buf.clear();
                        (hasher, file, buf)
                    })
                })
                .await
                .map_err(|e| self.local(e))?
                .map_err(|e| self.local(e))?;
            }
            if last {
                break;
            }
        }
        let (hasher, file, _) = parts;
        let want = self.piece_cid;
        let size = self.piece_size;
        let checked = tokio::task::spawn_blocking(move || {
            let got = hasher.finish().padded_to(size).map(|p| p.comm_p());
            if got != Some(want) {
                return Err(format!(
                    "its {total} bytes hash to {}, not the deal's piece CID",
                    got.map(|c| c.to_string()).unwrap_or_default()
                ));
            }
            Ok(index_car(&file, total).map(|index| (file, index)))
        })
        .await
        .map_err(|e| self.local(e))?
        .map_err(|reason| self.integrity(reason))?;
        let (file, index) = checked.map_err(|reason| RetrieveError::NotFound {
            cid: want.to_string(),
            tried: format!("{}: the piece is verified but {reason}", self.name),
        })?;
        Ok(PieceFile {
            file: Arc::new(file),
            index,
        })
    }
}

impl PieceFile {
    /// The bytes the piece's CAR holds for `cid` (unverified: the walk checks them), `None`
    /// if it holds none.
    pub(super) async fn block(&self, cid: &Cid) -> std::io::Result<Option<Vec<u8>>> {
        let Some(&(offset, len)) = self.index.get(cid) else {
            return Ok(None);
        };
        let file = self.file.clone();
        tokio::task::spawn_blocking(move || {
            let mut f = &*file;
            f.seek(SeekFrom::Start(offset))?;
            let mut buf = vec![0u8; len as usize];
            f.read_exact(&mut buf)?;
            Ok(Some(buf))
        })
        .await
        .map_err(std::io::Error::other)?
    }
}

/// The CAR (v1, or v2 through its pragma and header) at the start of a piece of `len` bytes:
/// where each block's bytes lie. It ends at the first zero-length section (the piece's
/// padding), at the end of a CARv2's data, or at the first section that does not parse.
fn index_car(file: &File, len: u64) -> Result<HashMap<Cid, (u64, u32)>, String> {
    let mut r = BufReader::with_capacity(64 << 10, file);
    r.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    let header = read_header(&mut r)?;
    let mut end = len;
    if header == CARV2_PRAGMA {
        let mut h = [0u8; 40];
        r.read_exact(&mut h)
            .map_err(|_| "its CARv2 header is cut short".to_string())?;
        let word = |i: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&h[i..i + 8]);
            u64::from_le_bytes(b)
        };
        let (offset, size) = (word(16), word(24));
        if offset > len {
            return Err("its CARv2 data offset is past the piece's end".into());
        }
        end = offset.saturating_add(size).min(len);
        r.seek(SeekFrom::Start(offset)).map_err(|e| e.to_string())?;
        let inner = read_header(&mut r)?;
        check_v1(&inner)?;
    } else {
        check_v1(&header)?;
    }
    let mut index = HashMap::new();
    while let Ok(start) = r.stream_position() {
        if start >= end {
            break;
        }
        let Ok(section) = unsigned_varint::io::read_u64(&mut r) else {
            break;
        };
        let Ok(body) = r.stream_position() else {
            break;
        };
        if section == 0 || body.saturating_add(section) > end {
            break;
        }
        let Ok(cid) = Cid::read_bytes(&mut r) else {
            break;
        };
        let cid_len = cid.encoded_len() as u64;
        let Some(block_len) = section.checked_sub(cid_len) else {
            break;
        };
        if block_len <= MAX_BLOCK_BYTES as u64 && index.len() < MAX_INDEXED {
            // The first copy of a block is kept; duplicates are allowed in CARs.
            index
                .entry(cid)
                .or_insert((body + cid_len, block_len as u32));
        }
        let Ok(skip) = i64::try_from(block_len) else {
            break;
        };
        if r.seek_relative(skip).is_err() {
            break;
        }
    }
    if index.is_empty() {
        return Err("it holds no CAR blocks".into());
    }
    Ok(index)
}

/// A CAR header's bytes (the length-prefixed DAG-CBOR map).
fn read_header(r: &mut impl Read) -> Result<Vec<u8>, String> {
    let n = unsigned_varint::io::read_u64(&mut *r)
        .map_err(|_| "it does not start with a CAR header".to_string())?;
    if n == 0 || n > MAX_HEADER {
        return Err("it does not start with a CAR header".into());
    }
    let mut header = vec![0u8; n as usize];
    r.read_exact(&mut header)
        .map_err(|_| "its CAR header is cut short".to_string())?;
    Ok(header)
}

/// A CARv1 header is a DAG-CBOR map (`roots`, `version`); the roots are not used: the walk
/// starts from the CID asked for.
fn check_v1(header: &[u8]) -> Result<(), String> {
    match header.first() {
        Some(0xa1..=0xb7) => Ok(()),
        _ => Err("it does not start with a CAR header".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section(cid: &Cid, block: &[u8]) -> Vec<u8> {
        let cid = cid.to_bytes();
        let mut buf = unsigned_varint::encode::u64_buffer();
        let mut out =
            unsigned_varint::encode::u64((cid.len() + block.len()) as u64, &mut buf).to_vec();
        out.extend(cid);
        out.extend(block);
        out
    }

    fn raw(block: &[u8]) -> Cid {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(block);
        Cid::new_v1(
            0x55,
            cid::multihash::Multihash::wrap(0x12, &digest).unwrap(),
        )
    }

    fn v1(blocks: &[&[u8]]) -> Vec<u8> {
        // {"roots": [], "version": 1}
        let header = [
            0xa2, 0x65, b'r', b'o', b'o', b't', b's', 0x80, 0x67, b'v', b'e', b'r', b's', b'i',
            b'o', b'n', 0x01,
        ];
        let mut car = vec![header.len() as u8];
        car.extend(header);
        for b in blocks {
            car.extend(section(&raw(b), b));
        }
        car
    }

    fn file_of(bytes: &[u8]) -> File {
        let mut f = tempfile::tempfile().unwrap();
        f.write_all(bytes).unwrap();
        f
    }

    fn read(file: &File, at: (u64, u32)) -> Vec<u8> {
        let mut f = file;
        f.seek(SeekFrom::Start(at.0)).unwrap();
        let mut buf = vec![0; at.1 as usize];
        f.read_exact(&mut buf).unwrap();
        buf
    }

    #[test]
    fn indexes_a_padded_carv1() {
        let mut piece = v1(&[b"one", b"two", b""]);
        piece.extend([0u8; 300]);
        let f = file_of(&piece);
        let index = index_car(&f, piece.len() as u64).unwrap();
        assert_eq!(index.len(), 3);
        assert_eq!(read(&f, index[&raw(b"two")]), b"two");
        assert_eq!(read(&f, index[&raw(b"")]), b"");
    }

    #[test]
    fn indexes_a_carv2_up_to_its_data_size() {
        let inner = v1(&[b"alpha", b"beta"]);
        let mut piece = vec![10u8];
        piece.extend(CARV2_PRAGMA);
        let offset = 11 + 40 + 5u64;
        let mut header = [0u8; 40];
        header[16..24].copy_from_slice(&offset.to_le_bytes());
        header[24..32].copy_from_slice(&(inner.len() as u64).to_le_bytes());
        piece.extend(header);
        piece.extend([0u8; 5]);
        piece.extend(&inner);
        // After the data: a section that must not be read.
        piece.extend(section(&raw(b"outside"), b"outside"));
        let f = file_of(&piece);
        let index = index_car(&f, piece.len() as u64).unwrap();
        assert_eq!(index.len(), 2);
        assert_eq!(read(&f, index[&raw(b"beta")]), b"beta");
        assert!(!index.contains_key(&raw(b"outside")));
    }

    #[test]
    fn garbage_is_no_car_and_a_cut_section_ends_the_index() {
        let f = file_of(&[0u8; 64]);
        assert!(index_car(&f, 64).is_err());
        let f = file_of(b"not a car at all");
        assert!(index_car(&f, 16).is_err());
        let mut piece = v1(&[b"whole"]);
        let cut = section(&raw(b"cut off here"), b"cut off here");
        piece.extend(&cut[..cut.len() - 3]);
        let f = file_of(&piece);
        let index = index_car(&f, piece.len() as u64).unwrap();
        assert_eq!(index.len(), 1);
    }

    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        /// Any bytes: no panic, and every entry lies inside the piece.
        #[test]
        fn any_bytes_index_within_the_piece(bytes in proptest::collection::vec(any::<u8>(), 0..2048), claimed in 0u64..4096) {
            let f = file_of(&bytes);
            if let Ok(index) = index_car(&f, claimed) {
                for (at, n) in index.values() {
                    prop_assert!(at + u64::from(*n) <= claimed.min(bytes.len() as u64));
                }
            }
        }

        /// A real CAR cut anywhere and with bytes changed: no panic; what is indexed lies in
        /// the piece, and a block indexed under its own CID with untouched bytes is read back
        /// exactly (the index never points beside a block).
        #[test]
        fn cut_and_mutated_cars_index_only_what_is_there(
            blocks in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..300), 1..12),
            cut in any::<prop::sample::Index>(),
            flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..4),
        ) {
            let refs: Vec<&[u8]> = blocks.iter().map(Vec::as_slice).collect();
            let whole = v1(&refs);
            let mut piece = whole[..cut.index(whole.len() + 1).max(1).min(whole.len())].to_vec();
            for (i, x) in &flips {
                let i = i.index(piece.len());
                piece[i] ^= x;
            }
            let f = file_of(&piece);
            if let Ok(index) = index_car(&f, piece.len() as u64) {
                for (cid, at) in &index {
                    prop_assert!(at.0 + u64::from(at.1) <= piece.len() as u64);
                    if flips.is_empty() {
                        let bytes = read(&f, *at);
                        prop_assert_eq!(raw(&bytes), *cid, "the index points at the block's bytes");
                    }
                }
                if flips.is_empty() && piece.len() == whole.len() {
                    let distinct: std::collections::HashSet<Cid> = refs.iter().map(|b| raw(b)).collect();
                    prop_assert_eq!(index.len(), distinct.len(), "an uncut CAR: every block");
                }
            }
        }
    }
}
