//! WebSocket (RFC 6455), the small part the kubelet API needs: the handshake's accept key and
//! subprotocol choice, frame encoding and decoding (masked or not, 7/16/64-bit lengths),
//! reassembly of fragmented messages, and a writer task that owns the write half.
//!
//! Both ends use it: the endpoint (unmasked frames out) and the tests' client (masked).

use std::io;

use base64::Engine;
use sha1::{Digest, Sha1};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// Opcodes (RFC 6455 section 5.2).
pub mod opcode {
    /// A further fragment of the message before.
    pub const CONTINUATION: u8 = 0x0;
    /// A UTF-8 message.
    pub const TEXT: u8 = 0x1;
    /// A binary message.
    pub const BINARY: u8 = 0x2;
    /// Closing handshake.
    pub const CLOSE: u8 = 0x8;
    /// Liveness check; answered with a pong carrying the same payload.
    pub const PING: u8 = 0x9;
    /// Answer to a ping.
    pub const PONG: u8 = 0xA;
}

/// Close code of a normal closure.
pub const CLOSE_NORMAL: u16 = 1000;
/// Close code for a protocol violation.
pub const CLOSE_PROTOCOL_ERROR: u16 = 1002;
/// Messages larger than this are refused; remote-command and tunnel messages are far smaller.
pub const MAX_MESSAGE: usize = 16 << 20;

const GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The `Sec-WebSocket-Accept` value for a client's `Sec-WebSocket-Key`.
pub fn accept_key(key: &str) -> String {
    let mut sha = Sha1::new();
    sha.update(key.trim().as_bytes());
    sha.update(GUID.as_bytes());
    base64::engine::general_purpose::STANDARD.encode(sha.finalize())
}

/// The first protocol the client offered (in its order of preference, as gorilla's and
/// x/net's servers choose) that `supported` has. `offered` is the values of every
/// `Sec-WebSocket-Protocol` header, each comma-separated.
pub fn choose_protocol<'a>(offered: &[&str], supported: &[&'a str]) -> Option<&'a str> {
    offered
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find_map(|p| supported.iter().copied().find(|s| *s == p))
}

/// One frame on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Last fragment of its message.
    pub fin: bool,
    /// See [`opcode`].
    pub opcode: u8,
    /// Unmasked payload.
    pub payload: Vec<u8>,
}

/// The wire bytes of one frame; clients pass a `mask`, servers `None`.
pub fn encode_frame(fin: bool, op: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 14);
    out.push(if fin { 0x80 } else { 0 } | (op & 0x0f));
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= u16::MAX as usize => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// The first whole frame in `buf` (unmasked) and how many bytes it took, or `None` until
/// more bytes arrive.
pub fn decode_frame(buf: &[u8]) -> Result<Option<(Frame, usize)>, io::Error> {
    if buf.len() < 2 {
        return Ok(None);
    }
    let fin = buf[0] & 0x80 != 0;
    if buf[0] & 0x70 != 0 {
        return Err(protocol("reserved bits set without an extension"));
    }
    let op = buf[0] & 0x0f;
    let masked = buf[1] & 0x80 != 0;
    let (len, mut at) = match buf[1] & 0x7f {
        126 if buf.len() >= 4 => (u16::from_be_bytes([buf[2], buf[3]]) as u64, 4),
        127 if buf.len() >= 10 => (u64::from_be_bytes(buf[2..10].try_into().expect("8 bytes")), 10),
        126 | 127 => return Ok(None),
        n => (u64::from(n), 2),
    };
    if len > MAX_MESSAGE as u64 {
        return Err(protocol("frame too large"));
    }
    if op >= 0x8 && (len > 125 || !fin) {
        return Err(protocol("control frames are short and never fragmented"));
    }
    let key = if masked {
        let Some(k) = buf.get(at..at + 4) else { return Ok(None) };
        at += 4;
        Some([k[0], k[1], k[2], k[3]])
    } else {
        None
    };
    let end = at + len as usize;
    let Some(data) = buf.get(at..end) else { return Ok(None) };
    let payload = match key {
        Some(k) => data.iter().enumerate().map(|(i, b)| b ^ k[i % 4]).collect(),
        None => data.to_vec(),
    };
    Ok(Some((
        Frame {
            fin,
            opcode: op,
            payload,
        },
        end,
    )))
}

