//! Binding the listening socket.
use anyhow::Context;
use socket2::{Domain, Protocol, Socket, Type};
use std::net::{SocketAddr, ToSocketAddrs};

/// Resolves `--host` and `--port` to one socket address (the first one).
pub fn resolve(host: &str, port: u16) -> anyhow::Result<SocketAddr> {
    (host, port)
        .to_socket_addrs()
        .with_context(|| format!("resolving {host}:{port}"))?
        .next()
        .with_context(|| format!("resolving {host}:{port}: no address"))
}

/// Binds and listens. With `share_port`, SO_REUSEPORT lets every worker bind
/// the same port and the kernel spreads new connections across them.
pub fn bind(address: SocketAddr, share_port: bool) -> anyhow::Result<std::net::TcpListener> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::STREAM,
        Some(Protocol::TCP),
    )
    .context("creating a TCP socket")?;
    // SO_REUSEADDR: a restart must not fail on connections left in TIME_WAIT.
    socket
        .set_reuse_address(true)
        .context("setting SO_REUSEADDR")?;
    if share_port {
        socket
            .set_reuse_port(true)
            .context("setting SO_REUSEPORT")?;
    }
    socket
        .bind(&address.into())
        .with_context(|| format!("binding {address}"))?;
    socket
        .listen(1024)
        .with_context(|| format!("listening on {address}"))?;
    socket
        .set_nonblocking(true)
        .context("making the socket non-blocking")?;
    Ok(socket.into())
}

/// Checks that nobody else (for example a leftover target) holds the port:
/// a plain bind without SO_REUSEPORT fails if any socket is bound there, while
/// the workers' own SO_REUSEPORT binds would silently share it.
pub fn check_port_is_free(address: SocketAddr) -> anyhow::Result<()> {
    bind(address, false).map(drop)
}
