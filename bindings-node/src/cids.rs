//! Identifiers of data: `computeCids`, `computeCidsFromFile`, `parseCid`, `CidHasher`.

use napi::bindgen_prelude::{AsyncTask, Uint8Array};
use napi::{Env, Task};
use napi_derive::napi;
use raas_core::cid::{self, DataCids};

use crate::error::{to_js, to_js_in_env, Result};

/// The identifiers of a payload.
#[napi(object)]
pub struct Cids {
    /// UnixFS root CIDv1, as `ipfs add --cid-version=1` prints it.
    pub cid: String,
    /// FRC-0069 piece CID v2 (`bafkzcib…`).
    pub piece_cid: String,
    /// Legacy piece CID v1 (`baga6ea4seaq…`), the CommP that deals carry.
    pub comm_p: String,
    /// Padded piece size in bytes.
    pub piece_size: f64,
    /// Payload size in bytes.
    pub size: f64,
}

impl From<DataCids> for Cids {
    fn from(d: DataCids) -> Self {
        Cids {
            cid: d.cid.to_string(),
            piece_cid: d.piece_cid.to_string(),
            comm_p: d.comm_p.to_string(),
            // Exact below 2^53 bytes (8 PiB), far above any piece.
            piece_size: d.piece_size as f64,
            size: d.size as f64,
        }
    }
}

/// The piece commitment of a payload.
#[napi(object)]
pub struct PieceCids {
    /// FRC-0069 piece CID v2 (`bafkzcib…`).
    pub piece_cid: String,
    /// Legacy piece CID v1 (`baga6ea4seaq…`).
    pub comm_p: String,
    /// Padded piece size in bytes.
    pub piece_size: f64,
    /// Payload size in bytes.
    pub size: f64,
}

/// A parsed, normalised CID.
#[napi(object)]
pub struct CidInfo {
    /// The CID as CIDv1 in base32.
    pub cid: String,
    /// The version the input was written in (0 or 1).
    pub version: u32,
    /// Multicodec of the content (0x55 raw, 0x70 dag-pb, 0xf101 piece CID v1, ...).
    pub codec: f64,
    /// Multihash function code (0x12 sha2-256, ...).
    pub multihash_code: f64,
    /// Digest length in bytes.
    pub digest_size: u32,
}

/// Computes the identifiers of `data` synchronously (fine for small inputs; use
/// `computeCidsFromFile` or `CidHasher` for large ones).
///
/// ```js
/// computeCids(Buffer.from('hello')).commP
/// // 'baga6ea4seaq…'
/// ```
#[napi]
pub fn compute_cids(data: Uint8Array) -> Cids {
    cid::compute_cids(&data).into()
}

/// Computes only the piece commitment of `data` (no UnixFS CID).
#[napi]
pub fn compute_piece_cid(data: Uint8Array) -> PieceCids {
    let piece = cid::compute_piece(&data);
    PieceCids {
        piece_cid: piece.piece_cid_v2().to_string(),
        comm_p: piece.comm_p().to_string(),
        piece_size: piece.padded_size as f64,
        size: piece.payload_size as f64,
    }
}

/// Computes only the UnixFS root CID of `data` (no CommP).
#[napi]
pub fn compute_unixfs_cid(data: Uint8Array) -> String {
    cid::compute_unixfs_cid(&data).to_string()
}

/// Computes the identifiers of a file, streamed from disk on the libuv thread pool.
///
/// ```js
/// const ids = await computeCidsFromFile('./video.mp4')
/// ```
#[napi(ts_return_type = "Promise<Cids>")]
pub fn compute_cids_from_file(path: String) -> AsyncTask<FileCidsTask> {
    AsyncTask::new(FileCidsTask { path })
}

/// Hashes one file off the JS thread.
pub struct FileCidsTask {
    path: String,
}

impl Task for FileCidsTask {
    type Output = std::result::Result<DataCids, cid::IdentifyError>;
    type JsValue = Cids;

    fn compute(&mut self) -> napi::Result<Self::Output> {
        Ok(cid::compute_cids_from_file(&self.path))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> napi::Result<Cids> {
        output.map(Cids::from).map_err(|e| to_js_in_env(&env, e))
    }
}

/// Parses a CID (v0 `Qm…`, or v1 in base32, base58btc, base36 or base16) and normalises it to
/// CIDv1 base32. Throws `INVALID_CID` (other multibases included).
///
/// ```js
/// parseCid('QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n').cid // 'bafybei…'
/// ```
#[napi]
pub fn parse_cid(cid: String) -> Result<CidInfo> {
    let info = cid::parse_cid(&cid).map_err(to_js)?;
    Ok(CidInfo {
        cid: info.cid.to_string(),
        version: info.version as u32,
        codec: info.codec as f64,
        multihash_code: info.multihash_code as f64,
        digest_size: u32::from(info.digest_size),
    })
}

/// Streaming hasher: feed chunks with `update`, then call `finish` once.
///
/// ```js
/// const h = new CidHasher()
/// for await (const chunk of fs.createReadStream(path)) h.update(chunk)
/// const ids = h.finish()
/// ```
#[napi]
pub struct CidHasher {
    inner: Option<cid::CidHasher>,
}

#[napi]
impl CidHasher {
    /// A new, empty hasher.
    #[napi(constructor)]
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        CidHasher {
            inner: Some(cid::CidHasher::new()),
        }
    }

    /// Feeds more bytes. Throws `INVALID_STATE` after `finish`.
    #[napi]
    pub fn update(&mut self, data: Uint8Array) -> Result<()> {
        self.live()?.update(&data);
        Ok(())
    }

    /// Bytes fed so far.
    #[napi(getter)]
    pub fn bytes_hashed(&self) -> f64 {
        self.inner.as_ref().map_or(0.0, |h| h.bytes_hashed() as f64)
    }

    /// The identifiers of everything fed. The hasher cannot be used afterwards.
    #[napi]
    pub fn finish(&mut self) -> Result<Cids> {
        self.live()?;
        let hasher = self.inner.take().ok_or_else(finished)?;
        Ok(hasher.finish().into())
    }

    fn live(&mut self) -> Result<&mut cid::CidHasher> {
        self.inner.as_mut().ok_or_else(finished)
    }
}

fn finished() -> napi::Error<crate::error::Code> {
    napi::Error::new(
        crate::error::Code("INVALID_STATE"),
        "CidHasher already finished".to_string(),
    )
}
