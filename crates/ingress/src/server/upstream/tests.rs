use super::*;

/// Decodes everything `input` holds under `framing`: the data, and whether the body ended.
fn decode_all(mut framing: Framing, input: &[u8]) -> Result<(Vec<u8>, bool, usize), BadUpstream> {
    let mut buf = BytesMut::from(input);
    let mut out = Vec::new();
    while let Some(d) = decode(&mut framing, &mut buf)? {
        out.extend_from_slice(&d);
    }
    Ok((out, framing.done(), buf.len()))
}

#[test]
fn a_chunked_body_is_decoded_across_chunks_with_extensions_and_trailers() {
    let body = b"5;ext=1\r\nhello\r\n7\r\n, world\r\n0\r\nx-trailer: 1\r\n\r\n";
    let (data, done, left) = decode_all(Framing::Chunked(Chunk::Size), body).unwrap();
    assert_eq!(data, b"hello, world");
    assert!(done);
    assert_eq!(left, 0);
}

#[test]
fn a_chunked_body_cut_anywhere_waits_for_more_and_then_finishes() {
    let body = b"a\r\n0123456789\r\n0\r\n\r\n";
    for cut in 0..body.len() {
        let mut framing = Framing::Chunked(Chunk::Size);
        let mut buf = BytesMut::from(&body[..cut]);
        let mut out = Vec::new();
        while let Some(d) = decode(&mut framing, &mut buf).unwrap() {
            out.extend_from_slice(&d);
        }
        assert!(!framing.done(), "done after only {cut} bytes");
        buf.extend_from_slice(&body[cut..]);
        while let Some(d) = decode(&mut framing, &mut buf).unwrap() {
            out.extend_from_slice(&d);
        }
        assert!(framing.done(), "not done at cut {cut}");
        assert_eq!(out, b"0123456789", "cut {cut}");
    }
}

#[test]
fn a_bad_chunk_size_or_missing_crlf_is_an_error() {
    assert!(decode_all(Framing::Chunked(Chunk::Size), b"zz\r\n").is_err());
    assert!(decode_all(Framing::Chunked(Chunk::Size), b"2\r\nabXY").is_err());
}

#[test]
fn a_length_body_stops_at_its_length_and_leaves_the_rest() {
    let (data, done, left) = decode_all(Framing::Length(3), b"abcdef").unwrap();
    assert_eq!((data.as_slice(), done, left), (&b"abc"[..], true, 3));
}

fn head_of(raw: &[u8]) -> (Head, BytesMut) {
    let mut buf = BytesMut::from(raw);
    match parse_head(&mut buf) {
        Ok(Some(head)) => (head, buf),
        _ => panic!("no head in {}", String::from_utf8_lossy(raw)),
    }
}

#[test]
fn a_head_gives_status_headers_framing_and_leaves_the_body() {
    let (head, rest) =
        head_of(b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\nX-A: 1\r\nKeep-Alive: timeout=5\r\n\r\nok");
    assert_eq!(head.status, 201);
    assert_eq!(head.framing, Framing::Length(2));
    assert!(head.reusable);
    assert_eq!(head.headers["x-a"], "1");
    assert!(!head.headers.contains_key("keep-alive"), "hop-by-hop header passed");
    assert_eq!(&rest[..], b"ok");
}

#[test]
fn chunked_wins_over_length_and_close_or_no_length_is_not_reusable() {
    let (head, _) = head_of(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\nTransfer-Encoding: chunked\r\n\r\n");
    assert_eq!(head.framing, Framing::Chunked(Chunk::Size));
    assert!(!head.headers.contains_key("content-length"));
    let (head, _) = head_of(b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    assert!(!head.reusable);
    let (head, _) = head_of(b"HTTP/1.1 200 OK\r\n\r\nuntil close");
    assert_eq!(head.framing, Framing::Close);
    assert!(!head.reusable);
    let (head, _) = head_of(b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert!(!head.reusable);
}

#[test]
fn interim_answers_are_skipped_and_a_partial_head_waits() {
    let (head, rest) = head_of(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx");
    assert_eq!(head.status, 200);
    assert_eq!(&rest[..], b"x");
    let mut partial = BytesMut::from(&b"HTTP/1.1 200 OK\r\nContent-Le"[..]);
    assert!(matches!(parse_head(&mut partial), Ok(None)));
}

#[test]
fn conflicting_lengths_and_garbage_are_refused() {
    for raw in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"[..],
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
        b"NOT HTTP\r\n\r\n",
    ] {
        let mut buf = BytesMut::from(raw);
        assert!(
            matches!(parse_head(&mut buf), Err(HeadError::Bad(_))),
            "{}",
            String::from_utf8_lossy(raw)
        );
    }
}

#[test]
fn the_request_head_has_host_first_skips_what_it_is_told_and_ends_with_the_extras() {
    let mut incoming = HeaderMap::new();
    incoming.insert("accept", HeaderValue::from_static("*/*"));
    incoming.insert("host", HeaderValue::from_static("client.example"));
    let xff = HeaderName::from_static("x-forwarded-for");
    let head = request_head(
        "GET",
        "/a?b=1",
        b"up.example",
        &incoming,
        |n| n == http::header::HOST,
        &[(&xff, b"192.0.2.1")],
    );
    assert_eq!(
        String::from_utf8(head).unwrap(),
        "GET /a?b=1 HTTP/1.1\r\nhost: up.example\r\naccept: */*\r\nx-forwarded-for: 192.0.2.1\r\n\r\n"
    );
}
