//! Bulk TCP copy between two sockets without bringing the bytes into userspace: once a
//! direction carries bulk data it moves socket → pipe → socket with splice(2), so the kernel
//! hands pages over instead of copying them twice through a buffer.

use std::io;

use rustix::net::Shutdown;
use rustix::pipe::{fcntl_setpipe_size, pipe_with, splice, PipeFlags, SpliceFlags};
use tokio::io::Interest;
use tokio::net::TcpStream;

/// How a TCP connection's bytes are copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum CopyMode {
    /// A buffer for the first small reads, then splice(2) through a pipe per direction once a
    /// read fills the buffer (the default).
    #[default]
    Splice,
    /// `tokio::io::copy_bidirectional` through userspace buffers (for comparison, and where
    /// splice is not available).
    Buffered,
}

/// The pipe size asked for: large enough for a few TCP windows' worth of segments per call.
/// The kernel may grant less (`/proc/sys/fs/pipe-max-size`); the default 64 KiB still works.
const PIPE_SIZE: usize = 1 << 20;

/// Copies both directions until both have ended, passing each end-of-stream on as a
/// half-close (`shutdown(SHUT_WR)`), like `tokio::io::copy_bidirectional`. Returns the bytes
/// moved `a → b` and `b → a`. The first error in either direction ends both.
pub async fn splice_bidirectional(a: &TcpStream, b: &TcpStream) -> io::Result<(u64, u64)> {
    tokio::try_join!(one_way(a, b), one_way(b, a))
}

/// Bytes copied through a buffer before switching to splice: small exchanges (requests,
/// answers, handshakes) never pay for the pipe, and a read that fills the buffer says bulk
/// data is flowing.
const SMALL: usize = 16 << 10;

async fn one_way(src: &TcpStream, dst: &TcpStream) -> io::Result<u64> {
    let mut total = 0u64;
    let mut buf = Vec::new();
    loop {
        let n = src
            .async_io(Interest::READABLE, || {
                // Allocated once data is waiting, so an idle direction costs nothing.
                if buf.is_empty() {
                    buf = vec![0u8; SMALL];
                }
                src.try_read(&mut buf)
            })
            .await?;
        if n == 0 {
            let _ = rustix::net::shutdown(dst, Shutdown::Write);
            return Ok(total);
        }
        let mut done = 0;
        while done < n {
            done += dst
                .async_io(Interest::WRITABLE, || dst.try_write(&buf[done..n]))
                .await?;
        }
        total += n as u64;
        if n == SMALL {
            break;
        }
    }
    drop(buf);
    let (pipe_r, pipe_w) = pipe_with(PipeFlags::CLOEXEC | PipeFlags::NONBLOCK)?;
    let capacity = fcntl_setpipe_size(&pipe_w, PIPE_SIZE).unwrap_or(1 << 16);
    let flags = SpliceFlags::MOVE | SpliceFlags::NONBLOCK;
    loop {
        // The pipe is empty here, so EAGAIN can only mean the socket has nothing to read.
        let n = src
            .async_io(Interest::READABLE, || {
                splice(src, None, &pipe_w, None, capacity, flags).map_err(io::Error::from)
            })
            .await?;
        if n == 0 {
            // The peer finished sending: pass the half-close on. The socket may already be
            // gone (the other direction failed), which is not this direction's error.
            let _ = rustix::net::shutdown(dst, Shutdown::Write);
            return Ok(total);
        }
        let mut left = n;
        while left > 0 {
            left -= dst
                .async_io(Interest::WRITABLE, || {
                    splice(&pipe_r, None, dst, None, left, flags).map_err(io::Error::from)
                })
                .await?;
        }
        total += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    async fn pair() -> (TcpStream, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let c = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (s, _) = l.accept().await.unwrap();
        (c, s)
    }

    #[tokio::test]
    async fn splice_moves_every_byte_both_ways_and_passes_half_closes_on() {
        // client <-> [proxy_a | proxy_b] <-> server
        let (mut client, proxy_a) = pair().await;
        let (proxy_b, mut server) = pair().await;
        let copy = tokio::spawn(async move { splice_bidirectional(&proxy_a, &proxy_b).await });
        let up: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        let down: Vec<u8> = (0..1_000_000u32).map(|i| (i % 239) as u8).collect();
        let (up2, down2) = (up.clone(), down.clone());
        let server_side = tokio::spawn(async move {
            let mut got = Vec::new();
            server.write_all(&down2).await.unwrap();
            server.shutdown().await.unwrap();
            server.read_to_end(&mut got).await.unwrap();
            assert_eq!(got, up2);
        });
        let (mut cr, mut cw) = client.split();
        let mut got = Vec::new();
        let (w, r) = tokio::join!(
            async {
                cw.write_all(&up).await?;
                cw.shutdown().await
            },
            cr.read_to_end(&mut got)
        );
        w.unwrap();
        r.unwrap();
        assert_eq!(got, down);
        server_side.await.unwrap();
        assert_eq!(copy.await.unwrap().unwrap(), (up.len() as u64, down.len() as u64));
    }
}
