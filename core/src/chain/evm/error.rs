//! Errors of the DealStatus client.

use crate::cid::CidError;
use crate::error::ErrorCode;
use crate::podsi::PodsiError;

use super::abi::IDealStatus::IDealStatusErrors;

/// A DealStatus call that did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EvmError {
    /// A CID argument is not a CID (`INVALID_CID`).
    #[error(transparent)]
    InvalidCid(#[from] CidError),
    /// An address argument is not a 0x address (`INVALID_ADDRESS`).
    #[error("invalid {field}: {reason}")]
    InvalidAddress {
        /// Which setting or argument.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// An argument out of its range (`INVALID_ARGUMENT`).
    #[error("invalid {field}: {reason}")]
    InvalidArgument {
        /// Which argument.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The RPC URL cannot be used (`INVALID_URL`).
    #[error("invalid RPC URL: {0}")]
    InvalidUrl(String),
    /// The private key cannot be used (`INVALID_PRIVATE_KEY`). Never contains the key.
    #[error("invalid private key (expected 32 bytes of hex)")]
    InvalidPrivateKey,
    /// A write was asked of a read-only client (`NO_SIGNER`).
    #[error("{0} needs a signer: configure a private key")]
    NoSigner(&'static str),
    /// The endpoint did not answer in time (`RPC_TIMEOUT`).
    #[error("{method} timed out after {millis} ms")]
    Timeout {
        /// The contract function or RPC method.
        method: &'static str,
        /// The time limit.
        millis: u64,
    },
    /// The endpoint failed or refused (`RPC_ERROR`).
    #[error("{method} failed: {message}")]
    Rpc {
        /// The contract function or RPC method.
        method: &'static str,
        /// The endpoint's message.
        message: String,
    },
    /// There is no contract at the address (`NO_CONTRACT`).
    #[error("{method}: no contract code answers at the configured address")]
    NoContract {
        /// The function called.
        method: &'static str,
    },
    /// The contract reverted (`TX_REVERTED`), with its decoded reason.
    #[error("{method} reverted: {reason}")]
    Reverted {
        /// The function called.
        method: &'static str,
        /// Decoded revert reason or custom error.
        reason: String,
    },
    /// A reply that does not decode (`MALFORMED_REPLY`).
    #[error("{what}: malformed reply: {reason}")]
    Malformed {
        /// What was being decoded.
        what: &'static str,
        /// Why it failed.
        reason: String,
    },
    /// The inclusion proof does not verify (`INVALID_PROOF`); nothing was sent.
    #[error(transparent)]
    InvalidProof(#[from] PodsiError),
    /// `complete`: the market does not know the deal (`DEAL_NOT_FOUND`); nothing was sent.
    #[error("{method}: the market has no deal {deal_id}")]
    DealNotFound {
        /// The function called.
        method: &'static str,
        /// The deal named.
        deal_id: u64,
    },
    /// `complete`: the deal is not the proof's aggregate or not the named provider's
    /// (`DEAL_MISMATCH`); nothing was sent.
    #[error("{method}: deal {deal_id} does not match: {reason}")]
    DealMismatch {
        /// The function called.
        method: &'static str,
        /// The deal named.
        deal_id: u64,
        /// Which field differs, with both values.
        reason: String,
    },
    /// The endpoint's reply was over the configured ceiling and was cut
    /// (`REPLY_TOO_LARGE`).
    #[error("{method}: the reply is over the limit of {limit} bytes")]
    ReplyTooLarge {
        /// The contract function or RPC method.
        method: &'static str,
        /// The limit, in bytes.
        limit: u64,
    },
}

impl ErrorCode for EvmError {
    fn code(&self) -> &'static str {
        match self {
            EvmError::InvalidCid(e) => e.code(),
            EvmError::InvalidAddress { .. } => "INVALID_ADDRESS",
            EvmError::InvalidArgument { .. } => "INVALID_ARGUMENT",
            EvmError::InvalidUrl(_) => "INVALID_URL",
            EvmError::InvalidPrivateKey => "INVALID_PRIVATE_KEY",
            EvmError::NoSigner(_) => "NO_SIGNER",
            EvmError::Timeout { .. } => "RPC_TIMEOUT",
            EvmError::Rpc { .. } => "RPC_ERROR",
            EvmError::NoContract { .. } => "NO_CONTRACT",
            EvmError::Reverted { .. } => "TX_REVERTED",
            EvmError::Malformed { .. } => "MALFORMED_REPLY",
            EvmError::InvalidProof(e) => e.code(),
            EvmError::DealNotFound { .. } => "DEAL_NOT_FOUND",
            EvmError::DealMismatch { .. } => "DEAL_MISMATCH",
            EvmError::ReplyTooLarge { .. } => "REPLY_TOO_LARGE",
        }
    }

    fn is_retryable(&self) -> bool {
        matches!(self, EvmError::Timeout { .. } | EvmError::Rpc { .. })
    }
}

#[cfg(not(target_family = "wasm"))]
impl EvmError {
    /// Classifies an alloy contract error: reverts are decoded, empty replies mean no code.
    pub(crate) fn from_contract(method: &'static str, err: alloy::contract::Error) -> Self {
        if let Some(data) = err.as_revert_data() {
            return reverted(method, &data);
        }
        match err {
            alloy::contract::Error::ZeroData(..) => EvmError::NoContract { method },
            alloy::contract::Error::TransportError(e) => EvmError::from_transport(method, e),
            alloy::contract::Error::AbiError(e) => EvmError::Malformed {
                what: method,
                reason: e.to_string(),
            },
            other => EvmError::Rpc {
                method,
                message: crate::redact::redact_urls(&other.to_string()),
            },
        }
    }

    pub(crate) fn from_transport(
        method: &'static str,
        err: alloy::transports::TransportError,
    ) -> Self {
        if let Some(data) = err.as_error_resp().and_then(|e| e.as_revert_data()) {
            return reverted(method, &data);
        }
        if let Some(e) = super::transport::too_large(&err) {
            return EvmError::ReplyTooLarge {
                method,
                limit: e.limit,
            };
        }
        EvmError::Rpc {
            method,
            message: crate::redact::redact_urls(&err.to_string()),
        }
    }
}

/// A revert, typed where the contract said why the deal is refused.
pub(crate) fn reverted(method: &'static str, data: &[u8]) -> EvmError {
    use alloy::sol_types::SolInterface;
    match IDealStatusErrors::abi_decode(data) {
        Ok(IDealStatusErrors::DealNotFound(e)) => EvmError::DealNotFound {
            method,
            deal_id: e.dealId,
        },
        Ok(IDealStatusErrors::DealPieceMismatch(e)) => EvmError::DealMismatch {
            method,
            deal_id: e.dealId,
            reason: format!(
                "DealPieceMismatch: the deal holds {} of {} bytes, the proof's aggregate is {} of {} bytes",
                piece_text(&e.dealPiece),
                e.dealSize,
                piece_text(&e.proofPiece),
                e.proofSize
            ),
        },
        Ok(IDealStatusErrors::DealProviderMismatch(e)) => EvmError::DealMismatch {
            method,
            deal_id: e.dealId,
            reason: format!(
                "DealProviderMismatch: the deal's provider is f0{}, not f0{}",
                e.provider, e.minerId
            ),
        },
        _ => EvmError::Reverted {
            method,
            reason: revert_reason(data),
        },
    }
}

/// A binary piece CID as text, or its hex when it is not a CID.
fn piece_text(bytes: &[u8]) -> String {
    match cid::Cid::try_from(bytes) {
        Ok(c) => crate::cid::cid_text(&c),
        Err(_) => format!("0x{}", hex::encode(bytes)),
    }
}

/// Decodes revert data: `Error(string)`, `Panic(uint)` or one of the contract's errors.
pub(crate) fn revert_reason(data: &[u8]) -> String {
    use alloy::sol_types::SolInterface;
    if let Some(reason) = alloy::sol_types::decode_revert_reason(data) {
        return reason;
    }
    match IDealStatusErrors::abi_decode(data) {
        Ok(IDealStatusErrors::NotOwner(_)) => "NotOwner()".into(),
        Ok(IDealStatusErrors::NotAggregator(e)) => format!("NotAggregator({})", e.caller),
        Ok(IDealStatusErrors::InvalidRequestId(e)) => format!("InvalidRequestId({})", e.id),
        Ok(IDealStatusErrors::InvalidDealId(_)) => "InvalidDealId()".into(),
        Ok(IDealStatusErrors::DealNotFound(e)) => format!("DealNotFound({})", e.dealId),
        Ok(IDealStatusErrors::DealPieceMismatch(e)) => format!("DealPieceMismatch({})", e.dealId),
        Ok(IDealStatusErrors::DealProviderMismatch(e)) => {
            format!(
                "DealProviderMismatch({}, {}, {})",
                e.dealId, e.provider, e.minerId
            )
        }
        Ok(IDealStatusErrors::ZeroAddress(_)) => "ZeroAddress()".into(),
        Ok(IDealStatusErrors::NotPendingOwner(_)) => "NotPendingOwner()".into(),
        Ok(IDealStatusErrors::InvalidPage(e)) => format!("InvalidPage({}, {})", e.start, e.limit),
        Err(_) if data.is_empty() => "no reason given".into(),
        Err(_) => format!("unknown revert data 0x{}", alloy::hex::encode(data)),
    }
}
