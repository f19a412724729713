//! File descriptors over Unix sockets (SCM_RIGHTS), peer credentials (SO_PEERCRED), and
//! the line and frame formats of the handoff. The only unsafe code of the handoff.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

/// At most this many descriptors ride on one message (listeners of 2 x 256 cores).
pub const MAX_FDS: usize = 512;
/// The longest control line accepted.
pub const MAX_LINE: usize = 4096;
/// The largest connection frame accepted (a session carries its unparsed input, which the
/// query buffer limit bounds at 1 GiB).
pub const MAX_FRAME: usize = 1 << 30;

fn cmsg_space(fds: usize) -> usize {
    // SAFETY: CMSG_SPACE is a pure size computation.
    unsafe { libc::CMSG_SPACE((fds * std::mem::size_of::<RawFd>()) as u32) as usize }
}

/// Sends all of `bytes`, with `fds` attached to the first of them.
pub fn send_with_fds(sock: &UnixStream, bytes: &[u8], fds: &[RawFd]) -> io::Result<()> {
    if fds.len() > MAX_FDS {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "too many descriptors",
        ));
    }
    let mut sent = 0;
    while sent < bytes.len() {
        let rest = &bytes[sent..];
        let mut iov = libc::iovec {
            iov_base: rest.as_ptr() as *mut libc::c_void,
            iov_len: rest.len(),
        };
        // u64 storage keeps the control buffer aligned for cmsghdr.
        let mut control = vec![0u64; cmsg_space(fds.len()).div_ceil(8)];
        // SAFETY: msghdr is plain old data; all-zero is valid.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if sent == 0 && !fds.is_empty() {
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = cmsg_space(fds.len()) as _;
            // SAFETY: the control buffer holds one cmsghdr with room for `fds`, as
            // CMSG_SPACE computed; CMSG_FIRSTHDR/CMSG_DATA point inside it.
            unsafe {
                let c = libc::CMSG_FIRSTHDR(&msg);
                (*c).cmsg_level = libc::SOL_SOCKET;
                (*c).cmsg_type = libc::SCM_RIGHTS;
                (*c).cmsg_len = libc::CMSG_LEN(std::mem::size_of_val(fds) as u32) as _;
                std::ptr::copy_nonoverlapping(
                    fds.as_ptr(),
                    libc::CMSG_DATA(c).cast::<RawFd>(),
                    fds.len(),
                );
            }
        }
        // SAFETY: `msg` points at live buffers for the duration of the call.
        let n = unsafe { libc::sendmsg(sock.as_raw_fd(), &msg, libc::MSG_NOSIGNAL) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        sent += n as usize;
    }
    Ok(())
}

/// Receives up to `buf.len()` bytes and any descriptors attached to them. Returns the byte
/// count (0 at EOF).
fn recv_with_fds(sock: &UnixStream, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<usize> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut control = vec![0u64; cmsg_space(MAX_FDS).div_ceil(8)];
    loop {
        // SAFETY: msghdr is plain old data; all-zero is valid.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = (control.len() * 8) as _;
        // SAFETY: `msg` points at live buffers; CLOEXEC keeps received fds from leaking
        // into children.
        let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        // SAFETY: the kernel filled `msg.msg_control` with `msg_controllen` bytes of
        // cmsghdrs; CMSG_FIRSTHDR/NXTHDR walk exactly those, and SCM_RIGHTS data holds
        // descriptors the kernel just installed for us, which we now own.
        unsafe {
            let mut c = libc::CMSG_FIRSTHDR(&msg);
            while !c.is_null() {
                if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SCM_RIGHTS {
                    let data = libc::CMSG_DATA(c).cast::<RawFd>();
                    let len = (*c).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                    for i in 0..len / std::mem::size_of::<RawFd>() {
                        fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                    }
                }
                c = libc::CMSG_NXTHDR(&msg, c);
            }
        }
        if msg.msg_flags & libc::MSG_CTRUNC != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "descriptors were cut off",
            ));
        }
        return Ok(n as usize);
    }
}

/// Reads one `\n`-terminated line a byte at a time (so nothing after it is consumed),
/// collecting the descriptors that came with it. `None` at EOF before any byte.
pub fn read_line(sock: &UnixStream) -> io::Result<Option<(String, Vec<OwnedFd>)>> {
    let mut line = Vec::new();
    let mut fds = Vec::new();
    loop {
        let mut b = [0u8; 1];
        let n = recv_with_fds(sock, &mut b, &mut fds)?;
        if n == 0 {
            if line.is_empty() {
                return Ok(None);
            }
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if b[0] == b'\n' {
            break;
        }
        if line.len() >= MAX_LINE {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
        }
        line.push(b[0]);
    }
    let text = String::from_utf8(line)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "line is not UTF-8"))?;
    Ok(Some((text.trim_end_matches('\r').to_string(), fds)))
}

/// Sends one line (a `\n` is added) with `fds` attached.
pub fn send_line(sock: &UnixStream, line: &str, fds: &[RawFd]) -> io::Result<()> {
    let mut bytes = Vec::with_capacity(line.len() + 1);
    bytes.extend_from_slice(line.as_bytes());
    bytes.push(b'\n');
    send_with_fds(sock, &bytes, fds)
}

