//! The load's connection pool: HTTP/1.1 connections over hyper's connection API, kept per origin.
//!
//! hyper-util's pooled client (which reqwest wraps) did this before, and its generality cost
//! more than the rest of a request: each request hashed the origin (byte by byte) three times,
//! raced a pool checkout against a lazily built connect future, boxed and moved both, and
//! spawned a task to put the connection back once it was idle. sesscheck needs less: HTTP/1.1
//! only, no proxy, a handful of origins, and it reads every body itself, so it knows when a
//! connection is free again.
//!
//! What a target sees is what it saw with hyper-util's pool:
//! - an idle connection to the same origin is reused, the most recently used first; none is
//!   kept with `connection = "new"`;
//! - a connection idle for 90 s is closed (checked when one is taken, and every 90 s);
//! - a request that a reused connection could not send (the server had closed it meanwhile)
//!   is sent on another connection: it never reached the server. On a new connection it fails;
//! - a connection goes back only once its response was read to the end (or had no body); one
//!   whose body was left unread is closed.

use crate::http::transport::{self, Connector};
use crate::observe::{Failure, Progress, Stage};
use bytes::Bytes;
use http::uri::{Authority, Scheme};
use http::{Request, Response, Uri};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use std::sync::{Arc, Mutex, MutexGuard, Once, Weak};
use std::time::{Duration, Instant};

/// How long an idle connection is kept (hyper-util's and reqwest's default).
const IDLE_TIMEOUT: Duration = Duration::from_secs(90);

type Sender = SendRequest<Full<Bytes>>;

/// Where requests go, as far as sharing connections goes: scheme and host:port. Built once per
/// URL of the scenario; a clone is one reference count.
#[derive(Clone)]
pub struct Origin(Arc<OriginParts>);

struct OriginParts {
    scheme: Scheme,
    authority: Authority,
    /// `scheme://authority/`: what the connector resolves, connects to and names in TLS.
    uri: Uri,
}

impl Origin {
    /// The origin of an absolute URI; None without scheme or host.
    pub fn of(uri: &Uri) -> Option<Origin> {
        let (scheme, authority) = (uri.scheme()?.clone(), uri.authority()?.clone());
        let uri = Uri::builder()
            .scheme(scheme.clone())
            .authority(authority.clone())
            .path_and_query("/")
            .build()
            .ok()?;
        Some(Origin(Arc::new(OriginParts {
            scheme,
            authority,
            uri,
        })))
    }

    /// The same origin as one of `known` if there is one (then comparing them is a pointer
    /// test), else this one, added to `known`.
    pub fn shared(self, known: &mut Vec<Origin>) -> Origin {
        if let Some(same) = known.iter().find(|o| **o == self) {
            return same.clone();
        }
        known.push(self.clone());
        self
    }
}

impl PartialEq for Origin {
    fn eq(&self, other: &Origin) -> bool {
        // Usually the very same origin (the scenario's), so the pointer test settles it.
        Arc::ptr_eq(&self.0, &other.0)
            || (self.0.scheme == other.0.scheme && self.0.authority == other.0.authority)
    }
}

/// A pool of connections, shared by clones.
#[derive(Clone)]
pub struct Pool(Arc<Inner>);

struct Inner {
    connector: Connector,
    /// False for `connection = "new"`: every request gets its own connection.
    keep_idle: bool,
    /// Idle connections, the most recently used last.
    idle: Mutex<Vec<Idle>>,
    sweeper: Once,
}

struct Idle {
    origin: Origin,
    sender: Sender,
    since: Instant,
}

/// A connection lent for one exchange. `release` it once the response is read to the end;
/// dropped instead, the connection closes after that exchange.
pub struct Lease {
    pool: Pool,
    origin: Origin,
    sender: Sender,
}

impl Lease {
    /// Back to the pool, for the next request to the same origin.
    pub fn release(self) {
        self.pool.put(self.origin, self.sender);
    }
}

impl Pool {
    pub fn new(connector: Connector, keep_idle: bool) -> Pool {
        Pool(Arc::new(Inner {
            connector,
            keep_idle,
            idle: Mutex::new(Vec::new()),
            sweeper: Once::new(),
        }))
    }

