//! The read path of the EVM JSON-RPC: `eth_call` and `eth_blockNumber` over
//! [`crate::net`] (reqwest natively, `fetch` in the browser). Reads need no provider stack, so the browser package carries none; every
//! reply is read up to a ceiling (`REPLY_TOO_LARGE`) and no URL reaches an error (a hosted
//! RPC URL often carries an API key).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use alloy::primitives::Address;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::{reverted, EvmError};
use crate::bounded::{excerpt, read_body, BodyError};

/// A JSON-RPC endpoint for reads.
#[derive(Clone)]
pub(crate) struct EthRpc {
    client: crate::net::Http,
    url: crate::net::Endpoint,
    max_reply: u64,
    next_id: Arc<AtomicU64>,
}

/// One JSON-RPC reply: a result or an error.
#[derive(Deserialize)]
struct Reply {
    #[serde(default)]
    result: Option<Value>,
    #[serde(default)]
    error: Option<ErrorObject>,
}

#[derive(Deserialize)]
struct ErrorObject {
    #[serde(default)]
    code: i64,
    #[serde(default)]
    message: String,
    #[serde(default)]
    data: Option<Value>,
}

/// Revert data wherever a node puts it: a hex string, or a string inside an object (as
/// ethers and alloy look for it).
fn revert_data(value: &Value) -> Option<Vec<u8>> {
    match value {
        Value::String(s) => alloy::hex::decode(s).ok(),
        Value::Object(o) => o.values().find_map(revert_data),
        _ => None,
    }
}

impl EthRpc {
    /// An endpoint at `url`, reading at most `max_reply` bytes of each reply.
    pub(crate) fn new(url: crate::net::Endpoint, max_reply: u64) -> Self {
        EthRpc {
            client: crate::net::Http::new(),
            url,
            max_reply,
            next_id: Arc::new(AtomicU64::new(1)),
        }
    }

