//! How a CID becomes the `bytes` key of the DealStatus contract.

use crate::cid::CidText;
use crate::cid::{parse_cid, CidError};

/// Encoding of CID keys. The same content in two encodings gives two unrelated keys, so
/// choose what the contract's writers used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CidKeyEncoding {
    /// UTF-8 bytes of the CID string, normalised to CIDv1 base32: what raas writes and what
    /// deployed RaaS nodes use for v1 CIDs. The default.
    #[default]
    Utf8,
    /// UTF-8 bytes of the CID string exactly as given (validated, not normalised), for
    /// contracts that were fed `Qm…` strings.
    Utf8Verbatim,
    /// Binary CID bytes (CIDv1), as the reference contract's tests use.
    Binary,
}

impl CidKeyEncoding {
    /// The contract key of `cid`. Validates the CID first: bad input is `INVALID_CID`.
    pub fn key(self, cid: &str) -> Result<Vec<u8>, CidError> {
        let info = parse_cid(cid)?;
        Ok(match self {
            CidKeyEncoding::Utf8 => info.cid.text().into_bytes(),
            CidKeyEncoding::Utf8Verbatim => cid.as_bytes().to_vec(),
            CidKeyEncoding::Binary => info.cid.to_bytes(),
        })
    }

    /// The CID a key stands for, when it decodes as one (UTF-8 text or binary CID).
    pub fn cid_of_key(key: &[u8]) -> Option<String> {
        if let Ok(text) = std::str::from_utf8(key) {
            if let Ok(info) = parse_cid(text) {
                return Some(info.cid.text());
            }
        }
        cid::Cid::try_from(key).ok().map(|c| c.text())
    }
}
