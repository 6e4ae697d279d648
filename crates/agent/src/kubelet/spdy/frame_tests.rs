//! Tests of the SPDY frame codec (beside frame.rs to keep that file short).

use super::*;

fn pf_headers(kind: &str) -> Headers {
    vec![
        ("streamtype".into(), kind.into()),
        ("port".into(), "8080".into()),
        ("requestid".into(), "0".into()),
    ]
}

fn round_trip(frames: &[Frame]) -> Vec<Frame> {
    let (mut enc, mut dec) = (Encoder::new(), Decoder::new());
    let wire: Vec<u8> = frames.iter().flat_map(|f| enc.encode(f)).collect();
    let mut at = 0;
    let mut out = Vec::new();
    while let Some((frame, used)) = dec.decode(&wire[at..]).unwrap() {
        out.push(frame);
        at += used;
    }
    assert_eq!(at, wire.len(), "every byte belongs to a frame");
    out
}

#[test]
fn dictionary_is_the_spdy3_one_by_length_and_adler32() {
    assert_eq!(SPDY3_DICTIONARY.len(), 1423);
    let mut zlib = Compress::new(Compression::default(), true);
    // Adler-32 of the dictionary as Python's zlib computes it from the SPDY/3 draft's bytes.
    assert_eq!(zlib.set_dictionary(SPDY3_DICTIONARY).unwrap(), 0xe3c6_a7c2);
}

#[test]
fn every_frame_type_survives_encode_then_decode() {
    let frames = vec![
        Frame::SynStream {
            stream_id: 1,
            associated_to: 0,
            priority: 0,
            flags: 0,
            headers: pf_headers("error"),
        },
        Frame::SynStream {
            stream_id: 3,
            associated_to: 0,
            priority: 7,
            flags: FLAG_FIN,
            headers: pf_headers("data"),
        },
        Frame::SynReply {
            stream_id: 1,
            fin: false,
            headers: vec![],
        },
        Frame::SynReply {
            stream_id: 3,
            fin: true,
            headers: vec![("x".into(), "a\0b".into())],
        },
        Frame::Data {
            stream_id: 3,
            fin: false,
            data: b"GET / HTTP/1.0\r\n\r\n".to_vec(),
        },
        Frame::Data {
            stream_id: 3,
            fin: true,
            data: vec![],
        },
        Frame::RstStream {
            stream_id: 3,
            status: rst::CANCEL,
        },
        Frame::Settings {
            clear: false,
            entries: vec![(0, 7, 65536), (1, 4, 100)],
        },
        Frame::Ping { id: 1 },
        Frame::GoAway {
            last_good_stream_id: 3,
            status: 0,
        },
        Frame::Headers {
            stream_id: 1,
            fin: false,
            headers: pf_headers("x"),
        },
        Frame::WindowUpdate {
            stream_id: 0,
            delta: 32768,
        },
        Frame::Unknown { frame_type: 42 },
    ];
    assert_eq!(round_trip(&frames), frames);
}

#[test]
fn later_header_blocks_reuse_the_shared_zlib_stream_and_shrink() {
    let mut enc = Encoder::new();
    let first = enc.encode(&Frame::SynStream {
        stream_id: 1,
        associated_to: 0,
        priority: 0,
        flags: 0,
        headers: pf_headers("error"),
    });
    let second = enc.encode(&Frame::SynStream {
        stream_id: 3,
        associated_to: 0,
        priority: 0,
        flags: 0,
        headers: pf_headers("error"),
    });
    // The second block refers back into the first: it would not inflate on its own.
    assert!(second.len() < first.len(), "{} < {}", second.len(), first.len());
    let mut fresh = Decoder::new();
    assert!(fresh.decode(&second).is_err());
}

#[test]
fn header_block_starts_with_a_zlib_header_naming_the_dictionary() {
    let wire = Encoder::new().encode(&Frame::SynReply {
        stream_id: 1,
        fin: false,
        headers: vec![],
    });
    let block = &wire[12..];
    // CMF/FLG with FDICT set, then the dictionary's Adler-32, as Go's zlib.NewReaderDict expects.
    assert_eq!(block[0] & 0x0f, 8, "deflate");
    assert_ne!(block[1] & 0x20, 0, "FDICT");
    assert_eq!(&block[2..6], &0xe3c6_a7c2u32.to_be_bytes());
    assert_eq!((u16::from(block[0]) << 8 | u16::from(block[1])) % 31, 0);
}

#[test]
fn blocks_compressed_by_another_zlib_with_the_dictionary_inflate_in_sequence() {
    // Made with CPython's zlib: compressobj(level=9, zdict=SPDY3_DICTIONARY), the blocks
    // {"port": "80"} then {"port": "8080"}, each followed by flush(Z_SYNC_FLUSH).
    let first: &[u8] = &[
        0x78, 0xf9, 0xe3, 0xc6, 0xa7, 0xc2, 0x02, 0xa6, 0x23, 0x46, 0x48, 0xf9, 0x5b, 0x04, 0x4a, 0xab, 0x4c, 0x16,
        0x06, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff,
    ];
    let second: &[u8] = &[
        0x42, 0x13, 0x61, 0xb1, 0x30, 0xb0, 0x30, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff,
    ];
    let reply = |stream_id: u32, block: &[u8]| {
        let mut wire = vec![0x80, 0x03, 0x00, 0x02];
        wire.extend_from_slice(&((block.len() + 4) as u32).to_be_bytes());
        wire.extend_from_slice(&stream_id.to_be_bytes());
        wire.extend_from_slice(block);
        wire
    };
    let mut dec = Decoder::new();
    let wire = reply(5, first);
    let (frame, used) = dec.decode(&wire).unwrap().unwrap();
    assert_eq!(used, wire.len());
    assert_eq!(
        frame,
        Frame::SynReply {
            stream_id: 5,
            fin: false,
            headers: vec![("port".into(), "80".into())]
        }
    );
    let (frame, _) = dec.decode(&reply(7, second)).unwrap().unwrap();
    assert_eq!(
        frame,
        Frame::SynReply {
            stream_id: 7,
            fin: false,
            headers: vec![("port".into(), "8080".into())]
        }
    );
}

#[test]
fn partial_frames_wait_for_more_bytes() {
    let wire = Encoder::new().encode(&Frame::Data {
        stream_id: 1,
        fin: false,
        data: vec![7; 100],
    });
    let mut dec = Decoder::new();
    assert_eq!(dec.decode(&wire[..7]).unwrap(), None);
    assert_eq!(dec.decode(&wire[..50]).unwrap(), None);
    assert!(dec.decode(&wire).unwrap().is_some());
}

#[test]
fn a_control_frame_of_another_version_is_refused() {
    let wire = [0x80, 0x02, 0x00, 0x06, 0, 0, 0, 4, 0, 0, 0, 1];
    assert_eq!(Decoder::new().decode(&wire), Err(FrameError::Version(2)));
}

#[test]
fn header_lookup_ignores_case_and_takes_the_first_of_several_values() {
    let headers: Headers = vec![("Port".into(), "80\08080".into())];
    assert_eq!(header(&headers, "port"), Some("80"));
    assert_eq!(header(&headers, "requestid"), None);
}
