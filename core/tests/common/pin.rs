//! A minimal HTTP/1.1 pin endpoint (keep-alive aware) for the built-in pin hook: records
//! what it receives, and can fail the first requests with HTTP 500.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the pin endpoint received: (idempotency key, Authorization header).
pub type Pins = Arc<Mutex<Vec<(String, String)>>>;

/// Serves on a free loopback port at `/api/pin`; the first `fail_first` requests get 500.
pub async fn pin_server(fail_first: usize) -> (String, Pins) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/api/pin", listener.local_addr().unwrap());
    let pins: Pins = Arc::default();
    let log = pins.clone();
    let failures = Arc::new(AtomicUsize::new(fail_first));
    tokio::spawn(async move {
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let log = log.clone();
            let failures = failures.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let head_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        let mut chunk = [0u8; 4096];
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                    let header = |name: &str| {
                        head.lines()
                            .find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
                            })
                            .unwrap_or_default()
                    };
                    let len: usize = header("content-length").parse().unwrap_or(0);
                    while buf.len() < head_end + len {
                        let mut chunk = [0u8; 4096];
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body: Value =
                        serde_json::from_slice(&buf[head_end..head_end + len]).unwrap();
                    buf.drain(..head_end + len);
                    let failing = failures
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                    let reply = if failing {
                        "HTTP/1.1 500 Internal Server Error\r\ncontent-type: text/plain\r\n\
                         content-length: 4\r\n\r\noops"
                    } else {
                        let key = body["raas"]["idempotencyKey"].as_str().unwrap().to_string();
                        assert_eq!(header("idempotency-key"), key);
                        log.lock().unwrap().push((key, header("authorization")));
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\
                         content-length: 15\r\n\r\n{\"pinned\":true}"
                    };
                    if sock.write_all(reply.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (url, pins)
}
