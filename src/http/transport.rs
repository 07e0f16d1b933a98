//! The load's transport under `pool` and `client`: TCP and TLS connections, and what their
//! errors mean as `Failure`s.
//!
//! sesscheck used reqwest until it turned out to cost a fifth of every request in URL handling
//! (a `Url` converted to a `Uri` per request, then parsed again by its redirect layer even with
//! redirects off), and then hyper-util's pooled client, whose pool cost as much again (see
//! `pool`). What reqwest 0.12 with `rustls-tls` configured is reproduced here, setting by
//! setting, so that the move changed nothing a target can see: TCP_NODELAY, TCP keep-alive
//! probes (15 s, 15 s, 3), the source address, a connect timeout around TCP *and* TLS, rustls
//! with the ring provider, TLS 1.2 and 1.3, ALPN `http/1.1`, the webpki root certificates
//! (Mozilla's, compiled in, not the system's) or no verification at all with `insecure_tls`;
//! and the same split of errors into timeout, connect and transport failures.

use crate::observe::{Failure, Stage};
use http::Uri;
use hyper_rustls::{HttpsConnector, MaybeHttpsStream};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::error::Error as StdError;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use tower_service::Service;

type BoxError = Box<dyn StdError + Send + Sync>;

/// A connection: plain TCP, or TLS over it.
pub type Stream = MaybeHttpsStream<TokioIo<tokio::net::TcpStream>>;

/// TCP keep-alive: first probe after 15 s idle, then every 15 s, 3 unanswered probes (reqwest's).
const TCP_KEEPALIVE: Duration = Duration::from_secs(15);
const TCP_KEEPALIVE_RETRIES: u32 = 3;

/// How one pool connects.
pub struct ConnectOptions {
    /// Bounds the TCP connect and the TLS handshake together.
    pub timeout: Duration,
    /// The local address to bind (`[login] source_addresses`); None: the system's choice.
    pub local_address: Option<IpAddr>,
}

/// Opens connections: TCP (DNS, happy eyeballs and socket options from hyper-util), then TLS
/// for https (hyper-rustls), with one timeout over both: hyper-util's own connect timeout covers
/// only the TCP connect.
#[derive(Clone)]
pub struct Connector {
    inner: HttpsConnector<HttpConnector>,
    timeout: Duration,
}

impl Connector {
    pub fn new(options: &ConnectOptions, tls: Arc<rustls::ClientConfig>) -> Connector {
        let mut tcp = HttpConnector::new();
        tcp.enforce_http(false); // https URIs too: the TLS layer above wraps those.
        tcp.set_nodelay(true);
        tcp.set_connect_timeout(Some(options.timeout));
        tcp.set_keepalive(Some(TCP_KEEPALIVE));
        tcp.set_keepalive_interval(Some(TCP_KEEPALIVE));
        tcp.set_keepalive_retries(Some(TCP_KEEPALIVE_RETRIES));
        tcp.set_local_address(options.local_address);
        Connector {
            inner: HttpsConnector::from((tcp, tls)),
            timeout: options.timeout,
        }
    }

    /// A connection to `uri`'s host and port, TLS for https.
    pub async fn connect(&self, uri: Uri) -> Result<Stream, BoxError> {
        // `call` wants `&mut`; a clone is a few reference counts, once per connection.
        let connecting = self.inner.clone().call(uri);
        match tokio::time::timeout(self.timeout, connecting).await {
            Ok(done) => done,
            Err(_) => {
                Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out").into())
            }
        }
    }
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

/// What a failed exchange was, `during` one of its stages. A timeout anywhere in the error's
/// chain (the connect timeout, a socket's) is a `Timeout` at that stage; any other error while
/// connecting (TCP refused or reset, DNS, the TLS handshake) is a `Connect`, which the engine backs off from and the detectors count
/// as the target being down; anything later (the connection closed before or during the
/// answer, a protocol error) is a `Transport`. The text is the innermost cause, the one a person
/// recognises ("Connection refused (os error 111)").
pub fn failure(e: &(dyn StdError + 'static), during: Stage) -> Failure {
    let mut timeout = false;
    let mut out_of_files = false;
    let mut cause = e;
    loop {
        timeout |= is_timeout(cause);
        out_of_files |= is_out_of_files(cause);
        match cause.source() {
            Some(next) => cause = next,
            None => break,
        }
    }
    if out_of_files {
        Failure::OutOfFiles(cause.to_string())
    } else if timeout {
        Failure::Timeout(during)
    } else if during == Stage::Connect {
        Failure::Connect(cause.to_string())
    } else {
        Failure::Transport(cause.to_string())
    }
}

/// EMFILE (this process's limit, `ulimit -n`) or ENFILE (the system's).
fn is_out_of_files(e: &(dyn StdError + 'static)) -> bool {
    e.downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::raw_os_error)
        .is_some_and(|code| code == nix::libc::EMFILE || code == nix::libc::ENFILE)
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
    fn running_out_of_files_is_sesschecks_own_failure_not_a_refused_connect() {
        let emfile = std::io::Error::from_raw_os_error(nix::libc::EMFILE);
        let f = failure(&emfile, Stage::Connect);
        assert!(matches!(f, Failure::OutOfFiles(_)), "{f:?}");
        assert!(f.to_string().contains("ulimit -n"), "{f}");
        let enfile = std::io::Error::from_raw_os_error(nix::libc::ENFILE);
        assert!(matches!(
            failure(&enfile, Stage::Connect),
            Failure::OutOfFiles(_)
        ));
    }

    #[test]
    fn a_timeout_anywhere_in_the_chain_is_a_timeout() {
        let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out");
        let connect = failure(&io, Stage::Connect);
        assert_eq!(connect, Failure::Timeout(Stage::Connect));
        let answer = failure(&io, Stage::Answer);
        assert_eq!(answer, Failure::Timeout(Stage::Answer));
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert!(matches!(
            failure(&refused, Stage::Connect),
            Failure::Connect(_)
        ));
        assert!(matches!(
            failure(&refused, Stage::Answer),
            Failure::Transport(_)
        ));
        assert!(matches!(
            failure(&refused, Stage::Body),
            Failure::Transport(_)
        ));
    }
}