    /// Send `request` to `origin`. Its URI must be in origin form (the path) and its headers
    /// complete (`Host` included): they go on the wire as they are. `progress` says whether it
    /// is connecting or waiting for the answer, for a caller whose timeout cuts this short.
    pub async fn send(
        &self,
        origin: &Origin,
        mut request: Request<Full<Bytes>>,
        progress: &Progress,
    ) -> Result<(Response<Incoming>, Lease), Failure> {
        loop {
            let (mut sender, reused) = match self.take(origin) {
                Some(sender) => (sender, true),
                None => {
                    progress.set(Stage::Connect);
                    // Boxed: connecting is rare and its state large; unboxed, every request's
                    // future would carry (and move) room for it.
                    (Box::pin(self.connect(origin)).await?, false)
                }
            };
            progress.set(Stage::Answer);
            // A reused connection's task marks it ready once it has finished the previous
            // exchange; an error means it closed meanwhile: take another.
            if reused && sender.ready().await.is_err() {
                continue;
            }
            match sender.try_send_request(request).await {
                Ok(response) => {
                    let lease = Lease {
                        pool: self.clone(),
                        origin: origin.clone(),
                        sender,
                    };
                    return Ok((response, lease));
                }
                Err(mut e) => match e.take_message() {
                    // Not written: the server had closed the connection. Nothing reached it.
                    Some(unsent) if reused => request = unsent,
                    _ => return Err(transport::failure(&e.into_error(), Stage::Answer)),
                },
            }
        }
    }

    /// A new connection to `origin`, ready for a request.
    async fn connect(&self, origin: &Origin) -> Result<Sender, Failure> {
        let io = self
            .0
            .connector
            .connect(origin.0.uri.clone())
            .await
            .map_err(|e| transport::failure(&*e, Stage::Connect))?;
        // Errors from here on are on an open connection: `Transport`, not `Connect`.
        let (mut sender, connection) = http1::handshake(io)
            .await
            .map_err(|e| transport::failure(&e, Stage::Answer))?;
        // The connection's own task does its reading and writing; it ends when the server
        // closes the connection, or when the sender is dropped and the exchange is over.
        // (With upgrades, as hyper-util ran it: a 101 answer ends the task cleanly.)
        tokio::spawn(async move {
            let _ = connection.with_upgrades().await;
        });
        sender
            .ready()
            .await
            .map_err(|e| transport::failure(&e, Stage::Answer))?;
        Ok(sender)
    }

    /// The most recently used idle connection to `origin` that is still open and fresh.
    fn take(&self, origin: &Origin) -> Option<Sender> {
        let mut idle = lock(&self.0.idle);
        let now = Instant::now();
        while let Some(i) = idle.iter().rposition(|c| c.origin == *origin) {
            let c = idle.remove(i);
            if usable(&c, now) {
                return Some(c.sender);
            }
        }
        None
    }

    /// Keep a connection whose exchange is over for the next request to `origin` (none with
    /// `connection = "new"`, nor one the server closed).
    fn put(&self, origin: Origin, sender: Sender) {
        if !self.0.keep_idle || sender.is_closed() {
            return;
        }
        self.0.sweeper.call_once(|| sweep(Arc::downgrade(&self.0)));
        lock(&self.0.idle).push(Idle {
            origin,
            sender,
            since: Instant::now(),
        });
    }
}

fn usable(c: &Idle, now: Instant) -> bool {
    !c.sender.is_closed() && now.duration_since(c.since) < IDLE_TIMEOUT
}

/// Every `IDLE_TIMEOUT`, close the connections idle that long (or closed by the server), so
/// that an origin nobody asks for any more does not keep them open; ends with the pool.
fn sweep(pool: Weak<Inner>) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(IDLE_TIMEOUT).await;
            let Some(pool) = pool.upgrade() else {
                return;
            };
            let now = Instant::now();
            lock(&pool.idle).retain(|c| usable(c, now));
        }
    });
}

/// A poisoned lock only means a task panicked while it held it; the list is still valid.
fn lock(idle: &Mutex<Vec<Idle>>) -> MutexGuard<'_, Vec<Idle>> {
    idle.lock().unwrap_or_else(|e| e.into_inner())
}

