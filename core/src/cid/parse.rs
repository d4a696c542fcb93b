//! Parsing, validation and normalisation of CID strings.

use cid::{Cid, Version};

use crate::error::ErrorCode;

/// Longest CID string accepted. Real CIDs are far shorter (a sha2-256 CIDv1 in base32 is 59
/// characters); the bound keeps hostile input from costing anything.
const MAX_CID_STRING_LEN: usize = 512;

/// A CID string that could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CidError {
    /// The text is not a valid CID (code `INVALID_CID`).
    #[error("invalid CID {input:?}: {reason}")]
    Invalid {
        /// The offending input, cut to a readable length.
        input: String,
        /// Why it was rejected.
        reason: String,
    },
}

impl CidError {
    pub(crate) fn invalid(input: &str, reason: impl Into<String>) -> Self {
        let mut shown: String = input.chars().take(80).collect();
        if shown.len() < input.len() {
            shown.push('…');
        }
        CidError::Invalid {
            input: shown,
            reason: reason.into(),
        }
    }
}

impl ErrorCode for CidError {
    fn code(&self) -> &'static str {
        match self {
            CidError::Invalid { .. } => "INVALID_CID",
        }
    }
}

/// What a parsed CID is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CidInfo {
    /// The CID normalised to version 1 (its string form is base32, lower case).
    pub cid: Cid,
    /// The version the input was written in (0 or 1).
    pub version: u64,
    /// Multicodec of the content (0x55 raw, 0x70 dag-pb, 0xf101 piece, ...).
    pub codec: u64,
    /// Multihash function code (0x12 sha2-256, ...).
    pub multihash_code: u64,
    /// Length of the digest in bytes.
    pub digest_size: u8,
}

/// Parses a CID (v0 `Qm…`, or v1 in base32, base58btc, base36 or base16: see
/// [`super::parse_cid_text`]) and normalises it to CIDv1.
///
/// CIDv0 becomes the equivalent CIDv1 with codec dag-pb. Surrounding whitespace, empty input
/// and over-long input are rejected rather than silently fixed, so a stored key is always what
/// the caller meant.
pub fn parse_cid(input: &str) -> Result<CidInfo, CidError> {
    if input.is_empty() {
        return Err(CidError::invalid(input, "empty string"));
    }
    if input.len() > MAX_CID_STRING_LEN {
        return Err(CidError::invalid(
            input,
            format!("longer than {MAX_CID_STRING_LEN} characters"),
        ));
    }
    if input.trim() != input {
        return Err(CidError::invalid(input, "leading or trailing whitespace"));
    }
    let parsed = super::parse_cid_text(input).map_err(|e| CidError::invalid(input, e))?;
    let version = match parsed.version() {
        Version::V0 => 0,
        Version::V1 => 1,
    };
    let cid = parsed
        .into_v1()
        .map_err(|e| CidError::invalid(input, e.to_string()))?;
    Ok(CidInfo {
        version,
        codec: cid.codec(),
        multihash_code: cid.hash().code(),
        digest_size: cid.hash().size(),
        cid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v0_is_normalised_to_v1_base32() {
        let info = parse_cid("QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n").unwrap();
        assert_eq!(info.version, 0);
        assert_eq!(info.codec, 0x70);
        assert_eq!(
            info.cid.to_string(),
            "bafybeihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
        );
    }

    #[test]
    fn other_multibases_normalise_to_the_same_cid() {
        let b32 = parse_cid("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku").unwrap();
        let upper =
            parse_cid("BAFKREIHDWDCEFGH4DQKJV67UZCMW7OJEE6XEDZDETOJUZJEVTENXQUVYKU").unwrap();
        let b58 = parse_cid(
            &b32.cid
                .to_string_of_base(cid::multibase::Base::Base58Btc)
                .unwrap(),
        )
        .unwrap();
        assert_eq!(b32.cid, upper.cid);
        assert_eq!(b32.cid, b58.cid);
        assert_eq!(b32.codec, 0x55);
    }

    #[test]
    fn bad_input_is_rejected_with_a_reason() {
        for bad in [
            "",
            " bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku",
            "hello",
            "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyk",
            "Qm123",
        ] {
            let err = parse_cid(bad).unwrap_err();
            assert_eq!(err.code(), "INVALID_CID");
            let CidError::Invalid { reason, .. } = &err;
            assert!(!reason.is_empty());
        }
        let long = "b".repeat(600);
        assert!(parse_cid(&long)
            .unwrap_err()
            .to_string()
            .contains("longer than"));
    }
}
