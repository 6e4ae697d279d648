//! `GET /containerLogs/{namespace}/{pod}/{container}`: a container's log file as plain text,
//! optionally followed until the container stops.
//!
//! Query parameters, with the kubelet's meaning and validation (`PodLogOptions`, v1):
//! `follow`, `previous`, `tailLines` (≥ 0; `tail` is its legacy name, `tail=all` = unset),
//! `limitBytes` (≥ 1; the body ends after that many bytes, also when following),
//! `timestamps`, `sinceSeconds` (≥ 1), `sinceTime` (RFC 3339; not with `sinceSeconds`).
//!
//! Approximations: our log files carry no per-line times (the runtime writes the process's
//! output as it comes), so `timestamps=true` adds no prefix and `sinceSeconds`/`sinceTime`
//! filter nothing; both are validated and otherwise ignored.

use std::io::SeekFrom;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use tokio::fs::File;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::mpsc;

/// How often a followed file is checked for more output. A poll, not inotify: one stat-free
/// read per interval per follower is cheap and works on every filesystem.
const FOLLOW_POLL: Duration = Duration::from_millis(100);
/// Read size, and the size of each body chunk.
const CHUNK: usize = 32 * 1024;

/// The log options of a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogOptions {
    /// Keep the response open and send new output until the container stops.
    pub follow: bool,
    /// The previous instance of the container.
    pub previous: bool,
    /// Only the last N lines (a final line without newline counts).
    pub tail_lines: Option<u64>,
    /// At most N bytes in all.
    pub limit_bytes: Option<u64>,
    /// Asked for timestamps (not honoured: see the module docs).
    pub timestamps: bool,
}

