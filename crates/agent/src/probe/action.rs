//! One probe attempt: `httpGet`, `tcpSocket` or `exec`, with the kubelet's retries and wording
//! (`pkg/kubelet/prober/prober.go`, `pkg/probe/{tcp,exec}`).

use std::io;
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::{Container, Probe};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use tokio::net::TcpStream;

use super::expand::expand_command;
use super::{http, ProbeKind, ProbeResult};

/// How often an errored attempt is repeated before giving up (the kubelet's `maxProbeRetries`).
pub const MAX_PROBE_RETRIES: usize = 3;
/// How much of an exec probe's output is kept (the kubelet's `maxReadLength`, 10 KiB).
pub const MAX_EXEC_OUTPUT: usize = 10 * 1024;

/// What a probe needs to know about its container and pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeTarget {
    /// The container's name (for exec and for messages).
    pub container: String,
    /// The pod's IP: the host of `httpGet` and `tcpSocket` probes that name none.
    pub pod_ip: String,
    /// The container's ports as (name, containerPort), to resolve named probe ports.
    pub ports: Vec<(Option<String>, i32)>,
    /// The container's `env` as (name, value); `valueFrom` entries count as empty, because the
    /// kubelet expands exec probe commands with static values only.
    pub env: Vec<(String, String)>,
}

impl ProbeTarget {
    /// The target of `container`'s probes in a pod whose IP is `pod_ip`.
    pub fn new(pod_ip: impl Into<String>, container: &Container) -> ProbeTarget {
        ProbeTarget {
            container: container.name.clone(),
            pod_ip: pod_ip.into(),
            ports: container
                .ports
                .iter()
                .flatten()
                .map(|p| (p.name.clone(), p.container_port))
                .collect(),
            env: container
                .env
                .iter()
                .flatten()
                .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
                .collect(),
        }
    }
}

/// A command to run inside a container for an exec probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecRequest {
    /// The container's name.
    pub container: String,
    /// The container instance being probed (see [`super::ContainerView`]); running the command
    /// in another instance would give a wrong verdict.
    pub instance: u64,
    /// The command, `$(VAR)` references already expanded.
    pub command: Vec<String>,
    /// `timeoutSeconds`. The caller also drops the future when it passes.
    pub timeout: Duration,
}

/// How a probe command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutput {
    /// The exit code; 0 means success.
    pub exit_code: i32,
    /// Standard output followed by standard error (only the first 10 KiB are used).
    pub output: Vec<u8>,
}

/// Why a probe command did not produce an exit code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    /// It ran past its timeout; the probe fails (the kubelet's `ExecProbeTimeout`).
    #[error("timed out")]
    TimedOut,
    /// It could not be run (container gone, runtime error). The attempt is retried and then
    /// ignored, neither success nor failure, as the kubelet does with a runtime error.
    #[error("{0}")]
    Failed(String),
}

/// Runs exec probe commands inside containers; the container runtime implements it.
///
/// The future may be dropped when the probe's timeout passes; an implementation should then
/// kill what it started (e.g. with `kill_on_drop`).
pub trait ProbeExec: Send + Sync {
    /// Run `request.command` in the container and wait for it to end.
    fn exec(&self, request: ExecRequest) -> BoxFuture<'_, Result<ExecOutput, ExecError>>;
}

/// The outcome of one probe attempt (the kubelet's probe.Result with its output or error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// Passed; the output (HTTP body, command output) is kept for logs only.
    Success(String),
    /// Passed with a warning (an HTTP redirect to another host was not followed).
    Warning(String),
    /// Failed, with the message the `Unhealthy` event shows.
    Failure(String),
    /// Could not be run; not counted. `result` is the state word of the message.
    Errored {
        /// "unknown" or "failure", as in "errored and resulted in unknown state".
        result: &'static str,
        /// What went wrong.
        error: String,
    },
}

impl Attempt {
    /// The verdict this attempt counts as, or `None` when it errored and is thrown away.
    pub fn counted(&self) -> Option<ProbeResult> {
        match self {
            Attempt::Success(_) | Attempt::Warning(_) => Some(ProbeResult::Success),
            Attempt::Failure(_) => Some(ProbeResult::Failure),
            Attempt::Errored { .. } => None,
        }
    }

    /// The (reason, message) of the Warning event the kubelet records for this attempt of a
    /// `kind` probe, if any: `Unhealthy` for failures and errors, `ProbeWarning` for warnings.
    pub fn event(&self, kind: ProbeKind) -> Option<(&'static str, String)> {
        match self {
            Attempt::Success(_) => None,
            Attempt::Warning(out) => Some(("ProbeWarning", format!("{kind} probe warning: {out}"))),
            Attempt::Failure(out) => Some(("Unhealthy", format!("{kind} probe failed: {out}"))),
            Attempt::Errored { result, error } => Some((
                "Unhealthy",
                format!("{kind} probe errored and resulted in {result} state: {error}"),
            )),
        }
    }
}

/// Run `probe` once against `target` (container run `instance`) with `timeout` per attempt,
/// repeating an errored attempt up to [`MAX_PROBE_RETRIES`] times.
pub async fn run_probe(
    probe: &Probe,
    target: &ProbeTarget,
    instance: u64,
    timeout: Duration,
    exec: &dyn ProbeExec,
) -> Attempt {
    let mut attempt = run_once(probe, target, instance, timeout, exec).await;
    for _ in 1..MAX_PROBE_RETRIES {
        if !matches!(attempt, Attempt::Errored { .. }) {
            break;
        }
        attempt = run_once(probe, target, instance, timeout, exec).await;
    }
    attempt
}