    /// Sends `rpc_method(params)`; errors name `method` (the contract function asked for).
    async fn request(
        &self,
        method: &'static str,
        rpc_method: &str,
        params: Value,
    ) -> Result<Value, EvmError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({ "jsonrpc": "2.0", "id": id, "method": rpc_method, "params": params });
        let failed = |message: String| EvmError::Rpc {
            method,
            message: crate::redact::redact_urls(&message),
        };
        let body = serde_json::to_vec(&body).map_err(|e| failed(e.to_string()))?;
        let resp = self
            .client
            .post_json(&self.url, body, &[])
            .await
            .map_err(|e| failed(e.reason))?;
        let status = resp.status();
        let body = match read_body(resp, self.max_reply).await {
            Ok(body) => body,
            Err(BodyError::TooLarge(e)) => {
                return Err(EvmError::ReplyTooLarge {
                    method,
                    limit: e.limit,
                })
            }
            Err(BodyError::Transport(e)) => return Err(failed(e.reason)),
        };
        // A JSON-RPC error in the body (a revert, a rate limit) is the answer, whatever the
        // status; otherwise a failed status is.
        let reply = match serde_json::from_slice::<Reply>(&body) {
            Ok(reply) => reply,
            Err(_) if !(200..300).contains(&status) => {
                return Err(failed(format!("HTTP {status}: {}", excerpt(&body))))
            }
            Err(e) => {
                return Err(EvmError::Malformed {
                    what: method,
                    reason: format!("not a JSON-RPC reply ({e}): {}", excerpt(&body)),
                })
            }
        };
        if let Some(err) = reply.error {
            if err.message.contains("revert") {
                if let Some(data) = err.data.as_ref().and_then(revert_data) {
                    return Err(reverted(method, &data));
                }
            }
            return Err(failed(format!("error code {}: {}", err.code, err.message)));
        }
        match reply.result {
            Some(v) => Ok(v),
            None if !(200..300).contains(&status) => Err(failed(format!("HTTP {status}"))),
            None => Err(EvmError::Malformed {
                what: method,
                reason: "a reply with neither result nor error".into(),
            }),
        }
    }

    /// `eth_call` of `data` on `to`, at `block` (`None`: the latest); the returned bytes.
    pub(crate) async fn call(
        &self,
        method: &'static str,
        to: Address,
        data: &[u8],
        block: Option<u64>,
    ) -> Result<Vec<u8>, EvmError> {
        let tag = match block {
            Some(n) => format!("0x{n:x}"),
            None => "latest".into(),
        };
        let params =
            json!([{ "to": to.to_string(), "data": alloy::hex::encode_prefixed(data) }, tag]);
        match self.request(method, "eth_call", params).await? {
            Value::String(s) => alloy::hex::decode(&s).map_err(|e| EvmError::Malformed {
                what: method,
                reason: format!("eth_call result is not hex: {e}"),
            }),
            other => Err(EvmError::Malformed {
                what: method,
                reason: format!(
                    "eth_call result is not a string: {}",
                    excerpt(other.to_string().as_bytes())
                ),
            }),
        }
    }

    /// `eth_blockNumber`.
    pub(crate) async fn block_number(&self) -> Result<u64, EvmError> {
        const M: &str = "eth_blockNumber";
        let v = self.request(M, M, json!([])).await?;
        v.as_str()
            .and_then(|s| s.strip_prefix("0x"))
            .and_then(|h| u64::from_str_radix(h, 16).ok())
            .ok_or_else(|| EvmError::Malformed {
                what: M,
                reason: format!("not a hex quantity: {}", excerpt(v.to_string().as_bytes())),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{DealStatusClient, DealStatusConfig};
    use crate::error::ErrorCode;
    use alloy::sol_types::SolError;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    const CID: &str = "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku";
    const ADDRESS: &str = "0x5FbDB2315678afecb367f032d93F642f64180aa3";

    /// An endpoint answering every request with `status` and `body`.
    async fn endpoint(status: u16, body: String) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/rpc?apikey=secret-key",
            listener.local_addr().unwrap()
        );
        tokio::spawn(async move {
            while let Ok((mut s, _)) = listener.accept().await {
                let body = body.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 << 10];
                    let _ = s.read(&mut buf).await;
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = s.write_all(reply.as_bytes()).await;
                });
            }
        });
        url
    }

    async fn read(status: u16, body: &str) -> super::EvmError {
        let url = endpoint(status, body.to_string()).await;
        let c = DealStatusClient::new(DealStatusConfig::new(url, ADDRESS)).unwrap();
        let e = c.all_deals(CID).await.unwrap_err();
        assert!(!e.to_string().contains("secret-key"), "{e}");
        e
    }

    #[tokio::test]
    async fn replies_are_classified_by_what_they_say() {
        let data =
            alloy::hex::encode_prefixed(alloy::sol_types::Revert::from("no such CID").abi_encode());
        let revert = format!(
            r#"{{"jsonrpc":"2.0","id":1,"error":{{"code":3,"message":"execution reverted: no such CID","data":"{data}"}}}}"#
        );
        let e = read(200, &revert).await;
        assert_eq!(
            (e.code(), e.to_string().contains("no such CID")),
            ("TX_REVERTED", true),
            "{e}"
        );
        // Some nodes answer a revert with HTTP 500, or put the data in an object.
        let nested = format!(
            r#"{{"jsonrpc":"2.0","id":1,"error":{{"code":-32000,"message":"execution reverted","data":{{"data":"{data}"}}}}}}"#
        );
        assert_eq!(read(500, &nested).await.code(), "TX_REVERTED");
        // No data, or not a revert: the endpoint's message, retryable.
        let limited =
            r#"{"jsonrpc":"2.0","id":1,"error":{"code":-32005,"message":"rate limited"}}"#;
        let e = read(429, limited).await;
        assert_eq!(
            (e.code(), e.to_string().contains("rate limited")),
            ("RPC_ERROR", true),
            "{e}"
        );
        assert!(e.is_retryable());
        let e = read(502, "<html>bad gateway</html>").await;
        assert_eq!(
            (e.code(), e.to_string().contains("HTTP 502")),
            ("RPC_ERROR", true),
            "{e}"
        );
        // An empty result is no contract; anything else that does not decode is malformed.
        let ok = |result: &str| format!(r#"{{"jsonrpc":"2.0","id":1,"result":{result}}}"#);
        assert_eq!(read(200, &ok(r#""0x""#)).await.code(), "NO_CONTRACT");
        assert_eq!(
            read(200, &ok(r#""0x1234""#)).await.code(),
            "MALFORMED_REPLY"
        );
        assert_eq!(read(200, &ok(r#""0xzz""#)).await.code(), "MALFORMED_REPLY");
        assert_eq!(read(200, &ok("42")).await.code(), "MALFORMED_REPLY");
        assert_eq!(read(200, "not json").await.code(), "MALFORMED_REPLY");
        assert_eq!(
            read(200, r#"{"jsonrpc":"2.0","id":1}"#).await.code(),
            "MALFORMED_REPLY"
        );
    }

    #[tokio::test]
    async fn block_numbers_are_hex_quantities() {
        let url = endpoint(
            200,
            r#"{"jsonrpc":"2.0","id":1,"result":"0x3b9ac9ff"}"#.into(),
        )
        .await;
        let c = DealStatusClient::new(DealStatusConfig::new(url, ADDRESS)).unwrap();
        assert_eq!(c.block_number().await.unwrap(), 999_999_999);
        let url = endpoint(200, r#"{"jsonrpc":"2.0","id":1,"result":"12"}"#.into()).await;
        let c = DealStatusClient::new(DealStatusConfig::new(url, ADDRESS)).unwrap();
        assert_eq!(
            c.block_number().await.unwrap_err().code(),
            "MALFORMED_REPLY"
        );
    }

    #[tokio::test]
    async fn an_unreachable_endpoint_never_shows_its_url() {
        let c = DealStatusClient::new(DealStatusConfig::new(
            "http://127.0.0.1:9/rpc?apikey=secret-key",
            ADDRESS,
        ))
        .unwrap();
        let e = c.all_deals(CID).await.unwrap_err();
        assert_eq!(e.code(), "RPC_ERROR");
        assert!(!e.to_string().contains("secret-key"), "{e}");
    }
}
