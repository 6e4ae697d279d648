//! SPDY/3.1 frames: layout, encoding and decoding, and the zlib-compressed header blocks.
//!
//! ```text
//! control frame: |1| version(15) | type(16) | flags(8) | length(24) | payload…
//! data frame:    |0| stream id(31)          | flags(8) | length(24) | payload…
//! header block:  count(32) then per pair: len(32) name, len(32) value   (zlib, shared per direction)
//! ```
//!
//! Header blocks of one direction form a single zlib stream primed with
//! [`SPDY3_DICTIONARY`]; each block ends with a sync flush, so the receiver can inflate it
//! from that frame's bytes alone. The [`Encoder`] and [`Decoder`] therefore carry state and
//! belong to one connection direction each.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::dictionary::SPDY3_DICTIONARY;

/// The protocol version in every control frame.
pub const VERSION: u16 = 3;
/// Data frames and control payloads are at most 2^24 - 1 bytes long.
pub const MAX_PAYLOAD: usize = 0xff_ffff;
/// Flag of a DATA, SYN_STREAM, SYN_REPLY or HEADERS frame: the sender's half is done.
pub const FLAG_FIN: u8 = 0x01;
/// Flag of a SYN_STREAM: the receiver must not send on this stream.
pub const FLAG_UNIDIRECTIONAL: u8 = 0x02;
/// A decompressed header block larger than this is refused (a zlib bomb otherwise).
const MAX_HEADER_BLOCK: usize = 1 << 20;

/// Control frame types (SPDY/3 section 2.6).
mod kind {
    pub const SYN_STREAM: u16 = 1;
    pub const SYN_REPLY: u16 = 2;
    pub const RST_STREAM: u16 = 3;
    pub const SETTINGS: u16 = 4;
    pub const PING: u16 = 6;
    pub const GOAWAY: u16 = 7;
    pub const HEADERS: u16 = 8;
    pub const WINDOW_UPDATE: u16 = 9;
}

/// RST_STREAM status codes used here.
pub mod rst {
    /// The peer broke the protocol on this stream.
    pub const PROTOCOL_ERROR: u32 = 1;
    /// A frame for a stream that is not open.
    pub const INVALID_STREAM: u32 = 2;
    /// The stream was refused before any processing.
    pub const REFUSED_STREAM: u32 = 3;
    /// The stream is no longer needed.
    pub const CANCEL: u32 = 5;
    /// The sender failed while handling the stream.
    pub const INTERNAL_ERROR: u32 = 6;
}

/// Header name/value pairs in wire order. Names are lower case; a value holding several
/// values joins them with NUL, as SPDY does.
pub type Headers = Vec<(String, String)>;

/// The first value of header `name` (names compare in lower case, as SPDY requires).
pub fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.split('\0').next().unwrap_or(""))
}

/// One SPDY/3.1 frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Stream data; `fin` closes the sender's half.
    Data {
        /// The stream.
        stream_id: u32,
        /// Last frame from this sender on the stream.
        fin: bool,
        /// The bytes.
        data: Vec<u8>,
    },
    /// Opens a stream.
    SynStream {
        /// The new stream (odd from clients, even from servers).
        stream_id: u32,
        /// The stream this one belongs to (server push), usually 0.
        associated_to: u32,
        /// 0 (highest) to 7.
        priority: u8,
        /// [`FLAG_FIN`] and [`FLAG_UNIDIRECTIONAL`].
        flags: u8,
        /// The stream's headers (for port-forward: `streamtype`, `port`, `requestid`).
        headers: Headers,
    },
    /// Accepts a stream opened by the peer.
    SynReply {
        /// The stream.
        stream_id: u32,
        /// The replier's half is done at once.
        fin: bool,
        /// Reply headers.
        headers: Headers,
    },
    /// Aborts a stream.
    RstStream {
        /// The stream.
        stream_id: u32,
        /// Why: see [`rst`].
        status: u32,
    },
    /// Connection settings: (flags, id, value) entries.
    Settings {
        /// Flag 0x01: forget persisted settings.
        clear: bool,
        /// The entries.
        entries: Vec<(u8, u32, u32)>,
    },
    /// A liveness check; the receiver echoes a ping it did not send.
    Ping {
        /// Odd from clients, even from servers.
        id: u32,
    },
    /// The sender opens no more streams; those above `last_good_stream_id` were not processed.
    GoAway {
        /// The last stream the sender processed.
        last_good_stream_id: u32,
        /// 0 OK, 1 protocol error, 2 internal error.
        status: u32,
    },
    /// More headers for an open stream.
    Headers {
        /// The stream.
        stream_id: u32,
        /// The sender's half is done.
        fin: bool,
        /// The headers.
        headers: Headers,
    },
    /// The receiver of the stream's data may send `delta` more bytes (stream 0: the connection).
    WindowUpdate {
        /// The stream, or 0 for the connection (SPDY/3.1).
        stream_id: u32,
        /// Bytes granted.
        delta: u32,
    },
    /// A control frame of a type SPDY/3.1 does not define; receivers ignore it.
    Unknown {
        /// Its type.
        frame_type: u16,
    },
}

