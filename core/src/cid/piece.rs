//! Filecoin piece commitments (CommP) computed from a byte stream.
//!
//! The algorithm (lotus-api notes §5.3): zero-pad the payload to `127·2^k` bytes, expand
//! every 127 bytes to 128 with Fr32 bit padding, and fold the 32-byte leaves with SHA-256
//! whose output has its top two bits cleared. The tree is built as the data streams in, so
//! memory stays constant; on native targets big updates are hashed on several cores.

use cid::{multihash::Multihash, Cid};
pub(crate) use raas_piece_hash::hash_pair;
use raas_piece_hash::{quad_root, subtree_root};

use super::{
    CidError, FIL_COMMITMENT_UNSEALED, FR32_SHA256_TRUNC254_PADBINTREE, RAW_CODEC,
    SHA2_256_TRUNC254_PADDED,
};

pub use raas_piece_hash::QUAD_INPUT;
/// The highest tree level tracked; 2^63 quads is beyond any possible piece.
const MAX_LEVELS: usize = 64;

/// A binary counter of subtree roots: `levels[l]` holds a complete subtree of `2^l` quads.
#[derive(Clone)]
struct Accumulator {
    levels: [[u8; 32]; MAX_LEVELS],
    occupied: u64,
}

impl Accumulator {
    fn new() -> Self {
        Accumulator {
            levels: [[0u8; 32]; MAX_LEVELS],
            occupied: 0,
        }
    }

    /// Adds a complete subtree of `2^level` quads after everything pushed so far. Callers
    /// only push at `level` when no lower level is occupied (the quad count is aligned).
    fn push(&mut self, mut level: usize, mut node: [u8; 32]) {
        while level < MAX_LEVELS - 1 && self.occupied & (1 << level) != 0 {
            node = hash_pair(&self.levels[level], &node);
            self.occupied &= !(1 << level);
            level += 1;
        }
        self.levels[level] = node;
        self.occupied |= 1 << level;
    }
}

/// Roots of the all-zero subtrees: `zero_roots()[l]` covers `2^l` zero quads.
fn zero_root(level: usize) -> [u8; 32] {
    let mut node = quad_root(&[0u8; QUAD_INPUT]);
    for _ in 0..level {
        node = hash_pair(&node, &node);
    }
    node
}

/// The commitment of a piece and its sizes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PieceInfo {
    /// The 32-byte CommP root.
    pub root: [u8; 32],
    /// Padded piece size in bytes (a power of two, at least 128).
    pub padded_size: u64,
    /// Payload bytes hashed.
    pub payload_size: u64,
}

impl PieceInfo {
    /// Tree height: log2 of the number of 32-byte leaves.
    pub fn height(&self) -> u8 {
        (self.padded_size.trailing_zeros() - 5) as u8
    }

    /// Unpadded piece size (`padded · 127 / 128`).
    pub fn unpadded_size(&self) -> u64 {
        self.padded_size / 128 * 127
    }

    /// The same payload as a piece of `padded_size` (a larger power of two): the tree
    /// grown with zero subtrees on the right, as a deal padded to a minimum size commits to
    /// it. `None` if `padded_size` is not a power of two at least this piece's size.
    pub fn padded_to(&self, padded_size: u64) -> Option<PieceInfo> {
        if !padded_size.is_power_of_two() || padded_size < self.padded_size {
            return None;
        }
        let mut root = self.root;
        let mut height = self.padded_size.trailing_zeros() - 7;
        while 128u64 << height < padded_size {
            root = hash_pair(&root, &zero_root(height as usize));
            height += 1;
        }
        Some(PieceInfo {
            root,
            padded_size,
            payload_size: self.payload_size,
        })
    }

    /// The legacy piece CID v1 (`baga6ea4seaq…`): codec fil-commitment-unsealed, multihash
    /// sha2-256-trunc254-padded. This is the CID deal proposals carry.
    pub fn comm_p(&self) -> Cid {
        // A 32-byte digest always fits the 64-byte multihash, so wrap cannot fail.
        let mh = Multihash::<64>::wrap(SHA2_256_TRUNC254_PADDED, &self.root).unwrap_or_default();
        Cid::new_v1(FIL_COMMITMENT_UNSEALED, mh)
    }

    /// The FRC-0069 piece CID v2 (`bafkzcib…`), which also encodes the size and padding.
    pub fn piece_cid_v2(&self) -> Cid {
        let padding = self.unpadded_size() - self.payload_size;
        let mut digest = Vec::with_capacity(10 + 1 + 32);
        let mut v = padding;
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                digest.push(byte);
                break;
            }
            digest.push(byte | 0x80);
        }
        digest.push(self.height());
        digest.extend_from_slice(&self.root);
        let mh =
            Multihash::<64>::wrap(FR32_SHA256_TRUNC254_PADBINTREE, &digest).unwrap_or_default();
        Cid::new_v1(RAW_CODEC, mh)
    }
}

