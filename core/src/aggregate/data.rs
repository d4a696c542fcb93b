//! The bytes of an aggregate deal, as a storage provider receives them: each piece's
//! payload at its segment's (unpadded) offset, zeros between, and the data segment index
//! at the end, written so that the deal's CommP is the aggregate's.

use std::io::{self, Read, Write};

use super::Aggregate;
use crate::cid::piece::{PieceHasher, QUAD_INPUT};
use crate::error::ErrorCode;
use crate::podsi::{index_area_start, index_entry};

/// Why an aggregate's bytes could not be written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// A piece's bytes are not the piece the aggregate holds (code `INTEGRITY`).
    #[error("pieces[{piece}]: {reason}")]
    Mismatch {
        /// Which piece.
        piece: usize,
        /// What differs.
        reason: String,
    },
    /// More or fewer pieces than the aggregate holds (code `INVALID_ARGUMENT`).
    #[error("invalid pieces: {0}")]
    Count(String),
    /// Reading a piece or writing the output failed (code `IO`).
    #[error("{what}: {source}")]
    Io {
        /// What was being read or written.
        what: String,
        /// The I/O error.
        source: io::Error,
    },
}

impl ErrorCode for WriteError {
    fn code(&self) -> &'static str {
        match self {
            WriteError::Mismatch { .. } => "INTEGRITY",
            WriteError::Count(_) => "INVALID_ARGUMENT",
            WriteError::Io { .. } => "IO",
        }
    }
}

/// Unpadded bytes of `padded` padded bytes.
fn unpadded(padded: u64) -> u64 {
    padded / 128 * 127
}

/// Writes an aggregate's bytes in order: [`AggregateWriter::piece`] once per piece, then
/// [`AggregateWriter::finish`]. Each piece's CommP is recomputed as it streams through and
/// must equal the aggregate's, so a wrong file never reaches a provider.
pub struct AggregateWriter<'a, W: Write> {
    aggregate: &'a Aggregate,
    out: W,
    next: usize,
    /// Unpadded bytes written so far.
    at: u64,
}

impl<'a, W: Write> AggregateWriter<'a, W> {
    /// A writer of `aggregate`'s bytes into `out`.
    pub fn new(aggregate: &'a Aggregate, out: W) -> Self {
        AggregateWriter {
            aggregate,
            out,
            next: 0,
            at: 0,
        }
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), WriteError> {
        self.out.write_all(bytes).map_err(|source| WriteError::Io {
            what: "writing the aggregate".into(),
            source,
        })
    }

    fn zeros(&mut self, mut n: u64) -> Result<(), WriteError> {
        let buf = [0u8; 64 * 1024];
        while n > 0 {
            let k = n.min(buf.len() as u64) as usize;
            self.write(&buf[..k])?;
            n -= k as u64;
        }
        Ok(())
    }

