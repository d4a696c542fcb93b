//! An IPFS trustless gateway as a source: a CAR of the whole DAG in depth-first order, and
//! single raw blocks for what the CAR did not carry (or where a gateway serves only blocks).

use crate::cid::CidText;
use std::time::Duration;

use bytes::Bytes;
use cid::Cid;
use futures::{StreamExt, TryStreamExt};

use super::error::RetrieveError;
use super::walk::MAX_BLOCK_BYTES;
use crate::bounded::{read_body, BodyError};

/// The response body as a byte stream (not `Send` in browsers).
#[cfg(not(target_family = "wasm"))]
type Body = futures::stream::BoxStream<'static, std::io::Result<Bytes>>;
#[cfg(target_family = "wasm")]
type Body = futures::stream::LocalBoxStream<'static, std::io::Result<Bytes>>;

/// A CAR read off a response as it arrives.
pub(super) type CarStream = iroh_car::CarReader<tokio_util::io::StreamReader<Body, Bytes>>;

/// The CAR request's `Accept`: the trustless-gateway form that lets a client verify while it
/// streams (blocks in DFS order, duplicates sent again).
const CAR_ACCEPT: &str = "application/vnd.ipld.car; version=1; order=dfs; dups=y";
const RAW_ACCEPT: &str = "application/vnd.ipld.raw";

/// One gateway (`https://host[/prefix]`).
#[derive(Debug, Clone)]
pub(super) struct Gateway {
    /// The base URL without a trailing slash.
    pub(super) base: String,
    /// The name in errors and logs: scheme, host and port (no path, query, user or
    /// password, where keys would be).
    pub(super) name: String,
}

/// What a CAR request gave.
pub(super) enum CarAnswer {
    /// A CAR is streaming.
    Car(Box<CarStream>),
    /// The gateway does not serve CARs (406, 501 or another content type): ask per block.
    BlocksOnly,
}

impl Gateway {
    /// A gateway at `url` (http or https), the `n`-th of the list (its name tells two on
    /// one host apart).
    pub(super) fn new(url: &str, n: usize) -> Result<Self, RetrieveError> {
        crate::net::Endpoint::parse(url).map_err(|e| RetrieveError::InvalidUrl {
            reason: format!("gateways: {e} (a gateway url is http(s)://host)"),
        })?;
        // A path can hold a key as well as a query (`https://host/KEY/`): only the scheme,
        // host and port are shown.
        let name = format!(
            "gateway {n} {}",
            crate::redact::redact_url(url.trim_end_matches('/'))
        );
        Ok(Gateway {
            base: url.trim_end_matches('/').to_string(),
            name,
        })
    }

    /// A gateway at `url` named `name` in errors (a storage provider's `/ipfs/`).
    #[cfg(not(target_family = "wasm"))]
    pub(super) fn named(url: &str, name: String) -> Result<Self, RetrieveError> {
        Ok(Gateway {
            name,
            ..Gateway::new(url, 1)?
        })
    }

    fn transport(&self, e: crate::net::NetError) -> RetrieveError {
        RetrieveError::transport(&self.name, e)
    }

    /// Asks for the CAR of `root`.
    pub(super) async fn car(
        &self,
        client: &crate::net::Http,
        root: &Cid,
        wait: Duration,
    ) -> Result<CarAnswer, RetrieveError> {
        let url = format!(
            "{}/ipfs/{}?format=car&dag-scope=all",
            self.base,
            root.shown()
        );
        let resp = crate::rt::timeout(wait, client.get(&url, &[("accept", CAR_ACCEPT)]))
            .await
            .ok_or_else(|| RetrieveError::Timeout {
                origin: self.name.clone(),
                reason: "no answer to the CAR request".into(),
            })?
            .map_err(|e| self.transport(e))?;
        let status = resp.status();
        match status {
            200 => {}
            404 | 410 => {
                return Err(RetrieveError::NotFound {
                    cid: root.text(),
                    tried: format!("answered {status}"),
                })
            }
            406 | 415 | 501 => return Ok(CarAnswer::BlocksOnly),
            _ => {
                return Err(RetrieveError::Http {
                    origin: self.name.clone(),
                    status,
                })
            }
        }
        let content_type = resp
            .header("content-type")
            .unwrap_or_default()
            .to_ascii_lowercase();
        if !content_type.starts_with("application/vnd.ipld.car") {
            return Ok(CarAnswer::BlocksOnly);
        }
        let body: Body = resp
            .into_stream()
            .map_err(std::io::Error::other)
            .boxed_body();
        let reader = tokio_util::io::StreamReader::new(body);
        let car = crate::rt::timeout(wait, iroh_car::CarReader::new(reader))
            .await
            .ok_or_else(|| RetrieveError::Timeout {
                origin: self.name.clone(),
                reason: "no CAR header".into(),
            })?
            .map_err(|e| RetrieveError::Incomplete {
                cid: root.text(),
                origin: self.name.clone(),
                reason: format!("not a CAR: {e}"),
            })?;
        Ok(CarAnswer::Car(Box::new(car)))
    }

    /// Fetches one raw block (at most [`MAX_BLOCK_BYTES`]); `Ok(None)` if the gateway does
    /// not have it.
    pub(super) async fn block(
        &self,
        client: &crate::net::Http,
        cid: &Cid,
        wait: Duration,
    ) -> Result<Option<Vec<u8>>, RetrieveError> {
        let url = format!("{}/ipfs/{}?format=raw", self.base, cid.shown());
        let fetch = async {
            let resp = client
                .get(&url, &[("accept", RAW_ACCEPT)])
                .await
                .map_err(|e| self.transport(e))?;
            let status = resp.status();
            match status {
                200 => {}
                404 | 410 => return Ok(None),
                _ => {
                    return Err(RetrieveError::Http {
                        origin: self.name.clone(),
                        status,
                    })
                }
            }
            match read_body(resp, MAX_BLOCK_BYTES as u64).await {
                Ok(body) => Ok(Some(body)),
                Err(BodyError::TooLarge(e)) => Err(RetrieveError::ReplyTooLarge {
                    origin: self.name.clone(),
                    limit: e.limit,
                }),
                Err(BodyError::Transport(e)) => Err(self.transport(e)),
            }
        };
        crate::rt::timeout(wait, fetch)
            .await
            .ok_or_else(|| RetrieveError::Timeout {
                origin: self.name.clone(),
                reason: format!("block {} took longer than {wait:?}", cid.shown()),
            })?
    }
}

/// Boxes a body stream as `Send` natively and as local in browsers.
trait BoxBody {
    fn boxed_body(self) -> Body;
}

#[cfg(not(target_family = "wasm"))]
impl<S: futures::Stream<Item = std::io::Result<Bytes>> + Send + 'static> BoxBody for S {
    fn boxed_body(self) -> Body {
        self.boxed()
    }
}

#[cfg(target_family = "wasm")]
impl<S: futures::Stream<Item = std::io::Result<Bytes>> + 'static> BoxBody for S {
    fn boxed_body(self) -> Body {
        self.boxed_local()
    }
}
