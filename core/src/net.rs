//! HTTP for what runs in both builds (the Lotus and EVM reads, gateway retrieval): reqwest
//! natively; in the browser, `fetch` itself.
//!
//! reqwest's browser client is a wrapper of `fetch` too, but it brings `url`, `http` and its
//! own request types into the wasm module (about 60 KB of code). What the clients need is
//! small: a GET or a JSON POST with a few headers, the status, two or three reply headers
//! and the body as a stream, read within a limit.

use bytes::Bytes;
use futures::Stream;

/// A transport failure, without the URL (an endpoint URL may carry a key).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NetError {
    /// The request or the body timed out (reqwest's own timeouts; ours wrap the calls).
    pub timeout: bool,
    /// What failed, for an error message.
    pub reason: String,
}

impl std::fmt::Display for NetError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for NetError {}

/// An http(s) URL with a host, checked and parsed once when a client is built (natively the
/// parsed `reqwest::Url`, so a request does not parse it again).
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    url: imp::Url,
}

impl Endpoint {
    /// `input` as an endpoint; the error says why not, without repeating the input.
    pub(crate) fn parse(input: &str) -> Result<Self, String> {
        Ok(Endpoint {
            url: imp::check_url(input)?,
        })
    }

    /// The URL as text.
    #[cfg(test)]
    pub(crate) fn as_str(&self) -> &str {
        self.url.as_str()
    }

    /// The parsed URL, for native clients that build their own requests (alloy's transport).
    #[cfg(not(target_family = "wasm"))]
    pub(crate) fn url(&self) -> &reqwest::Url {
        &self.url
    }
}

/// The message for a URL that does not parse: internationalised hosts are refused (see
/// `Cargo.toml`'s note on `idna_adapter`), and the message says how to write one.
fn url_error(input: &str, e: impl std::fmt::Display) -> String {
    if input.is_ascii() {
        e.to_string()
    } else {
        format!("{e}: host names must be ASCII (write an internationalised name in its xn-- form)")
    }
}

/// A reply whose status and headers have arrived; the body has not been read.
pub(crate) struct Reply {
    status: u16,
    inner: imp::Reply,
}

impl Reply {
    /// The HTTP status.
    pub(crate) fn status(&self) -> u16 {
        self.status
    }

    /// A header's value, if present and text.
    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.inner.header(name)
    }

    /// The announced body length.
    pub(crate) fn content_length(&self) -> Option<u64> {
        self.header("content-length")?.trim().parse().ok()
    }

    /// The next piece of the body; `None` at its end.
    pub(crate) async fn chunk(&mut self) -> Result<Option<Bytes>, NetError> {
        self.inner.chunk().await
    }

    /// The body as a stream of pieces.
    pub(crate) fn into_stream(self) -> impl Stream<Item = Result<Bytes, NetError>> {
        futures::stream::unfold(self, |mut reply| async move {
            match reply.chunk().await {
                Ok(Some(b)) => Some((Ok(b), reply)),
                Ok(None) => None,
                Err(e) => Some((Err(e), reply)),
            }
        })
    }
}

/// The HTTP client of the chain clients and retrieval.
#[derive(Debug, Clone, Default)]
pub(crate) struct Http {
    inner: imp::Client,
}

impl Http {
    /// A client with the platform's defaults.
    pub(crate) fn new() -> Self {
        Http::default()
    }

    /// `POST url` with a JSON body and `headers`.
    pub(crate) async fn post_json(
        &self,
        url: &Endpoint,
        body: Vec<u8>,
        headers: &[(&str, &str)],
    ) -> Result<Reply, NetError> {
        let (status, inner) = self
            .inner
            .send("POST", url.url.clone(), Some(body), headers)
            .await?;
        Ok(Reply { status, inner })
    }

    /// `GET url` with `headers` (`url` built from an [`Endpoint`]).
    pub(crate) async fn get(&self, url: &str, headers: &[(&str, &str)]) -> Result<Reply, NetError> {
        let (status, inner) = self.inner.send("GET", url, None, headers).await?;
        Ok(Reply { status, inner })
    }
}