/// Streaming CommP hasher.
///
/// ```
/// use raas_core::cid::piece::PieceHasher;
/// let mut h = PieceHasher::new();
/// h.update(b"hello ");
/// h.update(b"world\n");
/// let piece = h.finish();
/// assert_eq!(piece.padded_size, 128);
/// assert_eq!(piece.comm_p().to_string(),
///     "baga6ea4seaqdnumj2qy2m33n4gq3aizapmnpfim5s5s7tufhjfaij7lolfogqdq");
/// ```
#[derive(Clone)]
pub struct PieceHasher {
    acc: Accumulator,
    partial: [u8; QUAD_INPUT],
    partial_len: usize,
    quads: u64,
    payload: u64,
    threads: usize,
}

impl Default for PieceHasher {
    fn default() -> Self {
        Self::new()
    }
}

/// Quads per work unit of whole subtrees: 2^8 quads = 32 512 input bytes.
const UNIT_LEVEL: usize = 8;

impl PieceHasher {
    /// A hasher that uses every available core for large updates (one on wasm).
    pub fn new() -> Self {
        PieceHasher {
            acc: Accumulator::new(),
            partial: [0u8; QUAD_INPUT],
            partial_len: 0,
            quads: 0,
            payload: 0,
            threads: default_threads(),
        }
    }

    /// Limits the number of threads used for large updates (at least 1).
    pub fn with_threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// Payload bytes hashed so far.
    pub fn bytes_hashed(&self) -> u64 {
        self.payload
    }

    /// Feeds more payload bytes.
    pub fn update(&mut self, mut data: &[u8]) {
        self.payload += data.len() as u64;
        if self.partial_len > 0 {
            let take = (QUAD_INPUT - self.partial_len).min(data.len());
            self.partial[self.partial_len..self.partial_len + take].copy_from_slice(&data[..take]);
            self.partial_len += take;
            data = &data[take..];
            if self.partial_len < QUAD_INPUT {
                return;
            }
            let chunk = self.partial;
            self.push_quad(&chunk);
            self.partial_len = 0;
        }
        let whole = data.len() - data.len() % QUAD_INPUT;
        let (body, rest) = data.split_at(whole);
        self.absorb(body);
        self.partial[..rest.len()].copy_from_slice(rest);
        self.partial_len = rest.len();
    }

    fn push_quad(&mut self, chunk: &[u8; QUAD_INPUT]) {
        self.acc.push(0, quad_root(chunk));
        self.quads += 1;
    }

    /// Hashes whole quads (`body.len()` is a multiple of 127).
    fn absorb(&mut self, mut body: &[u8]) {
        let unit_quads = 1u64 << UNIT_LEVEL;
        let unit = QUAD_INPUT << UNIT_LEVEL;
        if body.len() >= 2 * unit {
            // Reach a unit boundary of the tree one quad at a time, then hash whole units.
            while !self.quads.is_multiple_of(unit_quads) {
                let (chunk, rest) = body.split_at(QUAD_INPUT);
                if let Ok(chunk) = <&[u8; QUAD_INPUT]>::try_from(chunk) {
                    self.push_quad(chunk);
                }
                body = rest;
            }
            let units = body.len() / unit;
            let (whole, rest) = body.split_at(units * unit);
            for root in subtree_roots(whole, unit, self.threads) {
                self.acc.push(UNIT_LEVEL, root);
            }
            self.quads += units as u64 * unit_quads;
            body = rest;
        }
        for chunk in body.as_chunks::<QUAD_INPUT>().0 {
            self.push_quad(chunk);
        }
    }

    /// Pads the piece to a power of two and returns its commitment.
    pub fn finish(mut self) -> PieceInfo {
        if self.partial_len > 0 || self.quads == 0 {
            let mut chunk = [0u8; QUAD_INPUT];
            chunk[..self.partial_len].copy_from_slice(&self.partial[..self.partial_len]);
            self.push_quad(&chunk);
        }
        let height = self.quads.next_power_of_two().trailing_zeros() as usize;
        // Fill the right side with zero subtrees until one root of 2^height quads remains.
        while self.acc.occupied != 1 << height {
            let lowest = self.acc.occupied.trailing_zeros() as usize;
            self.acc.push(lowest, zero_root(lowest));
        }
        PieceInfo {
            root: self.acc.levels[height],
            padded_size: 128u64 << height,
            payload_size: self.payload,
        }
    }
}

#[cfg(not(target_family = "wasm"))]
fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

#[cfg(target_family = "wasm")]
fn default_threads() -> usize {
    1
}

