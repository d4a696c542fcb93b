//! The EVM JSON-RPC transport: HTTP through reqwest, as alloy's own, but with every reply
//! read up to a ceiling (`REPLY_TOO_LARGE`) and no URL in spans or errors (a hosted RPC URL
//! often carries an API key).

use std::task::{Context, Poll};

use alloy::rpc::json_rpc::{RequestPacket, ResponsePacket};
use alloy::transports::{TransportError, TransportErrorKind, TransportFut};

use crate::bounded::{excerpt, read_body, BodyError, ReplyTooLarge};

/// HTTP transport with a bounded reply.
#[derive(Clone)]
pub(crate) struct BoundedHttp {
    client: reqwest::Client,
    url: reqwest::Url,
    max_reply: u64,
}

impl BoundedHttp {
    /// A transport posting to `url`, reading at most `max_reply` bytes of each reply.
    pub(crate) fn new(url: reqwest::Url, max_reply: u64) -> Self {
        BoundedHttp {
            client: reqwest::Client::new(),
            url,
            max_reply,
        }
    }

    async fn send(self, req: RequestPacket) -> Result<ResponsePacket, TransportError> {
        let resp = self
            .client
            .post(self.url)
            .json(&req)
            .headers(req.headers())
            .send()
            .await
            .map_err(|e| TransportErrorKind::custom(e.without_url()))?;
        let status = resp.status();
        let body = match read_body(resp, self.max_reply).await {
            Ok(body) => body,
            Err(BodyError::TooLarge(e)) => return Err(TransportErrorKind::custom(e)),
            Err(BodyError::Transport(e)) => return Err(TransportErrorKind::custom_str(&e.reason)),
        };
        if !status.is_success() {
            // A JSON-RPC error in the body (a revert, a rate limit) is the answer; otherwise
            // the status is.
            if let Ok(packet) = serde_json::from_slice::<ResponsePacket>(&body) {
                if packet.is_error() {
                    return Ok(packet);
                }
            }
            return Err(TransportErrorKind::http_error(
                status.as_u16(),
                excerpt(&body),
            ));
        }
        serde_json::from_slice(&body).map_err(|e| TransportError::deser_err(e, excerpt(&body)))
    }
}

impl tower::Service<RequestPacket> for BoundedHttp {
    type Response = ResponsePacket;
    type Error = TransportError;
    type Future = TransportFut<'static>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // reqwest is always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: RequestPacket) -> Self::Future {
        Box::pin(self.clone().send(req))
    }
}

/// The ceiling a transport error reports, when it is a cut reply.
pub(crate) fn too_large(err: &TransportError) -> Option<ReplyTooLarge> {
    match err {
        TransportError::Transport(TransportErrorKind::Custom(e)) => {
            e.downcast_ref::<ReplyTooLarge>().copied()
        }
        _ => None,
    }
}
