//! The HTTP transport under `client`: hyper's pooled HTTP/1.1 client, its TCP and TLS
//! connectors, and what its errors mean as `Failure`s.
//!
//! sesscheck used reqwest until it turned out to cost a fifth of every request in URL handling
//! (a `Url` converted to a `Uri` per request, then parsed again by its redirect layer even with
//! redirects off). `client` now hands hyper `Uri`s it built once, at start. Everything else here
//! reproduces, setting by setting, what reqwest 0.12 with `rustls-tls` configured, so that the
//! move changed nothing a target can see: TCP_NODELAY, TCP keep-alive probes (15 s, 15 s, 3),
//! the source address, a connect timeout around TCP *and* TLS, idle connections kept 90 s,
//! rustls with the ring provider, TLS 1.2 and 1.3, ALPN `http/1.1`, the webpki root
//! certificates (Mozilla's, compiled in, not the system's), or no verification at all with
//! `insecure_tls`; and the same split of errors into timeout, connect and transport failures.

use crate::observe::Failure;
use bytes::Bytes;
use http::Uri;
use http_body_util::Full;
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::{Connected, Connection, HttpConnector};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::error::Error as StdError;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// A connection pool and the client that sends over it. Cloning shares the pool.
pub type Pool = Client<Connector, Full<Bytes>>;

type BoxError = Box<dyn StdError + Send + Sync>;

/// TCP keep-alive: first probe after 15 s idle, then every 15 s, 3 unanswered probes (reqwest's).
const TCP_KEEPALIVE: Duration = Duration::from_secs(15);
const TCP_KEEPALIVE_RETRIES: u32 = 3;
/// How long an idle pooled connection is kept (hyper-util's and reqwest's default).
const POOL_IDLE: Duration = Duration::from_secs(90);

/// How one pool connects.
pub struct PoolOptions {
    /// Bounds the TCP connect and the TLS handshake together.
    pub connect_timeout: Duration,
    /// The local address to bind (`[login] source_addresses`); None: the system's choice.
    pub local_address: Option<IpAddr>,
    /// False for `connection = "new"`: no connection is reused.
    pub keep_idle: bool,
}

/// A pool of HTTP/1.1 connections (plain or TLS by the URI's scheme).
pub fn pool(options: &PoolOptions, tls: Arc<rustls::ClientConfig>) -> Pool {
    let mut tcp = HttpConnector::new();
    tcp.enforce_http(false); // https URIs too: the TLS layer above wraps those.
    tcp.set_nodelay(true);
    tcp.set_connect_timeout(Some(options.connect_timeout));
    tcp.set_keepalive(Some(TCP_KEEPALIVE));
    tcp.set_keepalive_interval(Some(TCP_KEEPALIVE));
    tcp.set_keepalive_retries(Some(TCP_KEEPALIVE_RETRIES));
    tcp.set_local_address(options.local_address);
    let connector = Connector {
        inner: HttpsConnector::from((tcp, tls)),
        timeout: options.connect_timeout,
    };
    let mut builder = Client::builder(TokioExecutor::new());
    builder
        .timer(TokioTimer::new())
        .pool_timer(TokioTimer::new())
        .pool_idle_timeout(POOL_IDLE);
    if !options.keep_idle {
        builder.pool_max_idle_per_host(0);
    }
    builder.build(connector)
}

/// The TLS settings: certificates verified against the webpki roots, or (`insecure_tls`) not at all.
pub fn tls_config(insecure: bool) -> anyhow::Result<Arc<rustls::ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::ALL_VERSIONS)?;
    let mut config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate))
            .with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The TCP + TLS connector with one timeout over both (hyper-util's own connect timeout covers
/// only the TCP connect, and a connect the pool finishes in the background has no other bound).
#[derive(Clone)]
pub struct Connector {
    inner: HttpsConnector<HttpConnector>,
    timeout: Duration,
}

impl tower_service::Service<Uri> for Connector {
    type Response = Stream;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Stream, BoxError>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let connecting = self.inner.call(dst);
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, connecting).await {
                Ok(done) => done.map(Stream),
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "connect timed out",
                )
                .into()),
            }
        })
    }
}

/// A connection (plain or TLS) that tells the pool nothing about itself. The TCP stream's own
/// `Connection` impl attaches its addresses (`HttpInfo`) to every response, which costs a
/// map allocation and its drop per request; nothing here reads them.
pub struct Stream(MaybeHttpsStream<TokioIo<tokio::net::TcpStream>>);

