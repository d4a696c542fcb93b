//! Bounded reads of HTTP bodies: a reply from outside (Lotus, an EVM RPC, a pin service, a
//! gateway or a storage provider) is read up to a configured size and cut there, so an
//! endless or huge reply costs at most that much memory and is never stored.

/// Default ceiling of a JSON-RPC reply (Lotus or EVM): a batch of 100 deals is ~100 KiB, a
/// page of logs a few MiB.
pub const DEFAULT_MAX_RPC_REPLY: u64 = 16 << 20;

/// Default ceiling of a pin service's reply, which is kept as the delivery's receipt.
pub const DEFAULT_MAX_RECEIPT: u64 = 64 << 10;

/// A reply over its limit (`REPLY_TOO_LARGE`): what was read is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the reply is over the limit of {limit} bytes")]
pub struct ReplyTooLarge {
    /// The limit, in bytes.
    pub limit: u64,
}

/// Why a bounded read failed.
#[derive(Debug)]
pub(crate) enum BodyError {
    /// More than the limit arrived, or was announced by `Content-Length`.
    TooLarge(ReplyTooLarge),
    /// The connection failed mid-body.
    Transport(crate::net::NetError),
}

/// Reads `resp`'s body, at most `limit` bytes. A `Content-Length` above the limit is refused
/// before any byte is read; a body without one is cut as soon as it passes the limit.
pub(crate) async fn read_body(
    resp: impl Into<crate::net::Reply>,
    limit: u64,
) -> Result<Vec<u8>, BodyError> {
    let mut resp = resp.into();
    let too_large = BodyError::TooLarge(ReplyTooLarge { limit });
    let announced = resp.content_length();
    if announced.is_some_and(|n| n > limit) {
        return Err(too_large);
    }
    // Preallocate what was announced (bounded by the limit), never more.
    let mut body = Vec::with_capacity(announced.unwrap_or(0).min(limit).min(1 << 20) as usize);
    while let Some(chunk) = resp.chunk().await.map_err(BodyError::Transport)? {
        if (body.len() + chunk.len()) as u64 > limit {
            return Err(too_large);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The start of a reply, for an error message (a reply may be up to the ceiling).
pub(crate) fn excerpt(body: &[u8]) -> String {
    String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned()
}

impl crate::error::ErrorCode for ReplyTooLarge {
    fn code(&self) -> &'static str {
        "REPLY_TOO_LARGE"
    }
}
