//! The agent's HTTPS endpoint for the API server (the kubelet API): container logs, exec,
//! attach and port-forward, on the real kubelet's paths.
//!
//! ```text
//! GET      /containerLogs/{namespace}/{pod}/{container}?follow&previous&tailLines&limitBytes…
//! GET|POST /exec/{namespace}/{pod}/{container}?command=…&input=1&output=1&error=1&tty=1   (upgrade)
//! GET|POST /attach/{namespace}/{pod}/{container}?input=1&output=1&error=1&tty=1            (upgrade)
//! GET|POST /portForward/{namespace}/{pod}                                                   (upgrade)
//! ```
//!
//! - exec and attach speak the WebSocket remote-command protocol, `v5.channel.k8s.io` (what
//!   kubectl 1.32 offers) or `v4.channel.k8s.io` ([`remotecommand`]).
//! - port-forward speaks SPDY/3.1 ([`spdy`], [`portforward`]), either after a native
//!   `Upgrade: SPDY/3.1` or tunnelled in WebSocket binary messages (subprotocol
//!   `SPDY/3.1+portforward.k8s.io`, as client-go 1.30+ sends it).
//! - Only callers with a client certificate signed by the cluster CA and named
//!   `kube-apiserver-kubelet-client` get in ([`tls`]).
//!
//! What a pod *is* stays with the runtime: this module reaches containers only through
//! [`PodStreams`], which the pod runtime implements and tests fake.
//!
//! Errors before an upgrade are plain-text bodies with an HTTP status, as the kubelet writes
//! them (`pod "web" does not exist`); kubectl shows them as `error: unable to upgrade
//! connection: …` for exec and, through the API server, `Error from server (BadRequest): …`
//! for logs.

use std::path::PathBuf;
use std::pin::Pin;

use futures::future::BoxFuture;
use tokio::io::{AsyncRead, AsyncWrite};

pub mod logs;
pub mod portforward;
pub mod remotecommand;
mod server;
pub mod spdy;
pub mod tls;
pub mod websocket;

pub use server::serve;
pub use tls::KubeletTls;

/// The runtime side of the kubelet API: how the endpoint reaches a pod's containers.
///
/// Every method is called once per request, before the connection is upgraded, so an error
/// becomes the HTTP response (status and message, kubelet wording: see [`StreamError`]'s
/// constructors).
#[async_trait::async_trait]
pub trait PodStreams: Send + Sync + 'static {
    /// The log file of `container` (its current instance, or with `previous` the one before
    /// it), and whether the instance writing it still runs, so `follow` knows when to end.
    async fn log(&self, namespace: &str, pod: &str, container: &str, previous: bool) -> Result<LogSource, StreamError>;

    /// Start `command` in `container`, with pipes for the streams `io` asks for (a TTY when
    /// `io.tty`; then stderr is merged into stdout, so `io.stderr` is false).
    ///
    /// The endpoint drops the returned [`Spawned`] when the client goes away before the
    /// process ends; implementations should kill the process then, as containerd does.
    async fn exec(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        command: Vec<String>,
        io: IoRequest,
    ) -> Result<Spawned, StreamError>;

    /// Attach to the running process of `container`: its stdout/stderr from now on and, with
    /// `io.stdin`, its standard input. [`Spawned::exit`] resolves when the attachment ends
    /// (the container stops); its exit code is not reported (the kubelet reports Success).
    async fn attach(&self, namespace: &str, pod: &str, container: &str, io: IoRequest) -> Result<Spawned, StreamError>;

    /// A TCP connection to `port` on the pod's loopback (inside the pod's network namespace).
    /// The message of an error is shown to the kubectl user after
    /// `error forwarding port {port} to pod {pod}, uid : `.
    async fn port_forward(&self, namespace: &str, pod: &str, port: u16) -> Result<tokio::net::TcpStream, StreamError>;
}

/// Which standard streams a client asked for (`input`, `output`, `error`, `tty` query params).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IoRequest {
    /// The client sends standard input.
    pub stdin: bool,
    /// The client wants standard output.
    pub stdout: bool,
    /// The client wants standard error (always false with `tty`).
    pub stderr: bool,
    /// Allocate a terminal; stderr goes to stdout, resize events arrive.
    pub tty: bool,
}

/// A container's log file, for `containerLogs`.
pub struct LogSource {
    /// The file: the process's stdout and stderr as written, no timestamps.
    pub path: PathBuf,
    /// Resolves when the instance writing [`LogSource::path`] stops; `None` when it already
    /// has. `follow` reads to the end of the file after this resolves, then ends the response.
    pub stopped: Option<BoxFuture<'static, ()>>,
}

