//! Keeping secrets out of text: hosted RPC and pinning URLs often carry an API key in their
//! path, query or user info, and transport errors quote the URL they failed on.

/// `url` with only its scheme, host and port: anything after them (path, query, fragment)
/// becomes `/<redacted>`, user info is dropped. Text that is not a URL is returned whole
/// when it has no `/`, `?` or `@`, else as `<redacted>`.
pub fn redact_url(url: &str) -> String {
    let Some(at) = url.find("://") else {
        return if url.contains(['/', '?', '@']) {
            "<redacted>".into()
        } else {
            url.to_string()
        };
    };
    let (scheme, rest) = (&url[..at], &url[at + 3..]);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let host = authority.rsplit('@').next().unwrap_or(authority);
    let tail = &rest[end..];
    if tail.is_empty() || tail == "/" {
        format!("{scheme}://{host}{tail}")
    } else {
        format!("{scheme}://{host}/<redacted>")
    }
}

/// `text` with every `http(s)://` or `ws(s)://` URL in it passed through [`redact_url`].
pub fn redact_urls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = ["https://", "http://", "wss://", "ws://"]
        .iter()
        .filter_map(|s| rest.find(s))
        .min()
    {
        out.push_str(&rest[..start]);
        let len = rest[start..]
            .find(|c: char| c.is_whitespace() || matches!(c, '"' | '\'' | ')' | '>' | '<' | ','))
            .unwrap_or(rest.len() - start);
        out.push_str(&redact_url(&rest[start..start + len]));
        rest = &rest[start + len..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_in_paths_queries_and_user_info_are_dropped() {
        for (url, shown) in [
            (
                "https://api.node.glif.io/rpc/v1",
                "https://api.node.glif.io/<redacted>",
            ),
            (
                "https://filecoin-mainnet.infura.io/v3/SECRETKEY",
                "https://filecoin-mainnet.infura.io/<redacted>",
            ),
            (
                "https://rpc.example/?apikey=SECRET",
                "https://rpc.example/<redacted>",
            ),
            (
                "http://user:SECRET@127.0.0.1:1234/rpc",
                "http://127.0.0.1:1234/<redacted>",
            ),
            ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
            ("http://127.0.0.1:8545/", "http://127.0.0.1:8545/"),
            ("not a url", "not a url"),
            ("key=SECRET/x", "<redacted>"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
        }
    }

    #[test]
    fn urls_inside_messages_are_redacted() {
        let m =
            "error sending request for url (https://x.io/v1/SECRET?k=SECRET2): connection refused";
        let r = redact_urls(m);
        assert!(!r.contains("SECRET"), "{r}");
        assert_eq!(
            r,
            "error sending request for url (https://x.io/<redacted>): connection refused"
        );
        assert_eq!(redact_urls("no url here"), "no url here");
        assert_eq!(
            redact_urls("a http://h/1 b https://k/2"),
            "a http://h/<redacted> b https://k/<redacted>"
        );
    }
}