    /// Writes the next piece's payload (at most its unpadded size), read to its end.
    pub fn piece<R: Read>(&mut self, mut payload: R) -> Result<(), WriteError> {
        let n = self.next;
        let (Some(segment), Some(piece)) =
            (self.aggregate.segments.get(n), self.aggregate.pieces.get(n))
        else {
            return Err(WriteError::Count(format!(
                "the aggregate holds {} pieces",
                self.aggregate.segments.len()
            )));
        };
        let start = unpadded(segment.offset);
        self.zeros(start.saturating_sub(self.at))?;
        let capacity = unpadded(segment.size);
        let mut hasher = PieceHasher::new();
        let mut buf = vec![0u8; 1 << 20];
        let mut len = 0u64;
        loop {
            let k = match payload.read(&mut buf) {
                Ok(k) => k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(WriteError::Io {
                        what: format!("reading pieces[{n}]"),
                        source,
                    })
                }
            };
            if k == 0 {
                break;
            }
            len += k as u64;
            if len > capacity {
                return Err(WriteError::Mismatch {
                    piece: n,
                    reason: format!("longer than the piece's {capacity} unpadded bytes"),
                });
            }
            hasher.update(&buf[..k]);
            self.write(&buf[..k])?;
        }
        let got = hasher.finish().padded_to(segment.size);
        if got.map(|p| p.root) != Some(piece.root) {
            return Err(WriteError::Mismatch {
                piece: n,
                reason: "its bytes do not hash to its piece CID".into(),
            });
        }
        self.zeros(capacity - len)?;
        self.at = start + capacity;
        self.next += 1;
        Ok(())
    }

    /// Writes the zeros after the last piece and the index; returns the output.
    pub fn finish(mut self) -> Result<W, WriteError> {
        let a = self.aggregate;
        if self.next != a.segments.len() {
            return Err(WriteError::Count(format!(
                "{} of {} pieces written",
                self.next,
                a.segments.len()
            )));
        }
        let size = a.piece.padded_size;
        // Aggregates are only built with an index area (`aggregate` checks the size).
        let index_start = index_area_start(size).unwrap_or(size);
        self.zeros(unpadded(index_start).saturating_sub(self.at))?;
        // The index area in quads of four nodes, each unpadded from 128 bytes to 127.
        let quads = (size - index_start) / 128;
        let mut nodes = [[0u8; 32]; 4];
        let mut entries = a
            .pieces
            .iter()
            .zip(&a.segments)
            .map(|(p, s)| index_entry(&p.root, s.offset, s.size));
        for _ in 0..quads {
            for pair in nodes.chunks_exact_mut(2) {
                let entry = entries.next().unwrap_or([[0u8; 32]; 2]);
                pair[0] = entry[0];
                pair[1] = entry[1];
            }
            let quad = fr32_unpad(&nodes);
            self.write(&quad)?;
        }
        self.out.flush().map_err(|source| WriteError::Io {
            what: "writing the aggregate".into(),
            source,
        })?;
        Ok(self.out)
    }
}

/// The 127 bytes whose Fr32 expansion is these four nodes (each of 254 bits: the top two
/// bits of the last byte are zero, as index entries are built).
fn fr32_unpad(nodes: &[[u8; 32]; 4]) -> [u8; QUAD_INPUT] {
    let mut out = [0u8; QUAD_INPUT];
    for (k, node) in nodes.iter().enumerate() {
        let bit = 254 * k;
        let (at, shift) = (bit / 8, bit % 8);
        for (b, &byte) in node.iter().enumerate() {
            let v = u16::from(byte & if b == 31 { 0x3f } else { 0xff }) << shift;
            if let Some(o) = out.get_mut(at + b) {
                *o |= v as u8;
            }
            if let Some(o) = out.get_mut(at + b + 1) {
                *o |= (v >> 8) as u8;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::aggregate;
    use super::*;
    use crate::cid::compute_piece;

    #[test]
    fn the_written_deal_hashes_to_the_aggregate() {
        let payloads: Vec<Vec<u8>> = [100usize, 3000, 127, 1 << 14, 5000]
            .iter()
            .enumerate()
            .map(|(i, &n)| (0..n).map(|j| (j * 31 + i * 7) as u8).collect())
            .collect();
        let pieces: Vec<_> = payloads.iter().map(|p| compute_piece(p)).collect();
        let a = aggregate(&pieces, 1 << 20).unwrap();
        let mut w = AggregateWriter::new(&a, Vec::new());
        for p in &payloads {
            w.piece(p.as_slice()).unwrap();
        }
        let bytes = w.finish().unwrap();
        assert_eq!(bytes.len() as u64, unpadded(1 << 20));
        let got = compute_piece(&bytes);
        assert_eq!(got.root, a.piece.root);
        assert_eq!(got.padded_size, 1 << 20);
    }

    #[test]
    fn wrong_bytes_or_counts_are_refused() {
        let pieces = [compute_piece(b"one"), compute_piece(b"two")];
        let a = aggregate(&pieces, 1 << 12).unwrap();
        let mut w = AggregateWriter::new(&a, Vec::new());
        let e = w.piece(&b"uno"[..]).unwrap_err();
        assert_eq!(e.code(), "INTEGRITY");
        let mut w = AggregateWriter::new(&a, Vec::new());
        w.piece(&b"one"[..]).unwrap();
        assert_eq!(w.finish().unwrap_err().code(), "INVALID_ARGUMENT");
        let mut w = AggregateWriter::new(&a, Vec::new());
        let long = vec![1u8; 200];
        assert_eq!(w.piece(long.as_slice()).unwrap_err().code(), "INTEGRITY");
    }
}