impl Connection for Stream {
    fn connected(&self) -> Connected {
        // HTTP/1.1 only (ALPN offers nothing else), direct (no proxy): nothing to report.
        Connected::new()
    }
}

impl hyper::rt::Read for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }
}

/// `insecure_tls = true`: any certificate, for any name, is accepted (signatures are not checked
/// either: there is no trusted key to check them against).
#[derive(Debug)]
struct AcceptAnyCertificate;

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        use SignatureScheme::*;
        vec![
            RSA_PKCS1_SHA1,
            ECDSA_SHA1_Legacy,
            RSA_PKCS1_SHA256,
            ECDSA_NISTP256_SHA256,
            RSA_PKCS1_SHA384,
            ECDSA_NISTP384_SHA384,
            RSA_PKCS1_SHA512,
            ECDSA_NISTP521_SHA512,
            RSA_PSS_SHA256,
            RSA_PSS_SHA384,
            RSA_PSS_SHA512,
            ED25519,
            ED448,
        ]
    }
}

/// What a failed request or body read was. A timeout anywhere in the error's chain (the connect
/// timeout, a socket's) is a `Timeout`; an error from connecting (TCP refused or reset, DNS,
/// the TLS handshake) is a `Connect`, which the engine backs off from and the detectors count
/// as the target being down; anything later (the connection closed before or during the
/// answer, a protocol error) is a `Transport`. The text is the innermost cause, the one a person
/// recognises ("Connection refused (os error 111)").
pub fn failure(e: &(dyn StdError + 'static)) -> Failure {
    let mut timeout = false;
    let mut connect = false;
    let mut cause = e;
    loop {
        timeout |= is_timeout(cause);
        connect |= cause
            .downcast_ref::<hyper_util::client::legacy::Error>()
            .is_some_and(|e| e.is_connect());
        match cause.source() {
            Some(next) => cause = next,
            None => break,
        }
    }
    if timeout {
        Failure::Timeout
    } else if connect {
        Failure::Connect(cause.to_string())
    } else {
        Failure::Transport(cause.to_string())
    }
}

fn is_timeout(e: &(dyn StdError + 'static)) -> bool {
    if let Some(e) = e.downcast_ref::<hyper::Error>() {
        return e.is_timeout();
    }
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::TimedOut)
}

/// The `Host` header hyper would add for `uri` (the port only when it is not the scheme's
/// default), so that it can be built once per configured URL instead of once per request.
pub fn host_header(uri: &Uri) -> Option<http::HeaderValue> {
    let host = uri.host()?;
    let default_port = match uri.scheme_str() {
        Some("https" | "wss") => 443,
        _ => 80,
    };
    let value = match uri.port() {
        Some(port) if port.as_u16() != default_port => format!("{host}:{port}"),
        _ => host.to_string(),
    };
    http::HeaderValue::from_str(&value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_header_names_the_port_only_when_it_is_not_the_default() {
        let host = |u: &str| host_header(&u.parse().unwrap()).unwrap();
        assert_eq!(host("http://127.0.0.1:8080/a"), "127.0.0.1:8080");
        assert_eq!(host("http://example.test/a"), "example.test");
        assert_eq!(host("http://example.test:80/a"), "example.test");
        assert_eq!(host("https://example.test:443/"), "example.test");
        assert_eq!(host("https://example.test:80/"), "example.test:80");
        assert_eq!(host("http://[::1]:9000/"), "[::1]:9000");
    }

    #[test]
    fn a_timeout_anywhere_in_the_chain_is_a_timeout() {
        let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out");
        assert_eq!(failure(&io), Failure::Timeout);
    }

    /// GET a loopback server that behaves as `serve` says (None: nothing listens); what the
    /// client makes of it: the body, or the failure.
    async fn outcome<F, Fut>(serve: Option<F>) -> Result<Vec<u8>, Failure>
    where
        F: FnOnce(tokio::net::TcpStream) -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send,
    {
        use http_body_util::BodyExt;
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        match serve {
            None => drop(listener),
            Some(serve) => {
                tokio::spawn(async move {
                    let (mut stream, _) = listener.accept().await.unwrap();
                    // Read the request head first, so what follows answers it.
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    serve(stream).await;
                });
            }
        }
        let options = PoolOptions {
            connect_timeout: Duration::from_secs(5),
            local_address: None,
            keep_idle: true,
        };
        let pool = pool(&options, tls_config(false).unwrap());
        let uri: Uri = format!("http://127.0.0.1:{port}/").parse().unwrap();
        let request = http::Request::get(uri)
            .body(Full::new(Bytes::new()))
            .unwrap();
        let response = pool.request(request).await.map_err(|e| failure(&e))?;
        let body = response.into_body().collect().await;
        Ok(body.map_err(|e| failure(&e))?.to_bytes().to_vec())
    }

    /// How errors split into `Connect` and `Transport`: the same cases as under reqwest.
    #[tokio::test]
    async fn connect_failures_and_transport_failures() {
        use tokio::io::AsyncWriteExt;
        type Serve = fn(tokio::net::TcpStream) -> std::future::Ready<()>;
        assert_eq!(
            outcome(None::<Serve>).await,
            Err(Failure::Connect(
                "Connection refused (os error 111)".to_string()
            ))
        );
        // Connected, then closed with no answer: the request may have reached the app.
        let closed = outcome(Some(|s| async move { drop(s) })).await;
        assert!(matches!(closed, Err(Failure::Transport(_))), "{closed:?}");
        let reset = outcome(Some(|s: tokio::net::TcpStream| async move {
            // Zero linger: the close sends a reset.
            socket2::SockRef::from(&s)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
            drop(s)
        }))
        .await;
        assert!(matches!(reset, Err(Failure::Transport(_))), "{reset:?}");
        let cut = outcome(Some(|mut s: tokio::net::TcpStream| async move {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial")
                .await;
        }))
        .await;
        assert!(matches!(cut, Err(Failure::Transport(_))), "{cut:?}");
        let ok = outcome(Some(|mut s: tokio::net::TcpStream| async move {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .await;
        }))
        .await;
        assert_eq!(ok, Ok(b"ok".to_vec()));
    }

    /// A self-signed certificate for 127.0.0.1 from the `openssl` command line (None without it).
    fn self_signed(
        dir: &std::path::Path,
    ) -> Option<(
        Vec<CertificateDer<'static>>,
        rustls::pki_types::PrivateKeyDer<'static>,
    )> {
        use rustls::pki_types::pem::PemObject;
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let made = std::process::Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
            .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"])
            .args([
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .ok()?;
        if !made.status.success() {
            return None;
        }
        let certs = CertificateDer::pem_file_iter(&cert)
            .ok()?
            .collect::<Result<Vec<_>, _>>()
            .ok()?;
        Some((
            certs,
            rustls::pki_types::PrivateKeyDer::from_pem_file(&key).ok()?,
        ))
    }

    /// The load's own TLS: a self-signed certificate is refused (a `Connect` failure naming the
    /// certificate) unless `insecure_tls`, and then the request goes through.
    #[tokio::test]
    async fn self_signed_certificate_refused_unless_insecure() {
        use http_body_util::BodyExt;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let dir = std::env::temp_dir().join(format!("sesscheck-transport-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let Some((certs, key)) = self_signed(&dir) else {
            eprintln!("skipped: the openssl command line is not available");
            return;
        };
        let _ = std::fs::remove_dir_all(&dir);
        let server = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            for _ in 0..2 {
                let (tcp, _) = listener.accept().await.unwrap();
                let Ok(mut tls) = acceptor.accept(tcp).await else {
                    continue; // the client refused the certificate
                };
                let mut buf = [0u8; 4096];
                let _ = tls.read(&mut buf).await;
                let _ = tls
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .await;
                let _ = tls.shutdown().await;
            }
        });
        let get = |insecure: bool| async move {
            let options = PoolOptions {
                connect_timeout: Duration::from_secs(5),
                local_address: None,
                keep_idle: false,
            };
            let pool = pool(&options, tls_config(insecure).unwrap());
            let uri: Uri = format!("https://127.0.0.1:{port}/").parse().unwrap();
            let request = http::Request::get(uri)
                .body(Full::new(Bytes::new()))
                .unwrap();
            let response = pool.request(request).await.map_err(|e| failure(&e))?;
            let body = response.into_body().collect().await.unwrap().to_bytes();
            Ok::<_, Failure>(body)
        };
        match get(false).await {
            Err(Failure::Connect(why)) => assert!(why.contains("certificate"), "{why}"),
            other => panic!("a self-signed certificate was not refused: {other:?}"),
        }
        assert_eq!(get(true).await.unwrap(), "ok");
    }
}
