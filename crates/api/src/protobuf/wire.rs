//! The protobuf wire format, just enough of it: tags, varints, length-delimited and fixed fields.
//!
//! Written here rather than taken from `prost::encoding` because the decoder walks fields it only
//! knows from a table, and wants a borrowed slice per field plus an error that says what was
//! wrong; prost's helpers are built around `Buf` cursors and typed merges.

use thiserror::Error;

/// A field's payload as it sits on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Payload<'a> {
    /// Wire type 0.
    Varint(u64),
    /// Wire type 1.
    Fixed64(u64),
    /// Wire type 2: strings, bytes, messages, packed repeated scalars.
    Len(&'a [u8]),
    /// Wire type 5.
    Fixed32(u32),
}

impl Payload<'_> {
    /// The wire type's name, for error messages.
    pub(crate) fn wire_name(&self) -> &'static str {
        match self {
            Payload::Varint(_) => "varint",
            Payload::Fixed64(_) => "fixed64",
            Payload::Len(_) => "length-delimited",
            Payload::Fixed32(_) => "fixed32",
        }
    }
}

/// Why bytes are not well-formed protobuf. Retrying with the same body never helps.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub(crate) enum WireError {
    /// The body ends inside a varint.
    #[error("truncated varint at byte {0}")]
    TruncatedVarint(usize),
    /// A varint runs past the ten bytes a 64-bit value can need.
    #[error("varint longer than 10 bytes at byte {0}")]
    VarintTooLong(usize),
    /// A length or fixed-size field claims more bytes than remain.
    #[error("field needs {need} bytes at byte {at} but only {have} remain")]
    Truncated {
        /// Offset of the payload.
        at: usize,
        /// Bytes the field claims.
        need: u64,
        /// Bytes left in the message.
        have: usize,
    },
    /// Field number 0 is reserved and never valid.
    #[error("field number 0 at byte {0}")]
    FieldZero(usize),
    /// Wire types 3, 4 (groups, unused by Kubernetes), 6 and 7.
    #[error("unsupported wire type {wire_type} at byte {at}")]
    WireType {
        /// The wire type found.
        wire_type: u64,
        /// Offset of the tag.
        at: usize,
    },
}

/// Iterates over the `(field number, payload)` pairs of one message.
pub(crate) struct Fields<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Fields<'a> {
    /// Reads the fields of the message encoded in `buf`.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Fields { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, WireError> {
        let (value, used) = read_varint(&self.buf[self.pos..]).map_err(|e| offset(e, self.pos))?;
        self.pos += used;
        Ok(value)
    }

    fn take(&mut self, need: u64) -> Result<&'a [u8], WireError> {
        let have = self.buf.len() - self.pos;
        if need > have as u64 {
            return Err(WireError::Truncated {
                at: self.pos,
                need,
                have,
            });
        }
        let start = self.pos;
        self.pos += need as usize;
        Ok(&self.buf[start..self.pos])
    }

    fn next_field(&mut self) -> Result<(u32, Payload<'a>), WireError> {
        let at = self.pos;
        let tag = self.varint()?;
        let number = tag >> 3;
        if number == 0 {
            return Err(WireError::FieldZero(at));
        }
        // Field numbers are at most 2^29 - 1; larger values are not valid tags either.
        let number = u32::try_from(number).map_err(|_| WireError::WireType { wire_type: tag & 7, at })?;
        let payload = match tag & 7 {
            0 => Payload::Varint(self.varint()?),
            1 => Payload::Fixed64(u64::from_le_bytes(self.take(8)?.try_into().expect("took 8 bytes"))),
            2 => {
                let len = self.varint()?;
                Payload::Len(self.take(len)?)
            }
            5 => Payload::Fixed32(u32::from_le_bytes(self.take(4)?.try_into().expect("took 4 bytes"))),
            wire_type => return Err(WireError::WireType { wire_type, at }),
        };
        Ok((number, payload))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u32, Payload<'a>), WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.buf.len() {
            return None;
        }
        let item = self.next_field();
        if item.is_err() {
            // Stop after the first error: the rest of the buffer has no known framing.
            self.pos = self.buf.len();
        }
        Some(item)
    }
}

