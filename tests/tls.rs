//! TLS: certificates are verified by default; `insecure_tls = true` is explicit and warned about.
//! The server is a loopback HTTPS server (tokio-rustls) with a self-signed certificate made by
//! the `openssl` command line.
mod harness;
#[path = "common/self_signed.rs"]
mod self_signed;

use harness::*;
use self_signed::self_signed_acceptor;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Serve HTTPS on a free loopback port from a thread with its own runtime (bounded lifetime).
fn serve_tls(acceptor: tokio_rustls::TlsAcceptor) -> u16 {
    let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = std_listener.local_addr().unwrap().port();
    std_listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
            let serve = async {
                loop {
                    let Ok((tcp, _)) = listener.accept().await else {
                        continue;
                    };
                    let acceptor = acceptor.clone();
                    tokio::spawn(async move {
                        // A failed handshake (the client refused our certificate) just ends here.
                        let Ok(mut tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let mut buf = vec![0u8; 16 << 10];
                        let mut got = 0;
                        while got < buf.len() {
                            match tls.read(&mut buf[got..]).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => got += n,
                            }
                            if buf[..got].windows(4).any(|w| w == b"\r\n\r\n") {
                                break;
                            }
                        }
                        let body = PROBE_OK;
                        let head = format!(
                            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n",
                            body.len()
                        );
                        let _ = tls.write_all(head.as_bytes()).await;
                        let _ = tls.write_all(body).await;
                        let _ = tls.shutdown().await;
                    });
                }
            };
            let _ = tokio::time::timeout(SERVER_LIFETIME, serve).await;
        });
    });
    port
}

fn scenario(port: u16, insecure: bool, ready_timeout: &str) -> String {
    format!(
        r#"
name = "tls"
[target]
url = "https://127.0.0.1:{port}"
ready = {{ path = "/health", timeout = "{ready_timeout}" }}
insecure_tls = {insecure}
[load]
users = 2
duration = "2s"
requests = ["/dashboard"]
loading_timeout = "2s"
"#
    )
}

#[test]
fn self_signed_certificate_is_refused_by_default_and_accepted_when_insecure() {
    let dir = TempDir::new("tls");
    let Some(acceptor) = self_signed_acceptor(dir.path()) else {
        eprintln!("skipped: the openssl command line is not available");
        return;
    };
    let port = serve_tls(acceptor);

    // A long ready timeout: a certificate error must end the wait at once.
    let o = run_scenario(&dir, &scenario(port, false, "20s"), Duration::from_secs(30));
    assert!(!o.timed_out, "{o:?}");
    assert_eq!(o.code, Some(3), "{o:?}");
    assert!(o.elapsed < Duration::from_secs(5), "{o:?}");
    assert!(o.stderr.contains("insecure_tls"), "{}", o.stderr);
    assert!(o.stderr.contains("certificate"), "{}", o.stderr);
    assert!(
        o.stderr.contains(&format!("https://127.0.0.1:{port}")),
        "{}",
        o.stderr
    );
    assert!(!o.stderr.contains("warning"), "{}", o.stderr);

    let dir2 = TempDir::new("tls-insecure");
    let o = run_scenario(&dir2, &scenario(port, true, "5s"), Duration::from_secs(30));
    assert!(!o.timed_out, "{o:?}");
    assert!(matches!(o.code, Some(0 | 1)), "{o:?}");
    assert!(
        o.stderr.contains("warning: insecure_tls = true"),
        "{}",
        o.stderr
    );
    assert!(report(&dir2)["requests"]["total"].as_u64().unwrap_or(0) > 0);
}