/// Sends one connection frame: a 4-byte big-endian length carrying `fd`, then `payload`.
pub fn send_frame(sock: &UnixStream, fd: RawFd, payload: &[u8]) -> io::Result<()> {
    if payload.len() > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "frame too large",
        ));
    }
    send_with_fds(sock, &(payload.len() as u32).to_be_bytes(), &[fd])?;
    let mut s = sock;
    std::io::Write::write_all(&mut s, payload)
}

/// Receives one connection frame: its descriptor and payload. `None` at EOF between
/// frames.
pub fn recv_frame(sock: &UnixStream) -> io::Result<Option<(OwnedFd, Vec<u8>)>> {
    let mut head = [0u8; 4];
    let mut fds = Vec::new();
    let mut got = 0;
    while got < 4 {
        let n = recv_with_fds(sock, &mut head[got..], &mut fds)?;
        if n == 0 {
            if got == 0 && fds.is_empty() {
                return Ok(None);
            }
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        got += n;
    }
    let len = u32::from_be_bytes(head) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "frame too large",
        ));
    }
    let mut fds = fds.into_iter();
    let (Some(fd), None) = (fds.next(), fds.next()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "a frame must carry exactly one descriptor",
        ));
    };
    let mut payload = vec![0u8; len];
    let mut s = sock;
    s.read_exact(&mut payload)?;
    Ok(Some((fd, payload)))
}

/// Whether the process at the other end of `sock` may drive this server's handoff: it
/// runs as the same user, or as root (the control socket's and the forwarding socket's
/// rule).
pub fn peer_allowed(sock: &UnixStream) -> bool {
    peer_uid(sock).is_ok_and(|uid| uid == 0 || uid == my_uid())
}

/// The uid of the process at the other end of `sock`.
pub fn peer_uid(sock: &UnixStream) -> io::Result<u32> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` is a live ucred and `len` its size.
    let r = unsafe {
        libc::getsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cred.uid)
}

/// The socket's inode: the same for every descriptor of one socket (a clone of it too).
pub fn inode(sock: &UnixStream) -> u64 {
    // SAFETY: `st` is a live stat buffer; fstat fills it for an open descriptor.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above.
    if unsafe { libc::fstat(sock.as_raw_fd(), &mut st) } < 0 {
        return 0;
    }
    st.st_ino
}

/// This process's uid.
pub fn my_uid() -> u32 {
    // SAFETY: getuid cannot fail.
    unsafe { libc::getuid() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_carry_descriptors_and_stop_at_the_newline() {
        let (a, b) = UnixStream::pair().unwrap();
        let (x, _y) = UnixStream::pair().unwrap();
        send_line(&a, "HELLO 1", &[x.as_raw_fd()]).unwrap();
        send_line(&a, "NEXT", &[]).unwrap();
        let (line, fds) = read_line(&b).unwrap().unwrap();
        assert_eq!(line, "HELLO 1");
        assert_eq!(fds.len(), 1);
        let (line, fds) = read_line(&b).unwrap().unwrap();
        assert_eq!(line, "NEXT");
        assert!(fds.is_empty());
        drop(a);
        assert!(read_line(&b).unwrap().is_none());
    }

    #[test]
    fn frames_carry_one_descriptor_and_their_payload() {
        let (a, b) = UnixStream::pair().unwrap();
        let (x, _y) = UnixStream::pair().unwrap();
        let payload = vec![7u8; 300_000];
        let sender = {
            let a = a.try_clone().unwrap();
            let fd = x.as_raw_fd();
            let p = payload.clone();
            std::thread::spawn(move || {
                send_frame(&a, fd, &p).unwrap();
                send_frame(&a, fd, b"").unwrap();
            })
        };
        let (_fd, got) = recv_frame(&b).unwrap().unwrap();
        assert_eq!(got, payload);
        let (_fd, got) = recv_frame(&b).unwrap().unwrap();
        assert!(got.is_empty());
        sender.join().unwrap();
        drop(a);
        drop(x);
        assert!(recv_frame(&b).unwrap().is_none());
    }

    #[test]
    fn a_frame_without_a_descriptor_is_refused() {
        let (a, b) = UnixStream::pair().unwrap();
        let mut s = &a;
        std::io::Write::write_all(&mut s, &3u32.to_be_bytes()).unwrap();
        std::io::Write::write_all(&mut s, b"abc").unwrap();
        assert!(recv_frame(&b).is_err());
    }

    #[test]
    fn over_long_lines_are_refused() {
        let (a, b) = UnixStream::pair().unwrap();
        let long = "x".repeat(MAX_LINE + 10);
        let t = std::thread::spawn(move || {
            let _ = send_line(&a, &long, &[]);
        });
        assert!(read_line(&b).is_err());
        drop(b);
        t.join().unwrap();
    }

    #[test]
    fn the_peer_is_this_process_user() {
        let (a, _b) = UnixStream::pair().unwrap();
        assert_eq!(peer_uid(&a).unwrap(), my_uid());
    }
}