/// Decodes the varints of a packed repeated scalar field.
pub(crate) fn packed_varints(mut buf: &[u8]) -> impl Iterator<Item = Result<u64, WireError>> + '_ {
    let mut pos = 0;
    std::iter::from_fn(move || {
        if buf.is_empty() {
            return None;
        }
        match read_varint(buf) {
            Ok((value, used)) => {
                buf = &buf[used..];
                pos += used;
                Some(Ok(value))
            }
            Err(e) => {
                buf = &[];
                Some(Err(offset(e, pos)))
            }
        }
    })
}

/// One varint from the start of `buf`: its value and how many bytes it used. Offsets in errors
/// are relative to `buf`.
fn read_varint(buf: &[u8]) -> Result<(u64, usize), WireError> {
    let mut value = 0u64;
    for (i, byte) in buf.iter().enumerate() {
        if i == 10 {
            return Err(WireError::VarintTooLong(0));
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    Err(WireError::TruncatedVarint(0))
}

fn offset(e: WireError, by: usize) -> WireError {
    match e {
        WireError::TruncatedVarint(at) => WireError::TruncatedVarint(at + by),
        WireError::VarintTooLong(at) => WireError::VarintTooLong(at + by),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(buf: &[u8]) -> Vec<Result<(u32, Payload<'_>), WireError>> {
        Fields::new(buf).collect()
    }

    #[test]
    fn varint_length_delimited_and_fixed_fields_are_read_in_order() {
        let buf = [
            0x08, 0x96, 0x01, 0x12, 0x02, b'h', b'i', 0x1d, 1, 0, 0, 0, 0x21, 2, 0, 0, 0, 0, 0, 0, 0,
        ];
        assert_eq!(
            fields(&buf),
            vec![
                Ok((1, Payload::Varint(150))),
                Ok((2, Payload::Len(b"hi"))),
                Ok((3, Payload::Fixed32(1))),
                Ok((4, Payload::Fixed64(2))),
            ]
        );
    }

    #[test]
    fn negative_int32_uses_ten_byte_varint() {
        let buf = [0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
        assert_eq!(fields(&buf), vec![Ok((1, Payload::Varint(u64::MAX)))]);
        assert_eq!(u64::MAX as i64 as i32, -1);
    }

    #[test]
    fn length_past_the_end_is_truncated_error() {
        assert_eq!(
            fields(&[0x12, 0x05, b'a']),
            vec![Err(WireError::Truncated {
                at: 2,
                need: 5,
                have: 1
            })]
        );
    }

    #[test]
    fn varint_cut_short_reports_its_offset() {
        assert_eq!(
            fields(&[0x08, 0x01, 0x10, 0x80]),
            vec![Ok((1, Payload::Varint(1))), Err(WireError::TruncatedVarint(3))]
        );
    }

    #[test]
    fn eleven_byte_varint_is_rejected() {
        let buf = [0x08, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01];
        assert_eq!(fields(&buf), vec![Err(WireError::VarintTooLong(1))]);
    }

    #[test]
    fn group_wire_types_and_field_zero_are_rejected() {
        assert_eq!(fields(&[0x0b]), vec![Err(WireError::WireType { wire_type: 3, at: 0 })]);
        assert_eq!(fields(&[0x00, 0x01]), vec![Err(WireError::FieldZero(0))]);
    }

    #[test]
    fn packed_varints_are_split_and_a_cut_varint_errors() {
        let values: Vec<_> = packed_varints(&[0x01, 0x96, 0x01, 0x80]).collect();
        assert_eq!(values, vec![Ok(1), Ok(150), Err(WireError::TruncatedVarint(3))]);
    }
}