impl std::fmt::Debug for LogSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogSource")
            .field("path", &self.path)
            .field("running", &self.stopped.is_some())
            .finish()
    }
}

/// A boxed writer for a process's standard input.
pub type StdinPipe = Pin<Box<dyn AsyncWrite + Send>>;
/// A boxed reader of a process's standard output or error.
pub type OutputPipe = Pin<Box<dyn AsyncRead + Send>>;
/// Called with (width, height) in character cells when the client's terminal changes size.
pub type ResizeFn = Box<dyn Fn(u16, u16) + Send + Sync>;

/// How a started process (or attachment) ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// The process exited with this code (a signal `n` is reported as `128 + n`, as shells do).
    Code(i32),
    /// It could not be run or waited for; the text becomes an `InternalError` Status
    /// (`error executing command in container: …`).
    Failed(String),
}

/// A process started by [`PodStreams::exec`] or reached by [`PodStreams::attach`].
pub struct Spawned {
    /// Its standard input, when [`IoRequest::stdin`]; dropped (closed) when the client closes
    /// its stdin stream.
    pub stdin: Option<StdinPipe>,
    /// Its standard output (the terminal with a TTY), when [`IoRequest::stdout`].
    pub stdout: Option<OutputPipe>,
    /// Its standard error, when [`IoRequest::stderr`].
    pub stderr: Option<OutputPipe>,
    /// Resizes its terminal; only with a TTY.
    pub resize: Option<ResizeFn>,
    /// Resolves when it ends.
    pub exit: BoxFuture<'static, Exit>,
}

impl std::fmt::Debug for Spawned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spawned")
            .field("stdin", &self.stdin.is_some())
            .field("stdout", &self.stdout.is_some())
            .field("stderr", &self.stderr.is_some())
            .field("resize", &self.resize.is_some())
            .finish()
    }
}

/// Why a request for a pod's streams failed: an HTTP status and the message the client sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct StreamError {
    /// The HTTP status of the response (404, 400, 500…).
    pub code: u16,
    /// The plain-text body.
    pub message: String,
}

impl StreamError {
    /// Any status and message.
    pub fn new(code: u16, message: impl Into<String>) -> Self {
        StreamError {
            code,
            message: message.into(),
        }
    }

    /// 404 `pod "web" does not exist`: no such pod on this node (kubelet wording).
    pub fn pod_not_found(pod: &str) -> Self {
        Self::new(404, format!("pod {pod:?} does not exist"))
    }

    /// 404 `container "x" not found in pod "web"`: the pod has no container of that name.
    pub fn container_not_found(container: &str, pod: &str) -> Self {
        Self::new(404, format!("container {container:?} not found in pod {pod:?}"))
    }

    /// 400 `container "x" in pod "web" is waiting to start: ContainerCreating`: the container
    /// has not run yet; `reason` is its waiting reason. The kubelet's wording for logs of a
    /// container that never started (`ErrImagePull` and `ImagePullBackOff` get their own text).
    pub fn waiting_to_start(container: &str, pod: &str, reason: &str) -> Self {
        let why = match reason {
            "ErrImagePull" => "image can't be pulled",
            "ImagePullBackOff" => "trying and failing to pull image",
            other => other,
        };
        Self::new(
            400,
            format!("container {container:?} in pod {pod:?} is waiting to start: {why}"),
        )
    }

    /// 400 `previous terminated container "x" in pod "web" not found`: `previous=true` but
    /// the container has not restarted.
    pub fn previous_not_found(container: &str, pod: &str) -> Self {
        Self::new(
            400,
            format!("previous terminated container {container:?} in pod {pod:?} not found"),
        )
    }

    /// 400 `bad request`-style errors from the endpoint itself (bad query parameters).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    /// 500 with the message.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waiting_to_start_uses_the_kubelet_wording_and_names_image_pull_failures() {
        assert_eq!(
            StreamError::waiting_to_start("app", "web", "ContainerCreating").message,
            r#"container "app" in pod "web" is waiting to start: ContainerCreating"#
        );
        assert_eq!(
            StreamError::waiting_to_start("app", "web", "ImagePullBackOff").message,
            r#"container "app" in pod "web" is waiting to start: trying and failing to pull image"#
        );
        assert_eq!(StreamError::waiting_to_start("a", "b", "x").code, 400);
    }

    #[test]
    fn pod_not_found_is_a_404_naming_the_pod() {
        let e = StreamError::pod_not_found("web");
        assert_eq!((e.code, e.message.as_str()), (404, r#"pod "web" does not exist"#));
    }
}
