//! The narrow edge to the kernel: run iproute2's `ip` with some arguments, get its output.
//! Everything the node network does goes through [`Ip`], so the plan → commands rendering is
//! tested with [`FakeIp`] and only the integration tests need root.

use std::process::Command;
use std::sync::Mutex;

/// The iproute2 program, found on `PATH` (Debian installs it as `/usr/sbin/ip` or `/bin/ip`).
pub const IP_PROGRAM: &str = "ip";

/// Runs `ip` commands. Implementations must be safe to share between threads; calls may block
/// (run them on a blocking thread from async code).
pub trait Ip: Send + Sync {
    /// Runs `ip <args>` and returns its standard output when it exits with status 0.
    fn run(&self, args: &[String]) -> Result<String, IpError>;
}

/// A failed `ip` command.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IpError {
    /// `ip` could not be started at all: iproute2 is missing or not on `PATH`. Retrying does not
    /// help; install iproute2.
    #[error("cannot run `{IP_PROGRAM}` (is iproute2 installed?): {0}")]
    Spawn(String),
    /// `ip` ran and failed. Retrying helps only if the cause was transient; the stderr tells.
    #[error("`ip {}` failed ({}): {}", args.join(" "), status.map_or("killed".to_string(), |s| format!("exit {s}")), stderr.trim())]
    Failed {
        /// The arguments after `ip`.
        args: Vec<String>,
        /// Exit status, `None` when killed by a signal.
        status: Option<i32>,
        /// What `ip` printed on standard error.
        stderr: String,
    },
}

impl IpError {
    /// Whether the command failed only because its object is already gone: a missing device,
    /// namespace or route. Teardown treats that as success.
    pub fn is_missing(&self) -> bool {
        let IpError::Failed { stderr, .. } = self else {
            return false;
        };
        // iproute2's wording for: link (`Cannot find device`, `does not exist`), namespace
        // (`No such file or directory`), route (`No such process`, from ESRCH).
        [
            "Cannot find device",
            "does not exist",
            "No such file or directory",
            "No such process",
        ]
        .iter()
        .any(|m| stderr.contains(m))
    }
}

/// The real `ip`: runs [`IP_PROGRAM`] as a child process. Changing the host's network needs
/// root (CAP_NET_ADMIN and, for `ip netns`, CAP_SYS_ADMIN).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemIp;

impl Ip for SystemIp {
    fn run(&self, args: &[String]) -> Result<String, IpError> {
        let out = Command::new(IP_PROGRAM)
            .args(args)
            .output()
            .map_err(|e| IpError::Spawn(e.to_string()))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(IpError::Failed {
                args: args.to_vec(),
                status: out.status.code(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
            })
        }
    }
}

type Responder = dyn Fn(&[String]) -> Result<String, IpError> + Send + Sync;

/// A stand-in for `ip` in tests: records every call and answers with a function of the
/// arguments.
pub struct FakeIp {
    calls: Mutex<Vec<Vec<String>>>,
    respond: Box<Responder>,
}

impl FakeIp {
    /// A fake whose answer to each call is `respond(args)`.
    pub fn new(respond: impl Fn(&[String]) -> Result<String, IpError> + Send + Sync + 'static) -> Self {
        Self {
            calls: Mutex::new(Vec::new()),
            respond: Box::new(respond),
        }
    }

    /// Every call so far, each as its arguments joined by spaces.
    pub fn calls(&self) -> Vec<String> {
        self.calls
            .lock()
            .expect("not poisoned")
            .iter()
            .map(|c| c.join(" "))
            .collect()
    }
}

impl Ip for FakeIp {
    fn run(&self, args: &[String]) -> Result<String, IpError> {
        self.calls.lock().expect("not poisoned").push(args.to_vec());
        (self.respond)(args)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(stderr: &str) -> IpError {
        IpError::Failed {
            args: vec!["link".into(), "del".into(), "x".into()],
            status: Some(1),
            stderr: stderr.into(),
        }
    }

    #[test]
    fn missing_objects_are_recognised_by_iproute2_wording() {
        assert!(failed("Cannot find device \"pw123456\"\n").is_missing());
        assert!(failed("Cannot remove namespace file \"/run/netns/x\": No such file or directory\n").is_missing());
        assert!(failed("RTNETLINK answers: No such process\n").is_missing());
        assert!(!failed("RTNETLINK answers: Operation not permitted\n").is_missing());
        assert!(!IpError::Spawn("No such file or directory".into()).is_missing());
    }

    #[test]
    fn the_error_message_shows_the_command_and_stderr() {
        let msg = failed("RTNETLINK answers: Operation not permitted\n").to_string();
        assert_eq!(
            msg,
            "`ip link del x` failed (exit 1): RTNETLINK answers: Operation not permitted"
        );
    }

    #[test]
    fn the_system_ip_reports_a_failing_command_with_its_stderr() {
        // A query that fails without root and without touching anything.
        let err = SystemIp
            .run(&["link".into(), "show".into(), "dev".into(), "pw-no-such-link".into()])
            .unwrap_err();
        assert!(err.is_missing(), "{err}");
    }
}
