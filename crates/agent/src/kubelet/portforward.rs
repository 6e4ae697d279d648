//! port-forward: SPDY/3.1 streams in pairs, one pair per forwarded TCP connection.
//!
//! For each local connection kubectl opens an `error` stream and a `data` stream, both with
//! headers `port` and `requestid`. When both are here we dial the pod's port through
//! [`PodStreams::port_forward`] and copy bytes between the data stream and the connection.
//! A failure is written to the error stream, which kubectl prints as
//! `an error occurred forwarding L -> R: error forwarding port R to pod P, uid : …`; both
//! streams are finished when forwarding ends, which ends kubectl's side of that connection.
//!
//! The SPDY byte stream arrives either straight after `Upgrade: SPDY/3.1` or inside WebSocket
//! binary messages (subprotocol [`TUNNEL_PROTOCOL`], client-go's tunnelling); [`tunnel`]
//! turns the latter back into a byte stream.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream};

use super::spdy::{self, header, Headers, Incoming, Stream};
use super::websocket::{self, Message, MessageReader, CLOSE_NORMAL};
use super::PodStreams;

/// The `X-Stream-Protocol-Version` of port-forward over SPDY.
pub const PROTOCOL: &str = "portforward.k8s.io";
/// The WebSocket subprotocol of SPDY tunnelled in WebSocket.
pub const TUNNEL_PROTOCOL: &str = "SPDY/3.1+portforward.k8s.io";
/// After the pod closes its side, how long the client's side may still send before the
/// connection is torn down (containerd waits the same second).
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// Checks a new stream's headers as the kubelet does; the error texts are the kubelet's.
pub fn validate(headers: &Headers) -> Result<(), String> {
    let port = header(headers, "port").unwrap_or("");
    if port.is_empty() {
        return Err(r#""port" header is required"#.into());
    }
    let parsed: u16 = port
        .parse()
        .map_err(|e| format!("unable to parse {port:?} as a port: {e}"))?;
    if parsed < 1 {
        return Err(format!("port {port:?} must be > 0"));
    }
    match header(headers, "streamtype").unwrap_or("") {
        "" => Err(r#""streamtype" header is required"#.into()),
        "error" | "data" => Ok(()),
        other => Err(format!("invalid stream type {other:?}")),
    }
}

/// The request a stream belongs to: its `requestid` header, or for clients too old to send
/// one, a pseudo id from the stream id (error and data streams of one connection are opened
/// one after the other, so data id − 2 = error id), as the kubelet reconstructs it.
pub fn request_id(headers: &Headers, stream_id: u32) -> String {
    match header(headers, "requestid") {
        Some(id) if !id.is_empty() => id.to_string(),
        _ => match header(headers, "streamtype") {
            Some("data") => stream_id.saturating_sub(2).to_string(),
            _ => stream_id.to_string(),
        },
    }
}

/// Serves one port-forward connection (SPDY byte stream `io`) for `namespace/pod`.
pub async fn serve<IO>(io: IO, streams: Arc<dyn PodStreams>, namespace: String, pod: String)
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let mut incoming = spdy::serve(io, validate);
    let mut pending: HashMap<String, (Option<Stream>, Option<Stream>)> = HashMap::new();
    while let Some(stream) = incoming.recv().await {
        let id = request_id(&stream.headers, stream.id);
        let pair = pending.entry(id.clone()).or_default();
        if header(&stream.headers, "streamtype") == Some("error") {
            pair.0 = Some(stream);
        } else {
            pair.1 = Some(stream);
        }
        if let (Some(_), Some(_)) = pair {
            let (Some(error), Some(data)) = pending.remove(&id).expect("present") else {
                unreachable!("both checked above")
            };
            let port = header(&data.headers, "port").and_then(|p| p.parse().ok()).unwrap_or(0);
            let (streams, namespace, pod) = (streams.clone(), namespace.clone(), pod.clone());
            tokio::spawn(async move { forward(streams, &namespace, &pod, port, error, data).await });
        }
    }
}

/// Forwards one connection and finishes its streams.
async fn forward(streams: Arc<dyn PodStreams>, namespace: &str, pod: &str, port: u16, error: Stream, data: Stream) {
    let failure = match streams.port_forward(namespace, pod, port).await {
        Ok(tcp) => copy(tcp, data).await.err(),
        Err(e) => {
            data.writer.finish().await;
            Some(e.message)
        }
    };
    if let Some(why) = failure {
        error
            .writer
            .write(format!("error forwarding port {port} to pod {pod}, uid : {why}").as_bytes())
            .await;
    }
    error.writer.finish().await;
}

/// Copies between the pod connection and the data stream until both directions end (the
/// pod's side closing leaves the client [`CLOSE_GRACE`] to finish), or either side aborts.
/// Errors are I/O errors on the pod side.
async fn copy(tcp: tokio::net::TcpStream, data: Stream) -> Result<(), String> {
    let Stream { mut reader, writer, .. } = data;
    let (mut from_pod, mut to_pod) = tcp.into_split();
    let finished = AtomicBool::new(false);
    let upstream = async {
        loop {
            match reader.read().await {
                Incoming::Data(bytes) => to_pod.write_all(&bytes).await.map_err(|e| e.to_string())?,
                Incoming::Fin => {
                    let _ = to_pod.shutdown().await;
                    return Ok::<_, String>(true);
                }
                Incoming::Reset(_) | Incoming::Gone => return Ok(false),
            }
        }
    };
    let downstream = async {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            let n = from_pod.read(&mut buf).await.map_err(|e| e.to_string())?;
            if n == 0 {
                // FIN at once, so the client sees the end before the grace period below.
                writer.finish().await;
                finished.store(true, Ordering::Relaxed);
                return Ok::<_, String>(());
            }
            if !writer.write(&buf[..n]).await {
                return Ok(());
            }
        }
    };
    let result = async {
        tokio::pin!(upstream, downstream);
        tokio::select! {
            up = &mut upstream => match up? {
                // The client finished sending: the pod may still answer.
                true => downstream.await,
                false => Ok(()),
            },
            down = &mut downstream => {
                down?;
                let _ = tokio::time::timeout(CLOSE_GRACE, upstream).await;
                Ok(())
            }
        }
    }
    .await;
    if !finished.load(Ordering::Relaxed) {
        writer.finish().await;
    }
    result
}