#[cfg(not(target_family = "wasm"))]
mod imp {
    use super::NetError;
    use bytes::Bytes;

    pub(super) type Url = reqwest::Url;

    pub(super) fn check_url(input: &str) -> Result<Url, String> {
        let url = reqwest::Url::parse(input).map_err(|e| super::url_error(input, e))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!(
                "unsupported scheme {:?} (http or https)",
                url.scheme()
            ));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err("no host".into());
        }
        Ok(url)
    }

    impl From<reqwest::Error> for NetError {
        fn from(e: reqwest::Error) -> Self {
            let timeout = e.is_timeout();
            let reason = if e.is_connect() {
                "connection failed".to_string()
            } else if e.is_timeout() {
                "timed out".to_string()
            } else if e.is_body() || e.is_decode() {
                "reading the reply failed".to_string()
            } else {
                e.without_url().to_string()
            };
            NetError { timeout, reason }
        }
    }

    #[derive(Debug, Clone, Default)]
    pub(super) struct Client(reqwest::Client);

    impl Client {
        pub(super) async fn send(
            &self,
            method: &str,
            url: impl reqwest::IntoUrl,
            body: Option<Vec<u8>>,
            headers: &[(&str, &str)],
        ) -> Result<(u16, Reply), NetError> {
            let mut req = match method {
                "POST" => self.0.post(url),
                _ => self.0.get(url),
            };
            if let Some(body) = body {
                req = req.header("content-type", "application/json").body(body);
            }
            for (name, value) in headers {
                req = req.header(*name, *value);
            }
            let resp = req.send().await?;
            Ok((resp.status().as_u16(), Reply(resp)))
        }
    }

    pub(super) struct Reply(reqwest::Response);

    /// A reply of a native-only caller's own reqwest request, read through [`super::Reply`]
    /// (bounded reads).
    impl From<reqwest::Response> for super::Reply {
        fn from(resp: reqwest::Response) -> Self {
            super::Reply {
                status: resp.status().as_u16(),
                inner: Reply(resp),
            }
        }
    }

    impl Reply {
        pub(super) fn header(&self, name: &str) -> Option<String> {
            let v = self.0.headers().get(name)?;
            v.to_str().ok().map(str::to_string)
        }

        pub(super) async fn chunk(&mut self) -> Result<Option<Bytes>, NetError> {
            Ok(self.0.chunk().await?)
        }
    }
}

#[cfg(target_family = "wasm")]
mod imp {
    use super::NetError;
    use bytes::Bytes;
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;

    pub(super) type Url = String;

    /// The browser's own URL parser: http(s) with a host.
    pub(super) fn check_url(input: &str) -> Result<Url, String> {
        let url = web_sys::Url::new(input).map_err(|_| super::url_error(input, "not a URL"))?;
        // The browser would convert an internationalised host; natively it is refused (no
        // Unicode tables), and both builds take the same URLs.
        let authority = input
            .split_once("://")
            .map(|(_, rest)| rest.split(['/', '?', '#']).next().unwrap_or(rest))
            .unwrap_or(input);
        if !authority.is_ascii() {
            return Err(super::url_error(input, "not an ASCII host"));
        }
        let scheme = url.protocol();
        if scheme != "http:" && scheme != "https:" {
            return Err(format!(
                "unsupported scheme {:?} (http or https)",
                scheme.trim_end_matches(':')
            ));
        }
        if url.host().is_empty() {
            return Err("no host".into());
        }
        Ok(input.to_string())
    }

    fn failed(_: JsValue) -> NetError {
        // fetch reports CORS refusals and unreachable hosts alike, without detail.
        NetError {
            timeout: false,
            reason: "request failed (unreachable, or the endpoint refuses cross-origin requests)"
                .into(),
        }
    }

    #[derive(Debug, Clone, Default)]
    pub(super) struct Client;

