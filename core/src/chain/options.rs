//! Options of the chain clients as hosts pass them (JS objects, config files): validated
//! here once, with errors that name the field, for every binding.

use std::time::Duration;

use serde::Deserialize;

use super::evm::{
    CidKeyEncoding, DealStatusClient, DealStatusConfig, EvmError, MULTICALL3_ADDRESS,
};
use super::lotus::{LotusClient, LotusConfig, LotusError};
use crate::error::ErrorCode;

/// Options that cannot be used (code `INVALID_OPTIONS`), naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid options: {0}")]
pub struct OptionsError(pub String);

impl ErrorCode for OptionsError {
    fn code(&self) -> &'static str {
        "INVALID_OPTIONS"
    }
}

/// Options of a `DealStatusClient`.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
pub struct DealStatusOptions {
    /// FEVM JSON-RPC endpoint.
    pub rpc_url: String,
    /// DealStatus contract address.
    pub address: String,
    /// How CIDs become contract keys: UTF-8 of the CIDv1 string (`"utf8"`, the default),
    /// of the string as given (`"utf8Verbatim"`), or binary (`"binary"`).
    #[serde(default)]
    #[cfg_attr(
        feature = "ts",
        ts(optional, type = r#""utf8" | "utf8Verbatim" | "binary""#)
    )]
    pub key_encoding: Option<String>,
    /// Multicall3 address (canonical by default).
    #[serde(default)]
    pub multicall_address: Option<String>,
    /// CIDs per Multicall3 round trip (1–500, default 50).
    #[serde(default)]
    pub batch_size: Option<u32>,
    /// Round trips in flight (1–64, default 4).
    #[serde(default)]
    pub concurrency: Option<u32>,
    /// Per-call time limit in milliseconds (default 30 000).
    #[serde(default)]
    pub timeout_ms: Option<u32>,
    /// Signing key for writes (hex). Never logged. Node only: the browser package reads,
    /// and refuses it with `INVALID_ARGUMENT`.
    #[serde(default)]
    pub private_key: Option<String>,
    /// Ceiling of one RPC reply in bytes (1 KiB–1 GiB, default 16 MiB): a larger or endless
    /// one is cut with `REPLY_TOO_LARGE`.
    #[serde(default)]
    pub max_reply_bytes: Option<u32>,
    /// Lotus endpoint `complete` reads each deal from before sending (`DEAL_NOT_FOUND`,
    /// `DEAL_MISMATCH` without spending gas); the contract checks the deal either way.
    #[serde(default)]
    pub lotus: Option<LotusOptions>,
}

impl std::fmt::Debug for DealStatusOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DealStatusOptions")
            .field("rpc_url", &crate::redact::redact_url(&self.rpc_url))
            .field("address", &self.address)
            .field(
                "private_key",
                &self.private_key.as_ref().map(|_| "<redacted>"),
            )
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for LotusOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LotusOptions")
            .field("url", &crate::redact::redact_url(&self.url))
            .finish_non_exhaustive()
    }
}

/// Options of a `LotusClient`.
#[derive(Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
pub struct LotusOptions {
    /// Endpoint, e.g. `https://api.node.glif.io/rpc/v1`.
    pub url: String,
    /// API token (JWT); read methods need none. Never logged.
    #[serde(default)]
    pub token: Option<String>,
    /// Per-request time limit in milliseconds (default 30 000).
    #[serde(default)]
    pub timeout_ms: Option<u32>,
    /// Retries of transient failures (0–10, default 3).
    #[serde(default)]
    pub retries: Option<u32>,
    /// Calls per JSON-RPC batch (1–10 000, default 100).
    #[serde(default)]
    pub batch_size: Option<u32>,
    /// Batches in flight (1–64, default 4).
    #[serde(default)]
    pub concurrency: Option<u32>,
    /// Ceiling of one reply in bytes (1 KiB–1 GiB, default 16 MiB): a larger or endless one
    /// is cut with `REPLY_TOO_LARGE`.
    #[serde(default)]
    pub max_reply_bytes: Option<u32>,
}

fn in_range(field: &str, v: Option<u32>, lo: u32, hi: u32) -> Result<Option<u32>, OptionsError> {
    match v {
        Some(x) if x < lo || x > hi => Err(OptionsError(format!(
            "{field} must be in {lo}..={hi}, got {x}"
        ))),
        other => Ok(other),
    }
}

