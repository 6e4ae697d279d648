//! SPDY/3.1, the server side of the subset client-go's port-forward uses (its `spdystream`):
//! the peer opens streams (SYN_STREAM), we accept (SYN_REPLY) or refuse (RST_STREAM CANCEL,
//! as apimachinery's handler does), data flows both ways as DATA frames, FIN half-closes,
//! RST_STREAM aborts, PINGs from the peer are echoed, GOAWAY stops new streams.
//!
//! Flow control: spdystream neither sends WINDOW_UPDATE nor honours it, so enforcing our send
//! window would stall every transfer after 64 KiB. We therefore ignore the peer's window, and
//! (for SPDY peers that do count) grant back what we consumed with WINDOW_UPDATE for the
//! stream and, as 3.1 adds, for the connection.

use std::collections::HashMap;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

pub mod dictionary;
pub mod frame;

pub use frame::{header, Decoder, Encoder, Frame, FrameError, Headers};

/// Largest DATA payload we send: well under the 24-bit limit, one pipe read.
const MAX_DATA: usize = 32 * 1024;
/// Consumed bytes granted back in one WINDOW_UPDATE (half the 64 KiB initial window).
const WINDOW_GRANT: usize = 32 * 1024;

/// What the peer did on a stream, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// Bytes.
    Data(Vec<u8>),
    /// The peer finished its half (FIN); nothing more comes.
    Fin,
    /// The peer aborted the stream (RST_STREAM with this status).
    Reset(u32),
    /// The connection ended.
    Gone,
}

/// The receiving half of a stream the peer opened.
pub struct StreamReader {
    id: u32,
    rx: mpsc::Receiver<Incoming>,
    out: mpsc::Sender<Frame>,
    consumed: usize,
    ended: bool,
}

impl StreamReader {
    /// The next event; after [`Incoming::Fin`], [`Incoming::Reset`] or [`Incoming::Gone`] it
    /// repeats [`Incoming::Gone`].
    pub async fn read(&mut self) -> Incoming {
        if self.ended {
            return Incoming::Gone;
        }
        let event = self.rx.recv().await.unwrap_or(Incoming::Gone);
        match &event {
            Incoming::Data(data) => {
                self.consumed += data.len();
                if self.consumed >= WINDOW_GRANT {
                    let delta = std::mem::take(&mut self.consumed) as u32;
                    let _ = self
                        .out
                        .send(Frame::WindowUpdate {
                            stream_id: self.id,
                            delta,
                        })
                        .await;
                    let _ = self.out.send(Frame::WindowUpdate { stream_id: 0, delta }).await;
                }
            }
            _ => self.ended = true,
        }
        event
    }
}

/// The sending half of a stream; cheap to clone.
#[derive(Clone)]
pub struct StreamWriter {
    id: u32,
    out: mpsc::Sender<Frame>,
}

impl StreamWriter {
    /// Sends `data` as DATA frames; `false` once the connection is gone.
    pub async fn write(&self, data: &[u8]) -> bool {
        for chunk in data.chunks(MAX_DATA) {
            let frame = Frame::Data {
                stream_id: self.id,
                fin: false,
                data: chunk.to_vec(),
            };
            if self.out.send(frame).await.is_err() {
                return false;
            }
        }
        true
    }

    /// Finishes our half (an empty DATA frame with FIN).
    pub async fn finish(&self) {
        let _ = self
            .out
            .send(Frame::Data {
                stream_id: self.id,
                fin: true,
                data: Vec::new(),
            })
            .await;
    }

    /// Aborts the stream with `status` (see [`frame::rst`]).
    pub async fn reset(&self, status: u32) {
        let _ = self
            .out
            .send(Frame::RstStream {
                stream_id: self.id,
                status,
            })
            .await;
    }
}

/// A stream the peer opened and we accepted.
pub struct Stream {
    /// Its id (odd: opened by the client).
    pub id: u32,
    /// Its SYN_STREAM headers.
    pub headers: Headers,
    /// What arrives on it.
    pub reader: StreamReader,
    /// How to send on it.
    pub writer: StreamWriter,
}

/// Serves a SPDY/3.1 connection on `io` as the server. Each stream the peer opens is passed to
/// `accept`: `Ok` replies SYN_REPLY and delivers the stream on the returned channel, `Err`
/// refuses it with RST_STREAM (the text is only logged). The channel ends with the connection.
pub fn serve<IO, F>(io: IO, accept: F) -> mpsc::Receiver<Stream>
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
    F: Fn(&Headers) -> Result<(), String> + Send + 'static,
{
    let (read_half, mut write_half) = tokio::io::split(io);
    let (out, mut frames) = mpsc::channel::<Frame>(64);
    let (streams_tx, streams_rx) = mpsc::channel::<Stream>(16);
    // The writer owns the compressor: header blocks must go out in the order they were made.
    tokio::spawn(async move {
        let mut encoder = Encoder::new();
        while let Some(frame) = frames.recv().await {
            if write_half.write_all(&encoder.encode(&frame)).await.is_err() {
                return;
            }
            if frames.is_empty() && write_half.flush().await.is_err() {
                return;
            }
        }
        let _ = write_half.shutdown().await;
    });
    tokio::spawn(read_loop(read_half, out, streams_tx, accept));
    streams_rx
}

