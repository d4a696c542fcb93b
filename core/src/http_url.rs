//! Endpoint URLs from configuration (RPC endpoints, gateways): http(s) with a host.
//!
//! Host names must be ASCII. The workspace pins `idna_adapter` to its no-Unicode release,
//! which keeps ICU's normalisation tables (about 50 KB gzipped) out of the browser package;
//! an internationalised host is written in its `xn--` form, which every resolver takes.

/// `input` parsed as an http or https URL with a host; the error says why not, without
/// repeating the input (it may carry a key).
pub(crate) fn parse_http_url(input: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(input).map_err(|e| {
        if input.is_ascii() {
            e.to_string()
        } else {
            format!(
                "{e}: host names must be ASCII (write an internationalised name in its xn-- form)"
            )
        }
    })?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_urls_with_ascii_hosts_only() {
        for ok in [
            "http://127.0.0.1:1234/rpc/v1",
            "https://api.node.glif.io/rpc/v1?token=abc",
            "https://xn--bcher-kva.example/rpc",
        ] {
            assert!(parse_http_url(ok).is_ok(), "{ok}");
        }
        let e = parse_http_url("https://bücher.example/rpc").unwrap_err();
        assert!(e.contains("xn--"), "{e}");
        assert!(!e.contains("bücher"), "{e}");
        assert!(parse_http_url("ws://127.0.0.1:1234")
            .unwrap_err()
            .contains("scheme"));
        assert!(parse_http_url("not a url").is_err());
        assert!(parse_http_url("file:///etc/passwd").is_err());
    }
}