/// A client could not be built from options.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// Bad options.
    #[error(transparent)]
    Options(#[from] OptionsError),
    /// The DealStatus client refused them.
    #[error(transparent)]
    Evm(#[from] EvmError),
    /// The Lotus client refused them.
    #[error(transparent)]
    Lotus(#[from] LotusError),
}

impl ErrorCode for BuildError {
    fn code(&self) -> &'static str {
        match self {
            BuildError::Options(e) => e.code(),
            BuildError::Evm(e) => e.code(),
            BuildError::Lotus(e) => e.code(),
        }
    }
}

impl DealStatusOptions {
    /// Parses options from JSON (as a binding receives them).
    pub fn from_json(v: serde_json::Value) -> Result<Self, OptionsError> {
        serde_json::from_value(v).map_err(|e| OptionsError(e.to_string()))
    }

    /// Builds the client (with a signer when `privateKey` is set).
    pub fn build(self) -> Result<DealStatusClient, BuildError> {
        let key_encoding = match self.key_encoding.as_deref() {
            None | Some("utf8") => CidKeyEncoding::Utf8,
            Some("utf8Verbatim") => CidKeyEncoding::Utf8Verbatim,
            Some("binary") => CidKeyEncoding::Binary,
            Some(other) => {
                return Err(OptionsError(format!(
                    "keyEncoding must be \"utf8\", \"utf8Verbatim\" or \"binary\", got {other:?}"
                ))
                .into())
            }
        };
        let defaults = DealStatusConfig::new(self.rpc_url, self.address);
        let config = DealStatusConfig {
            key_encoding,
            multicall_address: self
                .multicall_address
                .unwrap_or_else(|| MULTICALL3_ADDRESS.into()),
            batch_size: in_range("batchSize", self.batch_size, 1, 500)?
                .map_or(defaults.batch_size, |v| v as usize),
            concurrency: in_range("concurrency", self.concurrency, 1, 64)?
                .map_or(defaults.concurrency, |v| v as usize),
            timeout: in_range("timeoutMs", self.timeout_ms, 1, 600_000)?
                .map_or(defaults.timeout, |v| Duration::from_millis(v.into())),
            max_reply_bytes: in_range("maxReplyBytes", self.max_reply_bytes, 1 << 10, 1 << 30)?
                .map_or(defaults.max_reply_bytes, u64::from),
            ..defaults
        };
        let client = match self.private_key {
            Some(key) => DealStatusClient::with_signer(config, &key)?,
            None => DealStatusClient::new(config)?,
        };
        Ok(match self.lotus {
            Some(lotus) => client.with_lotus(lotus.build()?),
            None => client,
        })
    }
}

impl LotusOptions {
    /// Parses options from JSON (as a binding receives them).
    pub fn from_json(v: serde_json::Value) -> Result<Self, OptionsError> {
        serde_json::from_value(v).map_err(|e| OptionsError(e.to_string()))
    }

    /// Builds the client.
    pub fn build(self) -> Result<LotusClient, BuildError> {
        let defaults = LotusConfig::new(self.url);
        let config = LotusConfig {
            token: self.token,
            timeout: in_range("timeoutMs", self.timeout_ms, 1, 600_000)?
                .map_or(defaults.timeout, |v| Duration::from_millis(v.into())),
            retries: in_range("retries", self.retries, 0, 10)?.unwrap_or(defaults.retries),
            batch_size: in_range("batchSize", self.batch_size, 1, 10_000)?
                .map_or(defaults.batch_size, |v| v as usize),
            concurrency: in_range("concurrency", self.concurrency, 1, 64)?
                .map_or(defaults.concurrency, |v| v as usize),
            max_reply_bytes: in_range("maxReplyBytes", self.max_reply_bytes, 1 << 10, 1 << 30)?
                .map_or(defaults.max_reply_bytes, u64::from),
            ..defaults
        };
        Ok(LotusClient::new(config)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn debug_output_shows_no_secret() {
        let o = DealStatusOptions::from_json(json!({
            "rpcUrl": "https://rpc.example/v1/KEYINPATH?apikey=KEYINQUERY",
            "address": "0x0000000000000000000000000000000000000001",
            "privateKey": "0xPRIVATEKEY",
            "lotus": {"url": "https://u:PASSWORD@lotus.example/rpc/v1", "token": "LOTUSTOKEN"},
        }))
        .unwrap();
        let shown = format!("{o:?} {:?}", o.lotus);
        for secret in [
            "KEYINPATH",
            "KEYINQUERY",
            "PRIVATEKEY",
            "PASSWORD",
            "LOTUSTOKEN",
        ] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
        assert!(shown.contains("rpc.example"), "{shown}");
    }

    #[test]
    fn bad_options_name_the_field() {
        let e = DealStatusOptions::from_json(
            json!({"rpcUrl": "http://x", "address": "0x0", "bogus": 1}),
        )
        .unwrap_err();
        assert!(e.0.contains("bogus"), "{e}");
        let e = DealStatusOptions::from_json(json!({"address": "0x0"})).unwrap_err();
        assert!(e.0.contains("rpcUrl"), "{e}");
        let o = DealStatusOptions::from_json(json!({"rpcUrl": "http://127.0.0.1:1", "address":
            "0x0000000000000000000000000000000000000001", "batchSize": 0}))
        .unwrap();
        let e = o.build().unwrap_err();
        assert_eq!(e.code(), "INVALID_OPTIONS");
        assert!(e.to_string().contains("batchSize"));
        let o = DealStatusOptions::from_json(
            json!({"rpcUrl": "http://127.0.0.1:1", "address": "0x12"}),
        )
        .unwrap();
        assert_eq!(o.build().unwrap_err().code(), "INVALID_ADDRESS");
        let o = DealStatusOptions::from_json(json!({"rpcUrl": "http://127.0.0.1:1", "address":
            "0x0000000000000000000000000000000000000001", "privateKey": "0xdeadbeef-secret"}))
        .unwrap();
        let e = o.build().unwrap_err();
        assert_eq!(e.code(), "INVALID_PRIVATE_KEY");
        assert!(
            !e.to_string().contains("secret"),
            "keys never appear in errors"
        );
        let l = LotusOptions::from_json(json!({"url": "ftp://x"})).unwrap();
        assert_eq!(l.build().unwrap_err().code(), "INVALID_URL");
        let l = LotusOptions::from_json(json!({"url": "http://x/rpc/v1", "retries": 11})).unwrap();
        assert!(l.build().unwrap_err().to_string().contains("retries"));
    }
}