async fn read_loop<R, F>(mut io: R, out: mpsc::Sender<Frame>, streams: mpsc::Sender<Stream>, accept: F)
where
    R: AsyncRead + Unpin,
    F: Fn(&Headers) -> Result<(), String>,
{
    let mut decoder = Decoder::new();
    let mut buf: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut open: HashMap<u32, mpsc::Sender<Incoming>> = HashMap::new();
    let mut highest = 0u32;
    let mut going_away = false;
    'connection: loop {
        loop {
            let (frame, used) = match decoder.decode(&buf) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => {
                    tracing::debug!("spdy: {e}");
                    let _ = out
                        .send(Frame::GoAway {
                            last_good_stream_id: highest,
                            status: 1,
                        })
                        .await;
                    break 'connection;
                }
            };
            buf.drain(..used);
            match frame {
                Frame::SynStream {
                    stream_id,
                    flags,
                    headers,
                    ..
                } => {
                    if stream_id % 2 == 0 || stream_id <= highest || going_away {
                        let status = if going_away {
                            frame::rst::REFUSED_STREAM
                        } else {
                            frame::rst::PROTOCOL_ERROR
                        };
                        let _ = out.send(Frame::RstStream { stream_id, status }).await;
                        continue;
                    }
                    highest = stream_id;
                    if let Err(why) = accept(&headers) {
                        tracing::debug!("spdy: refusing stream {stream_id}: {why}");
                        let _ = out
                            .send(Frame::RstStream {
                                stream_id,
                                status: frame::rst::CANCEL,
                            })
                            .await;
                        continue;
                    }
                    let (tx, rx) = mpsc::channel(32);
                    if flags & frame::FLAG_FIN != 0 {
                        let _ = tx.try_send(Incoming::Fin);
                    } else {
                        open.insert(stream_id, tx);
                    }
                    let _ = out
                        .send(Frame::SynReply {
                            stream_id,
                            fin: false,
                            headers: Vec::new(),
                        })
                        .await;
                    let stream = Stream {
                        id: stream_id,
                        headers,
                        reader: StreamReader {
                            id: stream_id,
                            rx,
                            out: out.clone(),
                            consumed: 0,
                            ended: false,
                        },
                        writer: StreamWriter {
                            id: stream_id,
                            out: out.clone(),
                        },
                    };
                    if streams.send(stream).await.is_err() {
                        break 'connection;
                    }
                }
                Frame::Data { stream_id, fin, data } => {
                    let Some(tx) = open.get(&stream_id) else {
                        // Data after we saw its FIN or reset it is late, not wrong; only a
                        // stream never opened is invalid.
                        if stream_id > highest {
                            let _ = out
                                .send(Frame::RstStream {
                                    stream_id,
                                    status: frame::rst::INVALID_STREAM,
                                })
                                .await;
                        }
                        continue;
                    };
                    if !data.is_empty() && tx.send(Incoming::Data(data)).await.is_err() {
                        // The handler is done with it; nothing to deliver to.
                        open.remove(&stream_id);
                        continue;
                    }
                    if fin {
                        let _ = tx.send(Incoming::Fin).await;
                        open.remove(&stream_id);
                    }
                }
                Frame::RstStream { stream_id, status } => {
                    if let Some(tx) = open.remove(&stream_id) {
                        let _ = tx.send(Incoming::Reset(status)).await;
                    }
                }
                Frame::Ping { id } => {
                    // Odd ids are the client's; an even one would be an answer to us.
                    if id % 2 == 1 {
                        let _ = out.send(Frame::Ping { id }).await;
                    }
                }
                Frame::GoAway { .. } => going_away = true,
                // Headers after the SYN, settings and windows change nothing here (see the
                // module docs on flow control); replies are for streams we never open.
                Frame::Headers { .. }
                | Frame::Settings { .. }
                | Frame::WindowUpdate { .. }
                | Frame::SynReply { .. }
                | Frame::Unknown { .. } => {}
            }
        }
        let mut chunk = [0u8; 32 * 1024];
        match io.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    for (_, tx) in open.drain() {
        let _ = tx.try_send(Incoming::Gone);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A client end: its own encoder/decoder over a duplex pipe.
    struct Peer {
        io: tokio::io::DuplexStream,
        enc: Encoder,
        dec: Decoder,
        buf: Vec<u8>,
    }

    impl Peer {
        async fn send(&mut self, frame: Frame) {
            let bytes = self.enc.encode(&frame);
            self.io.write_all(&bytes).await.unwrap();
        }
        async fn recv(&mut self) -> Option<Frame> {
            loop {
                if let Some((frame, used)) = self.dec.decode(&self.buf).unwrap() {
                    self.buf.drain(..used);
                    return Some(frame);
                }
                let mut chunk = [0u8; 4096];
                let n = self.io.read(&mut chunk).await.unwrap();
                if n == 0 {
                    return None;
                }
                self.buf.extend_from_slice(&chunk[..n]);
            }
        }
    }

    fn syn(stream_id: u32, port: &str) -> Frame {
        Frame::SynStream {
            stream_id,
            associated_to: 0,
            priority: 0,
            flags: 0,
            headers: vec![("port".into(), port.into())],
        }
    }

    fn start() -> (Peer, mpsc::Receiver<Stream>) {
        let (client, server) = tokio::io::duplex(256 * 1024);
        let streams = serve(server, |h| match header(h, "port") {
            Some("0") => Err("port must be > 0".into()),
            _ => Ok(()),
        });
        (
            Peer {
                io: client,
                enc: Encoder::new(),
                dec: Decoder::new(),
                buf: Vec::new(),
            },
            streams,
        )
    }

    #[tokio::test]
    async fn accepted_streams_get_a_reply_and_carry_data_both_ways() {
        let (mut peer, mut streams) = start();
        peer.send(syn(1, "80")).await;
        let mut stream = streams.recv().await.unwrap();
        assert_eq!(header(&stream.headers, "port"), Some("80"));
        assert_eq!(
            peer.recv().await,
            Some(Frame::SynReply {
                stream_id: 1,
                fin: false,
                headers: vec![]
            })
        );
        peer.send(Frame::Data {
            stream_id: 1,
            fin: true,
            data: b"ping".to_vec(),
        })
        .await;
        assert_eq!(stream.reader.read().await, Incoming::Data(b"ping".to_vec()));
        assert_eq!(stream.reader.read().await, Incoming::Fin);
        assert!(stream.writer.write(b"pong").await);
        stream.writer.finish().await;
        assert_eq!(
            peer.recv().await,
            Some(Frame::Data {
                stream_id: 1,
                fin: false,
                data: b"pong".to_vec()
            })
        );
        assert_eq!(
            peer.recv().await,
            Some(Frame::Data {
                stream_id: 1,
                fin: true,
                data: vec![]
            })
        );
    }

    #[tokio::test]
    async fn refused_streams_are_reset_and_never_delivered() {
        let (mut peer, mut streams) = start();
        peer.send(syn(1, "0")).await;
        assert_eq!(
            peer.recv().await,
            Some(Frame::RstStream {
                stream_id: 1,
                status: frame::rst::CANCEL
            })
        );
        peer.send(syn(3, "80")).await;
        assert_eq!(streams.recv().await.unwrap().id, 3);
    }

    #[tokio::test]
    async fn client_pings_are_echoed_and_reset_reaches_the_handler() {
        let (mut peer, mut streams) = start();
        peer.send(Frame::Ping { id: 7 }).await;
        assert_eq!(peer.recv().await, Some(Frame::Ping { id: 7 }));
        peer.send(syn(1, "80")).await;
        let mut stream = streams.recv().await.unwrap();
        peer.send(Frame::RstStream {
            stream_id: 1,
            status: frame::rst::CANCEL,
        })
        .await;
        assert_eq!(stream.reader.read().await, Incoming::Reset(frame::rst::CANCEL));
        assert_eq!(stream.reader.read().await, Incoming::Gone);
    }

    #[tokio::test]
    async fn consumed_data_is_granted_back_with_window_updates() {
        let (mut peer, mut streams) = start();
        peer.send(syn(1, "80")).await;
        let mut stream = streams.recv().await.unwrap();
        assert!(matches!(peer.recv().await, Some(Frame::SynReply { .. })));
        for _ in 0..2 {
            peer.send(Frame::Data {
                stream_id: 1,
                fin: false,
                data: vec![0; 16 * 1024],
            })
            .await;
            assert!(matches!(stream.reader.read().await, Incoming::Data(d) if d.len() == 16 * 1024));
        }
        assert_eq!(
            peer.recv().await,
            Some(Frame::WindowUpdate {
                stream_id: 1,
                delta: 32 * 1024
            })
        );
        assert_eq!(
            peer.recv().await,
            Some(Frame::WindowUpdate {
                stream_id: 0,
                delta: 32 * 1024
            })
        );
    }

    #[tokio::test]
    async fn after_goaway_new_streams_are_refused_and_the_end_of_the_connection_reaches_streams() {
        let (mut peer, mut streams) = start();
        peer.send(syn(1, "80")).await;
        let mut stream = streams.recv().await.unwrap();
        assert!(matches!(peer.recv().await, Some(Frame::SynReply { .. })));
        peer.send(Frame::GoAway {
            last_good_stream_id: 0,
            status: 0,
        })
        .await;
        peer.send(syn(3, "80")).await;
        assert_eq!(
            peer.recv().await,
            Some(Frame::RstStream {
                stream_id: 3,
                status: frame::rst::REFUSED_STREAM
            })
        );
        drop(peer);
        assert_eq!(stream.reader.read().await, Incoming::Gone);
        assert!(streams.recv().await.is_none());
    }
}