/// A malformed frame or header block: the connection cannot continue.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// A control frame of a version other than 3.
    #[error("unsupported SPDY version {0}")]
    Version(u16),
    /// A frame too short for its type, or a header block that does not parse.
    #[error("malformed {0} frame")]
    Malformed(&'static str),
    /// The header block did not inflate (wrong dictionary, corrupt stream, too large).
    #[error("header block: {0}")]
    Compression(String),
}

/// Compresses header blocks for one direction of a connection.
pub struct Encoder {
    zlib: Compress,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Encoder {
    /// A fresh encoder, primed with the SPDY/3 dictionary.
    pub fn new() -> Self {
        let mut zlib = Compress::new(Compression::default(), true);
        zlib.set_dictionary(SPDY3_DICTIONARY)
            .expect("a fresh zlib stream accepts a dictionary");
        Encoder { zlib }
    }

    /// The wire bytes of `frame`. Payloads over [`MAX_PAYLOAD`] are the caller's mistake
    /// (data is chunked before it gets here) and are truncated by the 24-bit length field.
    pub fn encode(&mut self, frame: &Frame) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        match frame {
            Frame::Data { stream_id, fin, data } => {
                out.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
                out.extend_from_slice(&flags_and_length(if *fin { FLAG_FIN } else { 0 }, data.len()));
                out.extend_from_slice(data);
                return out;
            }
            Frame::SynStream {
                stream_id,
                associated_to,
                priority,
                flags,
                headers,
            } => {
                let mut payload = Vec::new();
                payload.extend_from_slice(&(stream_id & 0x7fff_ffff).to_be_bytes());
                payload.extend_from_slice(&(associated_to & 0x7fff_ffff).to_be_bytes());
                payload.push((priority & 0x07) << 5);
                payload.push(0); // slot: unused without CREDENTIAL frames
                payload.extend(self.compress(headers));
                control(&mut out, kind::SYN_STREAM, *flags, &payload);
            }
            Frame::SynReply {
                stream_id,
                fin,
                headers,
            } => {
                let mut payload = (stream_id & 0x7fff_ffff).to_be_bytes().to_vec();
                payload.extend(self.compress(headers));
                control(&mut out, kind::SYN_REPLY, fin_flag(*fin), &payload);
            }
            Frame::Headers {
                stream_id,
                fin,
                headers,
            } => {
                let mut payload = (stream_id & 0x7fff_ffff).to_be_bytes().to_vec();
                payload.extend(self.compress(headers));
                control(&mut out, kind::HEADERS, fin_flag(*fin), &payload);
            }
            Frame::RstStream { stream_id, status } => {
                control(
                    &mut out,
                    kind::RST_STREAM,
                    0,
                    &two_words(*stream_id & 0x7fff_ffff, *status),
                );
            }
            Frame::Settings { clear, entries } => {
                let mut payload = (entries.len() as u32).to_be_bytes().to_vec();
                for (flags, id, value) in entries {
                    payload.extend_from_slice(&((u32::from(*flags) << 24) | (id & 0xff_ffff)).to_be_bytes());
                    payload.extend_from_slice(&value.to_be_bytes());
                }
                control(&mut out, kind::SETTINGS, u8::from(*clear), &payload);
            }
            Frame::Ping { id } => control(&mut out, kind::PING, 0, &id.to_be_bytes()),
            Frame::GoAway {
                last_good_stream_id,
                status,
            } => {
                control(
                    &mut out,
                    kind::GOAWAY,
                    0,
                    &two_words(*last_good_stream_id & 0x7fff_ffff, *status),
                );
            }
            Frame::WindowUpdate { stream_id, delta } => {
                control(
                    &mut out,
                    kind::WINDOW_UPDATE,
                    0,
                    &two_words(*stream_id & 0x7fff_ffff, delta & 0x7fff_ffff),
                );
            }
            Frame::Unknown { frame_type } => control(&mut out, *frame_type, 0, &[]),
        }
        out
    }