/// Subtree roots of consecutive `unit`-byte slices, hashed on up to `threads` threads.
fn subtree_roots(data: &[u8], unit: usize, threads: usize) -> Vec<[u8; 32]> {
    let units = data.len() / unit;
    #[cfg(not(target_family = "wasm"))]
    if threads > 1 && units > 1 {
        let per_thread = units.div_ceil(threads.min(units));
        return std::thread::scope(|scope| {
            let handles: Vec<_> = data
                .chunks(per_thread * unit)
                .map(|part| {
                    scope.spawn(move || {
                        part.chunks_exact(unit)
                            .map(subtree_root)
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| match h.join() {
                    Ok(roots) => roots,
                    // Hashing cannot panic; re-raise if the impossible happens rather than
                    // return a wrong commitment.
                    Err(panic) => std::panic::resume_unwind(panic),
                })
                .collect()
        });
    }
    let _ = threads;
    data.chunks_exact(unit)
        .take(units)
        .map(subtree_root)
        .collect()
}

/// Reads a piece CID: v1 (`baga6ea4seaq…`, which carries no size, so `padded_size` is
/// required) or v2 (`bafkzcib…`, FRC-0069, which carries its size; a `padded_size` given
/// beside it must agree). A v1 piece is taken as unpadded payload (`payload_size` is the
/// unpadded size). Errors are `INVALID_CID`, naming the input and the reason.
pub fn parse_piece_cid(input: &str, padded_size: Option<u64>) -> Result<PieceInfo, CidError> {
    let cid = super::parse_cid(input)?.cid;
    let bad = |reason: String| CidError::invalid(input, reason);
    let mh = cid.hash();
    match (cid.codec(), mh.code()) {
        (FIL_COMMITMENT_UNSEALED, SHA2_256_TRUNC254_PADDED) => {
            let root = <[u8; 32]>::try_from(mh.digest())
                .map_err(|_| bad("a piece CID v1 digest is 32 bytes".into()))?;
            if root[31] & 0xc0 != 0 {
                return Err(bad(
                    "root has its top two bits set: no data hashes to it".into()
                ));
            }
            let size =
                padded_size.ok_or_else(|| bad("a piece CID v1 needs its padded size".into()))?;
            if !size.is_power_of_two() || size < 128 {
                return Err(bad(format!(
                    "padded size {size} is not a power of two of at least 128"
                )));
            }
            Ok(PieceInfo {
                root,
                padded_size: size,
                payload_size: size / 128 * 127,
            })
        }
        (RAW_CODEC, FR32_SHA256_TRUNC254_PADBINTREE) => {
            let (padding, rest) = unsigned_varint::decode::u64(mh.digest())
                .map_err(|_| bad("the v2 digest's padding is not a varint".into()))?;
            let [height, root @ ..] = rest else {
                return Err(bad("the v2 digest has no height".into()));
            };
            let root = <[u8; 32]>::try_from(root)
                .map_err(|_| bad("the v2 digest's root is not 32 bytes".into()))?;
            if root[31] & 0xc0 != 0 {
                return Err(bad(
                    "root has its top two bits set: no data hashes to it".into()
                ));
            }
            if !(2..=58).contains(height) {
                return Err(bad(format!("tree height {height} is out of range")));
            }
            let size = 32u64 << height;
            let unpadded = size / 128 * 127;
            if padding > unpadded {
                return Err(bad(format!("padding {padding} exceeds the piece")));
            }
            if let Some(given) = padded_size.filter(|&g| g != size) {
                return Err(bad(format!(
                    "the CID says padded size {size}, the size given is {given}"
                )));
            }
            Ok(PieceInfo {
                root,
                padded_size: size,
                payload_size: unpadded - padding,
            })
        }
        (codec, hash) => Err(bad(format!(
            "not a piece CID (codec 0x{codec:x}, multihash 0x{hash:x})"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece_of(data: &[u8]) -> PieceInfo {
        let mut h = PieceHasher::new();
        h.update(data);
        h.finish()
    }

    /// Growing a piece with zero subtrees equals hashing the payload zero-filled to the
    /// larger size.
    #[test]
    fn padded_to_matches_zero_filled_payload() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        let small = piece_of(&data);
        assert_eq!(small.padded_size, 1024);
        for padded in [1024u64, 2048, 1 << 16] {
            let mut filled = data.clone();
            filled.resize((padded / 128 * 127) as usize, 0);
            let grown = small.padded_to(padded).unwrap();
            assert_eq!(grown.root, piece_of(&filled).root, "{padded}");
            assert_eq!(grown.padded_size, padded);
        }
        assert!(small.padded_to(512).is_none());
        assert!(small.padded_to(3000).is_none());
    }

    /// FRC-0069 and the lotus-api notes' vectors.
    #[test]
    fn known_vectors() {
        let mut four = Vec::new();
        for b in 0u8..4 {
            four.extend(std::iter::repeat_n(b, 127));
        }
        let mut four_plus = four.clone();
        four_plus.extend([0u8; 4]);
        let cases: Vec<(Vec<u8>, u64, &str, &str)> = vec![
            (
                four,
                512,
                "baga6ea4seaqes3nobte6ezpp4wqan2age2s5yxcatzotcvobhgcmv5wi2xh5mbi",
                "bafkzcibcaaces3nobte6ezpp4wqan2age2s5yxcatzotcvobhgcmv5wi2xh5mbi",
            ),
            (
                four_plus,
                1024,
                "baga6ea4seaqn42av3szurbbscwuu3zjssvfwbpsvbjf6y3tukvlgl2nf5rha6pa",
                "bafkzcibd7abqlxticxolgseegik2stpfgkkuwyf6kufex3doorkvmzpjuxwe4dz4",
            ),
            (
                vec![],
                128,
                "baga6ea4seaqdomn3tgwgrh3g532zopskstnbrd2n3sxfqbze7rxt7vqn7veigmy",
                "bafkzcibcp4bdomn3tgwgrh3g532zopskstnbrd2n3sxfqbze7rxt7vqn7veigmy",
            ),
            (
                vec![0; 127],
                128,
                "baga6ea4seaqdomn3tgwgrh3g532zopskstnbrd2n3sxfqbze7rxt7vqn7veigmy",
                "bafkzcibcaabdomn3tgwgrh3g532zopskstnbrd2n3sxfqbze7rxt7vqn7veigmy",
            ),
            (
                vec![0; 128],
                256,
                "baga6ea4seaqgiktap34inmaex4wbs6cghlq5i2j2yd2bb2zndn5ep7ralzphkdy",
                "bafkzcibcpybwiktap34inmaex4wbs6cghlq5i2j2yd2bb2zndn5ep7ralzphkdy",
            ),
            (
                vec![0; 2032],
                2048,
                "baga6ea4seaqpy7usqklokfx2vxuynmupslkeutzexe2uqurdg5vhtebhxqmpqmy",
                "bafkzcibcaadpy7usqklokfx2vxuynmupslkeutzexe2uqurdg5vhtebhxqmpqmy",
            ),
            (
                b"hello world\n".to_vec(),
                128,
                "baga6ea4seaqdnumj2qy2m33n4gq3aizapmnpfim5s5s7tufhjfaij7lolfogqdq",
                "bafkzcibcombdnumj2qy2m33n4gq3aizapmnpfim5s5s7tufhjfaij7lolfogqdq",
            ),
        ];
        for (data, padded, v1, v2) in cases {
            let p = piece_of(&data);
            assert_eq!(p.padded_size, padded, "len {}", data.len());
            assert_eq!(p.comm_p().to_string(), v1, "len {}", data.len());
            assert_eq!(p.piece_cid_v2().to_string(), v2, "len {}", data.len());
        }
    }

    /// The 32 GiB zero vector, computed from the zero-subtree roots without hashing 32 GiB.
    #[test]
    fn large_zero_piece_roots() {
        // 32 GiB padded = 2^28 quads; 64 GiB = 2^29 quads.
        let r32 = PieceInfo {
            root: zero_root(28),
            padded_size: 32 << 30,
            payload_size: 0,
        };
        assert_eq!(
            r32.comm_p().to_string(),
            "baga6ea4seaqao7s73y24kcutaosvacpdjgfe5pw76ooefnyqw4ynr3d2y6x2mpq"
        );
        let r64 = PieceInfo {
            root: zero_root(29),
            padded_size: 64 << 30,
            payload_size: 0,
        };
        assert_eq!(
            r64.comm_p().to_string(),
            "baga6ea4seaqomqafu276g53zko4k23xzh4h4uecjwicbmvhsuqi7o4bhthhm4aq"
        );
    }

    /// Split points, thread counts and the parallel path all give the same root.
    #[test]
    fn chunking_and_threads_do_not_change_the_result() {
        let data: Vec<u8> = (0..(QUAD_INPUT << 12) + 999)
            .map(|i| (i * 31 % 251) as u8)
            .collect();
        let reference = {
            let mut h = PieceHasher::new().with_threads(1);
            h.update(&data);
            h.finish()
        };
        for (threads, step) in [(2, 1_000_003), (4, 333_333), (2, 127), (3, 100_000), (2, 7)] {
            let mut h = PieceHasher::new().with_threads(threads);
            for part in data.chunks(step) {
                h.update(part);
            }
            assert_eq!(h.finish(), reference, "threads {threads} step {step}");
        }
    }
}