/// Parses and validates the query pairs as the kubelet does. Errors are (status, body) with
/// the kubelet's bodies: 400 `{"message": "Unable to decode query."}` for a value that does
/// not parse, 422 `{"message": "Invalid request."}` for one out of range.
pub fn parse_options(query: &[(String, String)]) -> Result<LogOptions, (u16, String)> {
    let undecodable = || (400, r#"{"message": "Unable to decode query."}"#.to_string());
    let invalid = || (422, r#"{"message": "Invalid request."}"#.to_string());
    let get = |name: &str| query.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let flag = |name: &str| -> Result<bool, (u16, String)> {
        match get(name) {
            None => Ok(false),
            Some(v) => parse_go_bool(v).ok_or_else(undecodable),
        }
    };
    let int = |value: Option<&str>| -> Result<Option<i64>, (u16, String)> {
        value.map(|v| v.parse::<i64>().map_err(|_| undecodable())).transpose()
    };
    let tail = match get("tail") {
        Some("all") => None,
        Some(v) => Some(v),
        None => get("tailLines"),
    };
    let options = LogOptions {
        follow: flag("follow")?,
        previous: flag("previous")?,
        timestamps: flag("timestamps")?,
        tail_lines: None,
        limit_bytes: None,
    };
    let tail_lines = int(tail)?;
    let limit_bytes = int(get("limitBytes"))?;
    let since_seconds = int(get("sinceSeconds"))?;
    let since_time = get("sinceTime");
    if since_time.is_some_and(|t| t.parse::<jiff::Timestamp>().is_err()) {
        return Err(undecodable());
    }
    if tail_lines.is_some_and(|n| n < 0)
        || limit_bytes.is_some_and(|n| n < 1)
        || since_seconds.is_some_and(|n| n < 1)
        || (since_seconds.is_some() && since_time.is_some())
    {
        return Err(invalid());
    }
    Ok(LogOptions {
        tail_lines: tail_lines.map(|n| n as u64),
        limit_bytes: limit_bytes.map(|n| n as u64),
        ..options
    })
}

/// Go's `strconv.ParseBool`, which the kubelet's query decoding uses.
pub fn parse_go_bool(v: &str) -> Option<bool> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Where the last `n` lines of `data` start, given that `data` is the tail of a file whose
/// byte before it (if any) is unknown. Returns `Found(offset)` once `n` line starts are
/// found, else how many lines were seen. A final line without newline counts as a line.
fn scan_back(data: &[u8], n: u64, at_end: bool, seen: &mut u64) -> Option<usize> {
    // Newline positions, from the end; the file's final newline does not start a line.
    for i in (0..data.len()).rev() {
        if data[i] != b'\n' || (at_end && i == data.len() - 1) {
            continue;
        }
        *seen += 1;
        if *seen == n {
            return Some(i + 1);
        }
    }
    None
}

/// The offset in `file` (of length `len`) where its last `n` lines start.
async fn tail_offset(file: &mut File, len: u64, n: u64) -> std::io::Result<u64> {
    if n == 0 {
        return Ok(len);
    }
    let mut seen = 0;
    let mut end = len;
    let mut buf = vec![0u8; CHUNK];
    while end > 0 {
        let start = end.saturating_sub(CHUNK as u64);
        let part = &mut buf[..(end - start) as usize];
        file.seek(SeekFrom::Start(start)).await?;
        file.read_exact(part).await?;
        if let Some(at) = scan_back(part, n, end == len, &mut seen) {
            return Ok(start + at as u64);
        }
        end = start;
    }
    Ok(0)
}

/// Streams the log at `path` into `tx` per `options`; `stopped` resolves when its writer
/// stops (`None`: it already has). Ends when done, or when the receiver is dropped (the
/// client went away).
pub async fn stream(
    path: &Path,
    options: &LogOptions,
    stopped: Option<BoxFuture<'static, ()>>,
    tx: mpsc::Sender<std::io::Result<Bytes>>,
) {
    let mut budget = options.limit_bytes.unwrap_or(u64::MAX);
    let follow = options.follow && stopped.is_some();
    let mut stopped = stopped;
    let mut file: Option<File> = None;
    let mut first = true;
    let mut buf = vec![0u8; CHUNK];
    loop {
        if file.is_none() {
            // A container that has not written yet may have no file: nothing to send so far.
            if let Ok(mut f) = File::open(path).await {
                if first {
                    let len = f.metadata().await.map(|m| m.len()).unwrap_or(0);
                    let start = match options.tail_lines {
                        Some(n) => tail_offset(&mut f, len, n).await.unwrap_or(0),
                        None => 0,
                    };
                    if f.seek(SeekFrom::Start(start)).await.is_err() {
                        return;
                    }
                }
                file = Some(f);
            }
            first = false;
        }
        // Send everything there is now.
        if let Some(f) = file.as_mut() {
            loop {
                let want = buf.len().min(budget.min(usize::MAX as u64) as usize);
                if want == 0 {
                    return;
                }
                let n = match f.read(&mut buf[..want]).await {
                    Ok(0) => break,
                    Ok(n) => n,
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                };
                budget -= n as u64;
                if tx.send(Ok(Bytes::copy_from_slice(&buf[..n]))).await.is_err() {
                    return;
                }
            }
        }
        if !follow {
            return;
        }
        let Some(done) = stopped.as_mut() else {
            // Stopped, and the file was read to its end after that: finished.
            return;
        };
        tokio::select! {
            _ = done => stopped = None,
            _ = tokio::time::sleep(FOLLOW_POLL) => {}
            _ = tx.closed() => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn options_parse_like_the_kubelets_query_decoder() {
        let o = parse_options(&q(&[
            ("follow", "true"),
            ("tailLines", "5"),
            ("limitBytes", "10"),
            ("previous", "1"),
        ]))
        .unwrap();
        assert_eq!(
            o,
            LogOptions {
                follow: true,
                previous: true,
                tail_lines: Some(5),
                limit_bytes: Some(10),
                timestamps: false
            }
        );
        assert_eq!(parse_options(&q(&[("tail", "3")])).unwrap().tail_lines, Some(3));
        assert_eq!(
            parse_options(&q(&[("tail", "all"), ("tailLines", "3")]))
                .unwrap()
                .tail_lines,
            None
        );
    }

    #[test]
    fn bad_values_get_the_kubelets_status_and_body() {
        assert_eq!(parse_options(&q(&[("tailLines", "x")])).unwrap_err().0, 400);
        assert_eq!(parse_options(&q(&[("follow", "yes")])).unwrap_err().0, 400);
        let (code, body) = parse_options(&q(&[("tailLines", "-1")])).unwrap_err();
        assert_eq!((code, body.as_str()), (422, r#"{"message": "Invalid request."}"#));
        assert_eq!(parse_options(&q(&[("limitBytes", "0")])).unwrap_err().0, 422);
        assert_eq!(
            parse_options(&q(&[("sinceSeconds", "5"), ("sinceTime", "2024-01-01T00:00:00Z")]))
                .unwrap_err()
                .0,
            422
        );
    }

    async fn tail_of(content: &[u8], n: u64) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        std::fs::write(&path, content).unwrap();
        let mut f = File::open(&path).await.unwrap();
        let at = tail_offset(&mut f, content.len() as u64, n).await.unwrap() as usize;
        String::from_utf8(content[at..].to_vec()).unwrap()
    }

    #[tokio::test]
    async fn tail_counts_lines_from_the_end_including_an_unterminated_last_line() {
        assert_eq!(tail_of(b"a\nb\nc\n", 2).await, "b\nc\n");
        assert_eq!(tail_of(b"a\nb\nc", 2).await, "b\nc");
        assert_eq!(tail_of(b"a\nb\n", 5).await, "a\nb\n");
        assert_eq!(tail_of(b"a\nb\n", 0).await, "");
        assert_eq!(tail_of(b"", 3).await, "");
    }

    #[tokio::test]
    async fn tail_finds_lines_across_read_chunks() {
        let mut content = Vec::new();
        for i in 0..20_000 {
            content.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        assert_eq!(tail_of(&content, 2).await, "line 19998\nline 19999\n");
        let all = tail_of(&content, 15_000).await;
        assert!(all.starts_with("line 5000\n"), "{}", &all[..20]);
    }

    #[tokio::test]
    async fn follow_sends_new_output_and_ends_when_the_container_stops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        std::fs::write(&path, "one\n").unwrap();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let stopped: BoxFuture<'static, ()> = Box::pin(async move {
            let _ = stop_rx.await;
        });
        let (tx, mut rx) = mpsc::channel(8);
        let options = LogOptions {
            follow: true,
            ..Default::default()
        };
        let p = path.clone();
        let task = tokio::spawn(async move { stream(&p, &options, Some(stopped), tx).await });
        assert_eq!(rx.recv().await.unwrap().unwrap(), "one\n");
        use std::io::Write;
        writeln!(std::fs::OpenOptions::new().append(true).open(&path).unwrap(), "two").unwrap();
        assert_eq!(rx.recv().await.unwrap().unwrap(), "two\n");
        writeln!(std::fs::OpenOptions::new().append(true).open(&path).unwrap(), "three").unwrap();
        stop_tx.send(()).unwrap();
        // Output written before the stop is still delivered, then the stream ends.
        let mut rest = Vec::new();
        while let Some(chunk) = rx.recv().await {
            rest.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(rest, b"three\n");
        task.await.unwrap();
    }

    #[tokio::test]
    async fn limit_bytes_cuts_the_body_even_when_following() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.log");
        std::fs::write(&path, "0123456789").unwrap();
        let never: BoxFuture<'static, ()> = Box::pin(std::future::pending());
        let (tx, mut rx) = mpsc::channel(8);
        let options = LogOptions {
            follow: true,
            limit_bytes: Some(4),
            ..Default::default()
        };
        stream(&path, &options, Some(never), tx).await;
        assert_eq!(rx.recv().await.unwrap().unwrap(), "0123");
        assert!(rx.recv().await.is_none());
    }

    #[tokio::test]
    async fn a_missing_file_of_a_stopped_container_is_an_empty_log() {
        let (tx, mut rx) = mpsc::channel(8);
        stream(Path::new("/nonexistent/0.log"), &LogOptions::default(), None, tx).await;
        assert!(rx.recv().await.is_none());
    }
}