    /// The header block of `headers`, compressed and sync-flushed onto this direction's
    /// zlib stream.
    fn compress(&mut self, headers: &Headers) -> Vec<u8> {
        let mut block = (headers.len() as u32).to_be_bytes().to_vec();
        for (name, value) in headers {
            let name = name.to_ascii_lowercase();
            block.extend_from_slice(&(name.len() as u32).to_be_bytes());
            block.extend_from_slice(name.as_bytes());
            block.extend_from_slice(&(value.len() as u32).to_be_bytes());
            block.extend_from_slice(value.as_bytes());
        }
        let mut out = Vec::with_capacity(block.len() + 64);
        let start = self.zlib.total_in();
        loop {
            let consumed = (self.zlib.total_in() - start) as usize;
            if out.capacity() - out.len() < 64 {
                out.reserve(256);
            }
            self.zlib
                .compress_vec(&block[consumed..], &mut out, FlushCompress::Sync)
                .expect("deflate of an in-memory buffer cannot fail");
            // Done once every byte went in and the flush left spare room: zlib stops a sync
            // flush early only when it runs out of output space.
            let all_in = (self.zlib.total_in() - start) as usize == block.len();
            if all_in && out.len() < out.capacity() {
                return out;
            }
        }
    }
}

/// Reads frames for one direction of a connection, inflating header blocks.
pub struct Decoder {
    zlib: Decompress,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new()
    }
}

impl Decoder {
    /// A fresh decoder; the dictionary is supplied when the zlib stream asks for it.
    pub fn new() -> Self {
        Decoder {
            zlib: Decompress::new(true),
        }
    }