/// The test certificate and TLS acceptor that tests/tls.rs uses too (a different crate, so the
/// file is included by path).
#[cfg(test)]
#[path = "../../tests/common/self_signed.rs"]
mod self_signed;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::transport::{tls_config, ConnectOptions};
    use http_body_util::BodyExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    fn pool(keep_idle: bool, insecure_tls: bool) -> Pool {
        let options = ConnectOptions {
            timeout: Duration::from_secs(5),
            local_address: None,
        };
        let tls = tls_config(insecure_tls).unwrap();
        Pool::new(Connector::new(&options, tls), keep_idle)
    }

    /// GET `scheme://127.0.0.1:port/` as `client` does: the body read to the end and the
    /// connection released, or (`read` false) the response dropped unread.
    async fn get(pool: &Pool, scheme: &str, port: u16, read: bool) -> Result<Vec<u8>, Failure> {
        let uri: Uri = format!("{scheme}://127.0.0.1:{port}/").parse().unwrap();
        let origin = Origin::of(&uri).unwrap();
        let mut request = Request::new(Full::new(Bytes::new()));
        let host = transport::host_header(&uri).unwrap();
        request.headers_mut().insert(http::header::HOST, host);
        let (response, lease) = pool.send(&origin, request, &Progress::new()).await?;
        if !read {
            return Ok(Vec::new());
        }
        let body = response.into_body().collect().await;
        let body = body
            .map_err(|e| transport::failure(&e, Stage::Body))?
            .to_bytes();
        lease.release();
        Ok(body.to_vec())
    }

    /// Read one request head; false if the client closed the connection first.
    async fn read_head(stream: &mut TcpStream) -> bool {
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match stream.read(&mut byte).await {
                Ok(1) => head.push(byte[0]),
                _ => return false,
            }
        }
        true
    }

    /// A loopback server whose every connection runs `serve` after reading the first request
    /// head; counts the connections it accepted.
    async fn server<F, Fut>(serve: F) -> (u16, Arc<AtomicUsize>)
    where
        F: Fn(TcpStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                if read_head(&mut stream).await {
                    tokio::spawn(serve(stream));
                }
            }
        });
        (port, accepted)
    }

    /// Answer "ok" to this request and every later one on the connection.
    async fn keep_alive(mut stream: TcpStream) {
        loop {
            let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
            if stream.write_all(ok).await.is_err() || !read_head(&mut stream).await {
                return;
            }
        }
    }

    #[tokio::test]
    async fn a_connection_is_reused_once_its_answer_was_read() {
        let (port, accepted) = server(keep_alive).await;
        let pool = pool(true, false);
        for _ in 0..3 {
            assert_eq!(get(&pool, "http", port, true).await.unwrap(), b"ok");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn connection_new_opens_one_connection_per_request() {
        let (port, accepted) = server(keep_alive).await;
        let pool = pool(false, false);
        for _ in 0..3 {
            assert_eq!(get(&pool, "http", port, true).await.unwrap(), b"ok");
        }
        assert_eq!(accepted.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_connection_whose_body_was_left_unread_is_not_reused() {
        let (port, accepted) = server(keep_alive).await;
        let pool = pool(true, false);
        get(&pool, "http", port, false).await.unwrap();
        assert_eq!(get(&pool, "http", port, true).await.unwrap(), b"ok");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_connection_the_server_closed_is_not_used_again() {
        let (port, accepted) = server(|mut stream: TcpStream| async move {
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .await;
        })
        .await;
        let pool = pool(true, false);
        assert_eq!(get(&pool, "http", port, true).await.unwrap(), b"ok");
        // Time for the client to see the close of the idle connection.
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(get(&pool, "http", port, true).await.unwrap(), b"ok");
        assert_eq!(accepted.load(Ordering::SeqCst), 2);
    }

    /// How errors split into `Connect` and `Transport`: the same cases, with the same texts,
    /// as under reqwest (checked side by side when the load moved off it).
    #[tokio::test]
    async fn connect_failures_and_transport_failures() {
        let pool = pool(true, false);
        let refused = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        assert_eq!(
            get(&pool, "http", refused, true).await,
            Err(Failure::Connect(
                "Connection refused (os error 111)".to_string()
            ))
        );
        // Connected, then closed with no answer: the request may have reached the app.
        let (closed, _) = server(|s| async move { drop(s) }).await;
        assert_eq!(
            get(&pool, "http", closed, true).await,
            Err(Failure::Transport(
                "connection closed before message completed".to_string()
            ))
        );
        let (reset, _) = server(|s: TcpStream| async move {
            // Zero linger: the close sends a reset.
            socket2::SockRef::from(&s)
                .set_linger(Some(Duration::ZERO))
                .unwrap();
            drop(s)
        })
        .await;
        assert_eq!(
            get(&pool, "http", reset, true).await,
            Err(Failure::Transport(
                "Connection reset by peer (os error 104)".to_string()
            ))
        );
        let (cut, _) = server(|mut s: TcpStream| async move {
            let head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial";
            let _ = s.write_all(head).await;
        })
        .await;
        assert_eq!(
            get(&pool, "http", cut, true).await,
            Err(Failure::Transport(
                "end of file before message length reached".to_string()
            ))
        );
    }

    /// The load's own TLS: a self-signed certificate is refused (a `Connect` failure naming the
    /// certificate) unless `insecure_tls`, and then the request goes through.
    #[tokio::test]
    async fn self_signed_certificate_refused_unless_insecure() {
        let dir = std::env::temp_dir().join(format!("sesscheck-pool-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let made = self_signed::self_signed_acceptor(&dir);
        let _ = std::fs::remove_dir_all(&dir);
        let Some(acceptor) = made else {
            eprintln!("skipped: the openssl command line is not available");
            return;
        };
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
        match get(&pool(true, false), "https", port, true).await {
            Err(Failure::Connect(why)) => assert!(why.contains("certificate"), "{why}"),
            other => panic!("a self-signed certificate was not refused: {other:?}"),
        }
        assert_eq!(
            get(&pool(true, true), "https", port, true).await.unwrap(),
            b"ok"
        );
    }
}
