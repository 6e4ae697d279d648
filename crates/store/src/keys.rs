//! Key-range helpers shared by the backends.

/// The smallest byte string greater than every string that starts with `prefix`, or `None`
/// when no such bound exists (the empty prefix, or one made only of `0xff` bytes): then the
/// range is open-ended.
///
/// This is the etcd convention for prefix ranges; SQLite compares BLOBs with `memcmp`, so the
/// same bound works there.
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn prefix_end_increments_the_last_byte() {
        assert_eq!(prefix_end(b"/registry/pods/"), Some(b"/registry/pods0".to_vec()));
    }

    #[test]
    fn prefix_end_drops_trailing_ff_bytes_before_incrementing() {
        assert_eq!(prefix_end(&[b'a', 0xff, 0xff]), Some(vec![b'b']));
    }

    #[test]
    fn empty_or_all_ff_prefix_has_no_end() {
        assert_eq!(prefix_end(b""), None);
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
    }

    #[test]
    fn every_key_with_the_prefix_sorts_below_the_end() {
        let end = prefix_end(b"/a/").unwrap();
        for key in [&b"/a/"[..], b"/a/zzz", &[b'/', b'a', b'/', 0xff, 0xff]] {
            assert!(key < &end[..], "{key:?} must sort below {end:?}");
        }
        assert!(b"/a0"[..] >= end[..]);
        assert!(b"/b"[..] >= end[..]);
    }
}
