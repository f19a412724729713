//! Listening sockets: one SO_REUSEPORT listener per core on the same address, so the
//! kernel spreads new connections across cores. Created before the executors start, so
//! that port 0 resolves to one port shared by every core.

use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// Backlog of each listener (Redis's tcp-backlog default is 511).
const BACKLOG: i32 = 511;

fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(ret)
    }
}

fn sockaddr(addr: &SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: sockaddr_storage is plain old data; all-zero is a valid value.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match addr {
        SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_in fits in sockaddr_storage, which is aligned for it.
            unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in, sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: a.flowinfo(),
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_in6 fits in sockaddr_storage, which is aligned for it.
            unsafe { std::ptr::write(&mut storage as *mut _ as *mut libc::sockaddr_in6, sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (storage, len as libc::socklen_t)
}

fn set_int_opt(fd: i32, level: i32, opt: i32, val: i32) -> io::Result<()> {
    // SAFETY: `val` outlives the call and its size is passed along.
    check(unsafe {
        libc::setsockopt(
            fd,
            level,
            opt,
            &val as *const i32 as *const libc::c_void,
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Disables Nagle on an accepted client socket.
pub fn set_nodelay(fd: i32) {
    let _ = set_int_opt(fd, libc::IPPROTO_TCP, libc::TCP_NODELAY, 1);
}

/// Refuses an accepted connection with a last line (such as `-ERR max number of clients
/// reached`), best effort and without blocking, then closes it. Input the client already
/// sent is read and dropped first: closing a socket with unread input sends a reset,
/// which could make the client lose the line.
pub fn refuse(fd: OwnedFd, line: &[u8]) {
    let mut sink = [0u8; 4096];
    for _ in 0..4 {
        // SAFETY: `sink` is a live buffer of `sink.len()` bytes and `fd` an open socket.
        let n = unsafe {
            libc::recv(
                fd.as_raw_fd(),
                sink.as_mut_ptr().cast(),
                sink.len(),
                libc::MSG_DONTWAIT,
            )
        };
        if n < sink.len() as isize {
            break;
        }
    }
    let _ = send_now(fd.as_raw_fd(), line);
    drop(fd);
}

/// Sends `bytes` on socket `fd` without waiting (and without SIGPIPE): how many the
/// socket took, which may be fewer than all, or the error (`EAGAIN` when it took none).
pub fn send_now(fd: RawFd, bytes: &[u8]) -> io::Result<usize> {
    // SAFETY: `bytes` is a live buffer of `bytes.len()` bytes; the kernel only reads it.
    let n = unsafe {
        libc::send(
            fd,
            bytes.as_ptr().cast(),
            bytes.len(),
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

/// Whether the peer of socket `fd` has closed its side (or the socket failed), looked at
/// without blocking and without taking any input: a blocked client's connection, whose
/// loop arms no receive while the command runs.
pub fn peer_closed(fd: RawFd) -> bool {
    let mut byte = [0u8; 1];
    // SAFETY: `byte` is a live buffer of one byte; `fd` is a socket the caller's
    // connection keeps open for the duration of the call.
    let n = unsafe {
        libc::recv(
            fd,
            byte.as_mut_ptr().cast(),
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    match n {
        0 => true,
        n if n > 0 => false,
        _ => {
            let e = std::io::Error::last_os_error().raw_os_error();
            !matches!(e, Some(libc::EAGAIN) | Some(libc::EINTR))
        }
    }
}

fn listen_one(addr: &SocketAddr) -> io::Result<OwnedFd> {
    let domain = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = check(unsafe { libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `fd` is a fresh descriptor we own.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    set_int_opt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    set_int_opt(fd, libc::SOL_SOCKET, libc::SO_REUSEPORT, 1)?;
    let (storage, len) = sockaddr(addr);
    // SAFETY: `storage` holds a valid address of `len` bytes.
    check(unsafe { libc::bind(fd, &storage as *const _ as *const libc::sockaddr, len) })?;
    // SAFETY: plain listen(2) on our socket.
    check(unsafe { libc::listen(fd, BACKLOG) })?;
    Ok(owned)
}

/// The address `getsockname` (local) or `getpeername` (peer) reports for `fd`.
fn socket_addr(fd: RawFd, peer: bool) -> io::Result<SocketAddr> {
    // SAFETY: sockaddr_storage is plain old data; the call fills at most `len` bytes.
    let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    let ptr = &mut storage as *mut _ as *mut libc::sockaddr;
    // SAFETY: as above.
    check(unsafe {
        if peer {
            libc::getpeername(fd, ptr, &mut len)
        } else {
            libc::getsockname(fd, ptr, &mut len)
        }
    })?;
    match storage.ss_family as i32 {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let sin = unsafe { &*(&storage as *const _ as *const libc::sockaddr_in) };
            let ip = std::net::Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Ok(SocketAddr::new(IpAddr::V4(ip), u16::from_be(sin.sin_port)))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let sin6 = unsafe { &*(&storage as *const _ as *const libc::sockaddr_in6) };
            let ip = std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Ok(SocketAddr::new(
                IpAddr::V6(ip),
                u16::from_be(sin6.sin6_port),
            ))
        }
        family => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected address family {family}"),
        )),
    }
}

/// The local address a socket is bound to.
pub fn local_addr(fd: &OwnedFd) -> io::Result<SocketAddr> {
    socket_addr(fd.as_raw_fd(), false)
}

/// The address of a connected socket's peer.
pub fn peer_addr(fd: RawFd) -> io::Result<SocketAddr> {
    socket_addr(fd, true)
}

/// Fails with EADDRINUSE if anyone already listens on `addr`. A socket without
/// SO_REUSEPORT cannot join a reuseport group, so this catches a second server that would
/// otherwise silently share the port (and half the connections) with a running one.
fn ensure_free(addr: &SocketAddr) -> io::Result<()> {
    let domain = if addr.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = check(unsafe { libc::socket(domain, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) })?;
    // SAFETY: `fd` is a fresh descriptor we own; it closes when `_probe` drops.
    let _probe = unsafe { OwnedFd::from_raw_fd(fd) };
    set_int_opt(fd, libc::SOL_SOCKET, libc::SO_REUSEADDR, 1)?;
    let (storage, len) = sockaddr(addr);
    // SAFETY: `storage` holds a valid address of `len` bytes.
    check(unsafe { libc::bind(fd, &storage as *const _ as *const libc::sockaddr, len) }).map(drop)
}

/// Opens `count` SO_REUSEPORT listeners on `bind:port`; with port 0 the first one picks
/// a free port and the others join it. Returns them with the address they listen on.
pub fn listen_group(bind: &str, port: u16, count: usize) -> io::Result<(Vec<OwnedFd>, SocketAddr)> {
    let addr = (bind, port)
        .to_socket_addrs()
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot resolve bind address '{bind}': {e}"),
            )
        })?
        .next()
        .ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("no address for '{bind}'"),
            )
        })?;
    if addr.port() != 0 {
        ensure_free(&addr).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot listen on {addr}: {e} (is another server running?)"),
            )
        })?;
    }
    let first = listen_one(&addr)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}")))?;
    let actual = local_addr(&first)?;
    let mut fds = vec![first];
    for _ in 1..count {
        fds.push(listen_one(&actual)?);
    }
    Ok((fds, actual))
}