    impl Client {
        pub(super) async fn send(
            &self,
            method: &str,
            url: impl AsRef<str>,
            body: Option<Vec<u8>>,
            headers: &[(&str, &str)],
        ) -> Result<(u16, Reply), NetError> {
            let url = url.as_ref();
            let init = web_sys::RequestInit::new();
            init.set_method(method);
            // Dropping the call (our timeout, or a caller that stopped waiting) aborts the
            // fetch, so a hung endpoint does not keep holding one of the browser's few
            // connections to its host.
            let abort = Abort(web_sys::AbortController::new().ok());
            if let Some(c) = &abort.0 {
                init.set_signal(Some(&c.signal()));
            }
            let h = web_sys::Headers::new().map_err(failed)?;
            if let Some(body) = body {
                h.append("content-type", "application/json")
                    .map_err(failed)?;
                init.set_body(&js_sys::Uint8Array::from(body.as_slice()));
            }
            for (name, value) in headers {
                h.append(name, value).map_err(failed)?;
            }
            init.set_headers(&h);
            // `fetch` of whatever global this runs in: a window, a worker or Node.
            let global = js_sys::global();
            let fetch: js_sys::Function = js_sys::Reflect::get(&global, &"fetch".into())
                .map_err(failed)?
                .dyn_into()
                .map_err(failed)?;
            let promise: js_sys::Promise = fetch
                .call2(&global, &JsValue::from_str(url), &init)
                .map_err(failed)?
                .dyn_into()
                .map_err(failed)?;
            let resp: web_sys::Response = JsFuture::from(promise)
                .await
                .map_err(failed)?
                .dyn_into()
                .map_err(failed)?;
            let reader = resp.body().map(|b| {
                b.get_reader()
                    .unchecked_into::<web_sys::ReadableStreamDefaultReader>()
            });
            Ok((
                resp.status(),
                Reply {
                    headers: resp.headers(),
                    reader,
                    _abort: abort,
                },
            ))
        }
    }

    /// Aborts its request when dropped (after the body was read, that does nothing).
    struct Abort(Option<web_sys::AbortController>);

    impl Drop for Abort {
        fn drop(&mut self) {
            if let Some(c) = self.0.take() {
                c.abort();
            }
        }
    }

    pub(super) struct Reply {
        headers: web_sys::Headers,
        reader: Option<web_sys::ReadableStreamDefaultReader>,
        _abort: Abort,
    }

    impl Reply {
        pub(super) fn header(&self, name: &str) -> Option<String> {
            self.headers.get(name).ok().flatten()
        }

        pub(super) async fn chunk(&mut self) -> Result<Option<Bytes>, NetError> {
            let Some(reader) = &self.reader else {
                return Ok(None);
            };
            let body_failed = |_| NetError {
                timeout: false,
                reason: "reading the reply failed".into(),
            };
            let step: web_sys::ReadableStreamReadResult = JsFuture::from(reader.read())
                .await
                .map_err(body_failed)?
                .unchecked_into();
            if step.get_done().unwrap_or(false) {
                self.reader = None;
                return Ok(None);
            }
            let chunk: js_sys::Uint8Array = step.get_value().dyn_into().map_err(body_failed)?;
            Ok(Some(Bytes::from(chunk.to_vec())))
        }
    }

    impl Drop for Reply {
        /// A body left unread (over its limit, or not needed) is cancelled, not downloaded.
        fn drop(&mut self) {
            if let Some(reader) = self.reader.take() {
                let _ = reader.cancel();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_http_urls_with_ascii_hosts() {
        for ok in [
            "http://127.0.0.1:1234/rpc/v1",
            "https://api.node.glif.io/rpc/v1?token=abc",
            "https://xn--bcher-kva.example/rpc",
        ] {
            assert_eq!(Endpoint::parse(ok).unwrap().as_str(), ok);
        }
        let e = Endpoint::parse("https://bücher.example/rpc").unwrap_err();
        assert!(e.contains("xn--"), "{e}");
        assert!(!e.contains("bücher"), "{e}");
        assert!(Endpoint::parse("ws://127.0.0.1:1234")
            .unwrap_err()
            .contains("scheme"));
        assert!(Endpoint::parse("not a url").is_err());
        assert!(Endpoint::parse("file:///etc/passwd").is_err());
    }
}
