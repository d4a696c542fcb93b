//! Storage providers as sources: who holds a CID's active deals (found by a
//! [`ProviderFinder`], the engine's reads DealStatus and Lotus) and where each says it can be
//! reached over HTTP (its `StateMinerInfo` multiaddrs).

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use cid::Cid;
use multiaddr::{Multiaddr, Protocol};

use super::error::RetrieveError;

/// Most providers tried per retrieval (each costs a chain read and a connection).
pub const MAX_PROVIDERS: usize = 8;
/// Most HTTP addresses kept per provider.
pub const MAX_URLS: usize = 2;
/// Most multiaddrs read per provider (a miner's list is set by its owner: anyone).
const MAX_MULTIADDRS: usize = 32;
/// Largest multiaddr read, in bytes.
const MAX_MULTIADDR_BYTES: usize = 1024;

/// One active deal's piece at a provider, and where to fetch it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderPiece {
    /// The provider's ID address (`f01234`).
    pub provider: String,
    /// Its HTTP retrieval bases (`http(s)://host:port[/path]`), from its multiaddrs.
    pub urls: Vec<String>,
    /// The deal's piece CID (v1, `baga…`).
    pub piece_cid: Cid,
    /// The deal's padded piece size.
    pub piece_size: u64,
}

/// A boxed future of a finder.
pub type FinderFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<ProviderPiece>, RetrieveError>> + Send + 'a>>;

/// Finds the providers holding a CID's active deals (the engine reads the chain).
pub trait ProviderFinder: Send + Sync + std::fmt::Debug {
    /// The pieces of `root`'s active deals with their providers' addresses, at most
    /// [`MAX_PROVIDERS`] providers; empty when none is known.
    fn find<'a>(&'a self, root: &'a Cid) -> FinderFuture<'a>;
}

/// The HTTP bases among a provider's multiaddrs (Lotus JSON: base64 of the binary form),
/// at most [`MAX_URLS`]; what is not an HTTP address, or does not decode, is skipped.
pub fn http_urls(multiaddrs: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for b64 in multiaddrs.iter().take(MAX_MULTIADDRS) {
        if b64.len() > MAX_MULTIADDR_BYTES * 2 {
            continue;
        }
        let Ok(bytes) = data_encoding::BASE64.decode(b64.as_bytes()) else {
            continue;
        };
        let Ok(addr) = Multiaddr::try_from(bytes) else {
            continue;
        };
        if let Some(url) = http_url(&addr) {
            if !out.contains(&url) {
                out.push(url);
            }
        }
        if out.len() == MAX_URLS {
            break;
        }
    }
    out
}

/// `/ip4|ip6|dns|dns4|dns6/…/tcp/N/(tls/)http|https[/http-path/P]` as a base URL.
pub fn http_url(addr: &Multiaddr) -> Option<String> {
    let mut host = None;
    let mut port = None;
    let mut tls = false;
    let mut scheme = None;
    let mut path = String::new();
    for p in addr.iter() {
        match p {
            Protocol::Ip4(a) => host = Some(IpAddr::V4(a).to_string()),
            Protocol::Ip6(a) => host = Some(format!("[{a}]")),
            Protocol::Dns(n) | Protocol::Dns4(n) | Protocol::Dns6(n) => {
                let n = n.trim_end_matches('.');
                if n.is_empty()
                    || !n
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                {
                    return None;
                }
                host = Some(n.to_ascii_lowercase());
            }
            Protocol::Tcp(n) => port = Some(n),
            Protocol::Tls => tls = true,
            Protocol::Http => scheme = Some(if tls { "https" } else { "http" }),
            Protocol::Https => scheme = Some("https"),
            Protocol::HttpPath(p) => {
                // Kept only as plain path characters: it ends up in a URL we request.
                let p = p.trim_matches('/');
                if !p.bytes().all(|b| {
                    b.is_ascii_alphanumeric() || matches!(b, b'/' | b'-' | b'_' | b'.' | b'~')
                }) {
                    return None;
                }
                if !p.is_empty() {
                    path = format!("/{p}");
                }
            }
            Protocol::P2p(_) | Protocol::Sni(_) => {}
            _ => return None,
        }
    }
    let (host, scheme) = (host?, scheme?);
    let port = match (port, scheme) {
        (Some(p), _) => p,
        (None, "https") => 443,
        (None, _) => 80,
    };
    Some(format!("{scheme}://{host}:{port}{path}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        let a: Multiaddr = s.parse().unwrap();
        data_encoding::BASE64.encode(&a.to_vec())
    }

    #[test]
    fn http_multiaddrs_become_urls() {
        let cases = [
            (
                "/ip4/127.0.0.1/tcp/8080/http",
                Some("http://127.0.0.1:8080"),
            ),
            (
                "/dns/sp.example.com/tcp/443/https",
                Some("https://sp.example.com:443"),
            ),
            (
                "/dns4/SP.example.com/tcp/443/tls/http",
                Some("https://sp.example.com:443"),
            ),
            ("/ip6/::1/tcp/80/http", Some("http://[::1]:80")),
            (
                "/ip4/10.0.0.1/tcp/80/http/http-path/%2Fboost",
                Some("http://10.0.0.1:80/boost"),
            ),
            ("/ip4/10.0.0.1/tcp/24001", None),
            ("/ip4/10.0.0.1/udp/1/quic-v1", None),
            ("/ip4/10.0.0.1/tcp/80/ws", None),
        ];
        for (addr, want) in cases {
            let a: Multiaddr = addr.parse().unwrap();
            assert_eq!(http_url(&a).as_deref(), want, "{addr}");
        }
    }

    #[test]
    fn lists_skip_what_is_not_http_and_keep_two() {
        let list = vec![
            "!!".to_string(),
            data_encoding::BASE64.encode(&[0xff, 0xff, 0xff]),
            b64("/ip4/10.0.0.1/tcp/24001"),
            b64("/ip4/10.0.0.1/tcp/80/http"),
            b64("/ip4/10.0.0.1/tcp/80/http"),
            b64("/ip4/10.0.0.2/tcp/80/http"),
            b64("/ip4/10.0.0.3/tcp/80/http"),
        ];
        assert_eq!(
            http_urls(&list),
            vec!["http://10.0.0.1:80", "http://10.0.0.2:80"]
        );
    }
}