/// A whole message, or a control frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// A binary message (every remote-command and tunnel message is one).
    Binary(Vec<u8>),
    /// A text message.
    Text(Vec<u8>),
    /// A ping with its payload.
    Ping(Vec<u8>),
    /// A pong with its payload.
    Pong(Vec<u8>),
    /// The peer closes, with its code if it gave one.
    Close(Option<u16>),
}

/// Reads messages from the read half of a connection.
pub struct MessageReader<R> {
    io: R,
    buf: Vec<u8>,
    /// Opcode and payload so far of a fragmented message.
    partial: Option<(u8, Vec<u8>)>,
}

impl<R: AsyncRead + Unpin> MessageReader<R> {
    /// Reads from `io`; `leftover` is what was read past the handshake, if anything.
    pub fn new(io: R, leftover: Vec<u8>) -> Self {
        MessageReader {
            io,
            buf: leftover,
            partial: None,
        }
    }

    /// The next message, or `None` when the connection ends without a close frame.
    pub async fn next(&mut self) -> io::Result<Option<Message>> {
        loop {
            while let Some((frame, used)) = decode_frame(&self.buf)? {
                self.buf.drain(..used);
                if let Some(message) = self.assemble(frame)? {
                    return Ok(Some(message));
                }
            }
            let mut chunk = [0u8; 16 * 1024];
            let n = self.io.read(&mut chunk).await?;
            if n == 0 {
                return Ok(None);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn assemble(&mut self, frame: Frame) -> io::Result<Option<Message>> {
        match frame.opcode {
            opcode::PING => return Ok(Some(Message::Ping(frame.payload))),
            opcode::PONG => return Ok(Some(Message::Pong(frame.payload))),
            opcode::CLOSE => {
                let code = frame.payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
                return Ok(Some(Message::Close(code)));
            }
            opcode::CONTINUATION => {
                let Some((_, data)) = self.partial.as_mut() else {
                    return Err(protocol("continuation without a message"));
                };
                if data.len() + frame.payload.len() > MAX_MESSAGE {
                    return Err(protocol("message too large"));
                }
                data.extend_from_slice(&frame.payload);
            }
            opcode::TEXT | opcode::BINARY => {
                if self.partial.is_some() {
                    return Err(protocol("new message inside a fragmented one"));
                }
                self.partial = Some((frame.opcode, frame.payload));
            }
            _ => return Err(protocol("unknown opcode")),
        }
        if !frame.fin {
            return Ok(None);
        }
        let (op, data) = self.partial.take().expect("set above");
        Ok(Some(if op == opcode::TEXT {
            Message::Text(data)
        } else {
            Message::Binary(data)
        }))
    }
}

/// Sends messages through the writer task of [`spawn_writer`]; cheap to clone.
#[derive(Clone)]
pub struct MessageSender {
    tx: mpsc::Sender<Message>,
}

impl MessageSender {
    /// Queue a message; `false` once the connection is gone.
    pub async fn send(&self, message: Message) -> bool {
        self.tx.send(message).await.is_ok()
    }

    /// Queue a binary message.
    pub async fn binary(&self, data: Vec<u8>) -> bool {
        self.send(Message::Binary(data)).await
    }

    /// Resolves once the writer task has stopped (the connection is gone or closed).
    pub async fn closed(&self) {
        self.tx.closed().await
    }
}

/// Starts the task owning the write half: it writes queued messages in order (masked when
/// `client`), and after a close frame flushes, shuts the write half down and stops.
pub fn spawn_writer<W>(mut io: W, client: bool) -> (MessageSender, tokio::task::JoinHandle<()>)
where
    W: AsyncWrite + Unpin + Send + 'static,
{
    // Small: each message is at most one read of a pipe, and a full queue is backpressure
    // onto the producers rather than memory.
    let (tx, mut rx) = mpsc::channel::<Message>(16);
    let task = tokio::spawn(async move {
        while let Some(message) = rx.recv().await {
            let mask = client.then(rand::random::<[u8; 4]>);
            let (op, payload, last) = match message {
                Message::Binary(d) => (opcode::BINARY, d, false),
                Message::Text(d) => (opcode::TEXT, d, false),
                Message::Ping(d) => (opcode::PING, d, false),
                Message::Pong(d) => (opcode::PONG, d, false),
                Message::Close(code) => (
                    opcode::CLOSE,
                    code.map(|c| c.to_be_bytes().to_vec()).unwrap_or_default(),
                    true,
                ),
            };
            if io.write_all(&encode_frame(true, op, &payload, mask)).await.is_err() {
                break;
            }
            // Flush when nothing else is queued, so interactive output is not held back.
            if (last || rx.is_empty()) && io.flush().await.is_err() {
                break;
            }
            if last {
                let _ = io.shutdown().await;
                break;
            }
        }
    });
    (MessageSender { tx }, task)
}

fn protocol(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("websocket: {what}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_key_matches_the_rfc_example() {
        assert_eq!(accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn protocol_choice_follows_the_clients_order_across_headers() {
        let supported = ["v5.channel.k8s.io", "v4.channel.k8s.io"];
        assert_eq!(
            choose_protocol(&["v4.channel.k8s.io, v5.channel.k8s.io"], &supported),
            Some("v4.channel.k8s.io")
        );
        assert_eq!(
            choose_protocol(&["channel.k8s.io", "v5.channel.k8s.io"], &supported),
            Some("v5.channel.k8s.io")
        );
        assert_eq!(choose_protocol(&["base64.channel.k8s.io"], &supported), None);
    }

    #[test]
    fn frames_of_every_length_class_round_trip_masked_and_not() {
        for len in [0usize, 1, 125, 126, 65535, 65536, 200_000] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            for mask in [None, Some([1, 2, 3, 250])] {
                let wire = encode_frame(true, opcode::BINARY, &payload, mask);
                let (frame, used) = decode_frame(&wire).unwrap().unwrap();
                assert_eq!(used, wire.len());
                assert_eq!(
                    frame,
                    Frame {
                        fin: true,
                        opcode: opcode::BINARY,
                        payload: payload.clone()
                    }
                );
                assert_eq!(decode_frame(&wire[..wire.len() - 1]).unwrap(), None, "len {len}");
            }
        }
    }

    #[test]
    fn masking_changes_the_bytes_on_the_wire() {
        let wire = encode_frame(true, opcode::BINARY, b"abcd", Some([0xff; 4]));
        assert_eq!(&wire[6..], &[!b'a', !b'b', !b'c', !b'd']);
    }

    #[tokio::test]
    async fn fragments_are_reassembled_and_control_frames_interleave() {
        let mut wire = encode_frame(false, opcode::BINARY, b"\x01hel", Some([9, 8, 7, 6]));
        wire.extend(encode_frame(true, opcode::PING, b"p", Some([1, 1, 1, 1])));
        wire.extend(encode_frame(false, opcode::CONTINUATION, b"lo ", None));
        wire.extend(encode_frame(true, opcode::CONTINUATION, b"world", None));
        wire.extend(encode_frame(true, opcode::CLOSE, &1000u16.to_be_bytes(), None));
        let mut reader = MessageReader::new(&wire[..], Vec::new());
        assert_eq!(reader.next().await.unwrap(), Some(Message::Ping(b"p".to_vec())));
        assert_eq!(
            reader.next().await.unwrap(),
            Some(Message::Binary(b"\x01hello world".to_vec()))
        );
        assert_eq!(reader.next().await.unwrap(), Some(Message::Close(Some(1000))));
        assert_eq!(reader.next().await.unwrap(), None);
    }

    #[test]
    fn a_fragmented_ping_is_a_protocol_error() {
        let wire = encode_frame(false, opcode::PING, b"x", None);
        assert!(decode_frame(&wire).is_err());
    }

    #[tokio::test]
    async fn writer_sends_queued_messages_in_order_and_stops_after_close() {
        let (client, mut server) = tokio::io::duplex(1024);
        let (tx, task) = spawn_writer(client, false);
        assert!(tx.binary(vec![1, b'a']).await);
        assert!(tx.send(Message::Close(Some(CLOSE_NORMAL))).await);
        task.await.unwrap();
        assert!(!tx.binary(vec![1]).await, "nothing is sent after close");
        let mut wire = Vec::new();
        server.read_to_end(&mut wire).await.unwrap();
        let mut reader = MessageReader::new(&wire[..], Vec::new());
        assert_eq!(reader.next().await.unwrap(), Some(Message::Binary(vec![1, b'a'])));
        assert_eq!(reader.next().await.unwrap(), Some(Message::Close(Some(1000))));
    }
}