/// A byte stream carried in WebSocket binary messages on `io` (each message a run of SPDY
/// bytes, as client-go's tunnelling connection writes them). Returns our end; pings are
/// answered, and closing either side closes the other.
pub fn tunnel<IO>(io: IO) -> DuplexStream
where
    IO: AsyncRead + AsyncWrite + Send + 'static,
{
    let (ours, theirs) = tokio::io::duplex(256 * 1024);
    let (read_half, write_half) = tokio::io::split(io);
    let (tx, _writer) = websocket::spawn_writer(write_half, false);
    let (mut bytes_in, mut bytes_out) = tokio::io::split(theirs);
    let ws_tx = tx.clone();
    tokio::spawn(async move {
        let mut reader = MessageReader::new(read_half, Vec::new());
        loop {
            match reader.next().await {
                Ok(Some(Message::Binary(data))) => {
                    if bytes_out.write_all(&data).await.is_err() {
                        break;
                    }
                }
                Ok(Some(Message::Ping(p))) => {
                    ws_tx.send(Message::Pong(p)).await;
                }
                Ok(Some(Message::Close(_))) => {
                    ws_tx.send(Message::Close(Some(CLOSE_NORMAL))).await;
                    break;
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        let _ = bytes_out.shutdown().await;
    });
    tokio::spawn(async move {
        let mut buf = vec![0u8; 32 * 1024];
        loop {
            match bytes_in.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if !tx.binary(buf[..n].to_vec()).await {
                        return;
                    }
                }
            }
        }
        tx.send(Message::Close(Some(CLOSE_NORMAL))).await;
    });
    ours
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Headers {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn streams_need_a_valid_port_and_stream_type_with_the_kubelets_messages() {
        assert_eq!(validate(&h(&[("port", "80"), ("streamtype", "data")])), Ok(()));
        assert_eq!(
            validate(&h(&[("streamtype", "data")])).unwrap_err(),
            r#""port" header is required"#
        );
        assert!(validate(&h(&[("port", "http"), ("streamtype", "data")]))
            .unwrap_err()
            .starts_with(r#"unable to parse "http" as a port"#));
        assert_eq!(
            validate(&h(&[("port", "0"), ("streamtype", "data")])).unwrap_err(),
            r#"port "0" must be > 0"#
        );
        assert_eq!(
            validate(&h(&[("port", "80")])).unwrap_err(),
            r#""streamtype" header is required"#
        );
        assert_eq!(
            validate(&h(&[("port", "80"), ("streamtype", "x")])).unwrap_err(),
            r#"invalid stream type "x""#
        );
    }

    #[test]
    fn request_id_comes_from_the_header_or_else_pairs_consecutive_streams() {
        assert_eq!(request_id(&h(&[("requestid", "4"), ("streamtype", "data")]), 9), "4");
        assert_eq!(request_id(&h(&[("streamtype", "error")]), 1), "1");
        assert_eq!(request_id(&h(&[("streamtype", "data")]), 3), "1");
    }
}