async fn run_once(
    probe: &Probe,
    target: &ProbeTarget,
    instance: u64,
    timeout: Duration,
    exec: &dyn ProbeExec,
) -> Attempt {
    if let Some(action) = &probe.exec {
        let command = expand_command(action.command.as_deref().unwrap_or_default(), &target.env);
        return exec_probe(exec, &target.container, instance, command, timeout).await;
    }
    if let Some(action) = &probe.http_get {
        return http::http_get_probe(action, target, timeout).await;
    }
    if let Some(action) = &probe.tcp_socket {
        return match endpoint(&action.port, action.host.as_deref(), target) {
            Ok((host, port)) => tcp_probe(host, port, timeout).await,
            Err(errored) => errored,
        };
    }
    if probe.grpc.is_some() {
        return Attempt::Errored {
            result: "unknown",
            error: "gRPC probes are not supported by podway; use httpGet, tcpSocket or exec".to_string(),
        };
    }
    Attempt::Errored {
        result: "unknown",
        error: format!("missing probe handler for {}", target.container),
    }
}

/// A probe port as a number: a number as is, a name through the container's ports, and, as a
/// last resort, a name that is really a number (`ResolveContainerPort`).
pub fn resolve_port(port: &IntOrString, target: &ProbeTarget) -> Result<u16, String> {
    let number = match port {
        IntOrString::Int(n) => i64::from(*n),
        IntOrString::String(name) => match target.ports.iter().find(|(n, _)| n.as_deref() == Some(name.as_str())) {
            Some((_, number)) => i64::from(*number),
            None => parse_go_int(name)?,
        },
    };
    if (1..65536).contains(&number) {
        Ok(number as u16)
    } else {
        Err(format!("invalid port number: {number}"))
    }
}

/// Where an `httpGet` or `tcpSocket` action connects: its host (the pod IP when it names
/// none) and its port resolved; a port that does not resolve is an errored attempt.
pub fn endpoint<'a>(
    port: &IntOrString,
    host: Option<&'a str>,
    target: &'a ProbeTarget,
) -> Result<(&'a str, u16), Attempt> {
    let port = resolve_port(port, target).map_err(|error| Attempt::Errored {
        result: "unknown",
        error,
    })?;
    Ok((host.filter(|h| !h.is_empty()).unwrap_or(&target.pod_ip), port))
}

/// `strconv.Atoi`, with its error wording.
fn parse_go_int(text: &str) -> Result<i64, String> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("strconv.Atoi: parsing {}: invalid syntax", go_quote(text)));
    }
    text.parse::<i64>()
        .map_err(|_| format!("strconv.Atoi: parsing {}: value out of range", go_quote(text)))
}

/// Whether a TCP connection to `host:port` opens within `timeout` (`DoTCPProbe`).
pub async fn tcp_probe(host: &str, port: u16, timeout: Duration) -> Attempt {
    match tokio::time::timeout(timeout, dial(host, port)).await {
        Ok(Ok(stream)) => {
            drop(stream);
            Attempt::Success(String::new())
        }
        Ok(Err(message)) => Attempt::Failure(message),
        Err(_) => Attempt::Failure(format!("dial tcp {}: i/o timeout", join_host_port(host, port))),
    }
}

/// Open a TCP connection, with Go's `dial tcp` error wording.
pub(crate) async fn dial(host: &str, port: u16) -> Result<TcpStream, String> {
    let addr = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => std::net::SocketAddr::new(ip, port),
        Err(_) => match tokio::net::lookup_host((host, port)).await.map(|mut a| a.next()) {
            Ok(Some(addr)) => addr,
            Ok(None) => return Err(format!("dial tcp: lookup {host}: no such host")),
            Err(e) => return Err(format!("dial tcp: lookup {host}: {}", go_io_error(&e))),
        },
    };
    TcpStream::connect(addr)
        .await
        .map_err(|e| format!("dial tcp {addr}: connect: {}", go_io_error(&e)))
}

/// Run an exec probe: exit 0 passes, any other exit fails with the output as the message, a
/// timeout fails with `command "..." timed out`.
pub async fn exec_probe(
    exec: &dyn ProbeExec,
    container: &str,
    instance: u64,
    command: Vec<String>,
    timeout: Duration,
) -> Attempt {
    let timed_out =
        |command: &[String]| Attempt::Failure(format!("command {} timed out", go_quote(&command.join(" "))));
    let request = ExecRequest {
        container: container.to_string(),
        instance,
        command: command.clone(),
        timeout,
    };
    match tokio::time::timeout(timeout, exec.exec(request)).await {
        Err(_) | Ok(Err(ExecError::TimedOut)) => timed_out(&command),
        Ok(Err(ExecError::Failed(error))) => Attempt::Errored {
            result: "unknown",
            error,
        },
        Ok(Ok(done)) => {
            let kept = &done.output[..done.output.len().min(MAX_EXEC_OUTPUT)];
            let output = String::from_utf8_lossy(kept).into_owned();
            if done.exit_code == 0 {
                Attempt::Success(output)
            } else {
                Attempt::Failure(output)
            }
        }
    }
}

/// `net.JoinHostPort`: brackets around IPv6 hosts.
pub(crate) fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// An I/O error as Go prints a syscall error: the lower-case `strerror` text without Rust's
/// "(os error N)" suffix, e.g. "connection refused".
pub(crate) fn go_io_error(error: &io::Error) -> String {
    let text = match error.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code).to_string(),
        None => error.to_string(),
    };
    let text = match text.find(" (os error") {
        Some(at) => &text[..at],
        None => &text[..],
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A string quoted as Go's `%q` quotes it (printable Unicode kept as is).
pub(crate) fn go_quote(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
#[path = "action_tests.rs"]
mod tests;