    /// The first whole frame in `buf` and how many bytes it took, or `None` until more bytes
    /// arrive.
    pub fn decode(&mut self, buf: &[u8]) -> Result<Option<(Frame, usize)>, FrameError> {
        if buf.len() < 8 {
            return Ok(None);
        }
        let first = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
        let flags = buf[4];
        let length = u32::from_be_bytes([0, buf[5], buf[6], buf[7]]) as usize;
        if buf.len() < 8 + length {
            return Ok(None);
        }
        let payload = &buf[8..8 + length];
        let used = 8 + length;
        if first & 0x8000_0000 == 0 {
            let frame = Frame::Data {
                stream_id: first & 0x7fff_ffff,
                fin: flags & FLAG_FIN != 0,
                data: payload.to_vec(),
            };
            return Ok(Some((frame, used)));
        }
        let version = ((first >> 16) & 0x7fff) as u16;
        if version != VERSION {
            return Err(FrameError::Version(version));
        }
        let frame_type = (first & 0xffff) as u16;
        let word = |at: usize, what: &'static str| -> Result<u32, FrameError> {
            payload
                .get(at..at + 4)
                .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or(FrameError::Malformed(what))
        };
        let frame = match frame_type {
            kind::SYN_STREAM => {
                let stream_id = word(0, "SYN_STREAM")? & 0x7fff_ffff;
                let associated_to = word(4, "SYN_STREAM")? & 0x7fff_ffff;
                let priority = *payload.get(8).ok_or(FrameError::Malformed("SYN_STREAM"))? >> 5;
                let headers = self.headers(payload.get(10..).ok_or(FrameError::Malformed("SYN_STREAM"))?)?;
                Frame::SynStream {
                    stream_id,
                    associated_to,
                    priority,
                    flags,
                    headers,
                }
            }
            kind::SYN_REPLY | kind::HEADERS => {
                let what = if frame_type == kind::SYN_REPLY {
                    "SYN_REPLY"
                } else {
                    "HEADERS"
                };
                let stream_id = word(0, what)? & 0x7fff_ffff;
                let headers = self.headers(&payload[4..])?;
                let fin = flags & FLAG_FIN != 0;
                if frame_type == kind::SYN_REPLY {
                    Frame::SynReply {
                        stream_id,
                        fin,
                        headers,
                    }
                } else {
                    Frame::Headers {
                        stream_id,
                        fin,
                        headers,
                    }
                }
            }
            kind::RST_STREAM => Frame::RstStream {
                stream_id: word(0, "RST_STREAM")? & 0x7fff_ffff,
                status: word(4, "RST_STREAM")?,
            },
            kind::SETTINGS => {
                let count = word(0, "SETTINGS")? as usize;
                let mut entries = Vec::with_capacity(count.min(64));
                for i in 0..count {
                    let id = word(4 + i * 8, "SETTINGS")?;
                    let value = word(8 + i * 8, "SETTINGS")?;
                    entries.push(((id >> 24) as u8, id & 0xff_ffff, value));
                }
                Frame::Settings {
                    clear: flags & 0x01 != 0,
                    entries,
                }
            }
            kind::PING => Frame::Ping { id: word(0, "PING")? },
            kind::GOAWAY => Frame::GoAway {
                last_good_stream_id: word(0, "GOAWAY")? & 0x7fff_ffff,
                // SPDY/3 added the status; tolerate a SPDY/2-sized frame without it.
                status: word(4, "GOAWAY").unwrap_or(0),
            },
            kind::WINDOW_UPDATE => Frame::WindowUpdate {
                stream_id: word(0, "WINDOW_UPDATE")? & 0x7fff_ffff,
                delta: word(4, "WINDOW_UPDATE")? & 0x7fff_ffff,
            },
            other => Frame::Unknown { frame_type: other },
        };
        Ok(Some((frame, used)))
    }

    /// Inflates one frame's compressed header block and parses its pairs.
    fn headers(&mut self, compressed: &[u8]) -> Result<Headers, FrameError> {
        let mut block = Vec::with_capacity(compressed.len() * 4 + 64);
        let start = self.zlib.total_in();
        loop {
            let consumed = (self.zlib.total_in() - start) as usize;
            if block.capacity() - block.len() < 256 {
                block.reserve(block.capacity().max(1024));
            }
            if block.len() > MAX_HEADER_BLOCK {
                return Err(FrameError::Compression("header block too large".into()));
            }
            match self
                .zlib
                .decompress_vec(&compressed[consumed..], &mut block, FlushDecompress::Sync)
            {
                Ok(Status::StreamEnd) => break,
                Ok(_) => {
                    let all_in = (self.zlib.total_in() - start) as usize == compressed.len();
                    if all_in && block.len() < block.capacity() {
                        break;
                    }
                }
                Err(e) if e.needs_dictionary().is_some() => {
                    self.zlib
                        .set_dictionary(SPDY3_DICTIONARY)
                        .map_err(|e| FrameError::Compression(e.to_string()))?;
                }
                Err(e) => return Err(FrameError::Compression(e.to_string())),
            }
        }
        parse_header_block(&block)
    }
}

/// The pairs of an inflated header block.
pub fn parse_header_block(block: &[u8]) -> Result<Headers, FrameError> {
    let bad = FrameError::Malformed("header block");
    let mut at = 0usize;
    let mut take = |n: usize| -> Result<&[u8], FrameError> {
        let part = block.get(at..at + n).ok_or(bad.clone())?;
        at += n;
        Ok(part)
    };
    let count = u32::from_be_bytes(take(4)?.try_into().expect("4 bytes"));
    let mut headers = Vec::with_capacity(count.min(64) as usize);
    for _ in 0..count {
        let len = u32::from_be_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
        let name = String::from_utf8_lossy(take(len)?).to_ascii_lowercase();
        let len = u32::from_be_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
        let value = String::from_utf8_lossy(take(len)?).into_owned();
        headers.push((name, value));
    }
    Ok(headers)
}

fn fin_flag(fin: bool) -> u8 {
    if fin {
        FLAG_FIN
    } else {
        0
    }
}

fn flags_and_length(flags: u8, length: usize) -> [u8; 4] {
    ((u32::from(flags) << 24) | (length.min(MAX_PAYLOAD) as u32)).to_be_bytes()
}

fn two_words(a: u32, b: u32) -> [u8; 8] {
    let mut out = [0u8; 8];
    out[..4].copy_from_slice(&a.to_be_bytes());
    out[4..].copy_from_slice(&b.to_be_bytes());
    out
}

fn control(out: &mut Vec<u8>, frame_type: u16, flags: u8, payload: &[u8]) {
    out.extend_from_slice(&(0x8000 | VERSION).to_be_bytes());
    out.extend_from_slice(&frame_type.to_be_bytes());
    out.extend_from_slice(&flags_and_length(flags, payload.len()));
    out.extend_from_slice(payload);
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
