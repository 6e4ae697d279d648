//! The pod shim: one small process per pod that holds the pod's namespaces and is the parent of
//! its containers (the roles of a pause container and a containerd shim in one).
//!
//! The agent starts it through `unshare --net --uts --ipc --mount`, so the shim lives in fresh
//! namespaces; it sets the hostname, bind-mounts the pod's `/etc/resolv.conf`, `/etc/hosts` and
//! `/etc/hostname`, detaches from the agent (new session, child subreaper) and then serves a tiny
//! line-oriented JSON protocol on a unix socket ([`socket_path`]): start a container, signal one, report
//! the containers' states, wait for a change, exit. Because the shim — not the agent — is the
//! containers' parent, an agent can die and come back without touching a running pod: it
//! reconnects to the socket and reads the same state, exit codes included.
//!
//! Blocking std code on purpose: one shim runs per pod, so it must stay a few hundred KB of
//! private memory (no async runtime, three threads).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use rustix::process::{Pid, Signal, WaitOptions};
use serde::{Deserialize, Serialize};

/// Where a pod's shim listens. Unix socket paths are limited to 108 bytes and pod directories
/// are long (`<state>/pods/<ns>_<name>_<uid>`), so the socket lives under `/run/podway`, named
/// by a digest of the pod directory.
pub fn socket_path(dir: &Path) -> PathBuf {
    use sha2::Digest;
    let d = sha2::Sha256::digest(dir.as_os_str().as_encoded_bytes());
    let name: String = d[..12].iter().map(|b| format!("{b:02x}")).collect();
    PathBuf::from("/run/podway").join(format!("{name}.sock"))
}

/// How to start one container instance.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StartRequest {
    /// Container name (for the state report).
    pub name: String,
    /// Program and arguments; `argv[0]` is the program path.
    pub argv: Vec<String>,
    /// The complete environment.
    pub env: Vec<(String, String)>,
    /// Working directory.
    pub cwd: String,
    /// File the process's stdout and stderr append to.
    pub log: PathBuf,
    /// A FIFO to use as stdin (for `stdin: true` containers); `/dev/null` otherwise.
    pub stdin_fifo: Option<PathBuf>,
    /// cgroup directories the process joins (its resource limits); may be empty.
    #[serde(default)]
    pub cgroups: Vec<PathBuf>,
}

/// A request to the shim, one JSON object per line.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Request {
    /// Start a process; answered with `Reply::Started`.
    Start(StartRequest),
    /// Send a signal to a container's process group.
    Signal {
        /// The container process.
        pid: i32,
        /// Signal number (15 TERM, 9 KILL, ...).
        signal: i32,
    },
    /// Report the state now.
    State,
    /// Report the state once its version is above `after` (blocks until then, or `timeout_ms`).
    Wait {
        /// The version the caller has seen.
        after: u64,
        /// Longest wait.
        timeout_ms: u64,
    },
    /// Kill every process of the pod and exit.
    Exit,
}

/// One container instance as the shim saw it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Process {
    /// Container name.
    pub name: String,
    /// Process id (in the host's pid namespace).
    pub pid: i32,
    /// When it started, in milliseconds since the epoch.
    pub started_ms: u64,
    /// How it ended, once it has.
    pub exit: Option<Exit>,
}

/// How a process ended.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Exit {
    /// Exit code as Kubernetes reports it: the status, or 128 + signal.
    pub code: i32,
    /// The signal that killed it, if one did.
    pub signal: Option<i32>,
    /// When it ended, in milliseconds since the epoch.
    pub finished_ms: u64,
}

/// The shim's answer.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Reply {
    /// A process started.
    Started {
        /// Its pid.
        pid: i32,
    },
    /// Every process started so far (newest last) and the state's version.
    State {
        /// Bumped on every start and exit.
        version: u64,
        /// The processes.
        processes: Vec<Process>,
    },
    /// Done.
    Ok,
    /// The request failed.
    Error {
        /// Why.
        message: String,
    },
}

/// How the agent asks for a shim (`podway pod-shim ...`).
#[derive(Debug, Clone)]
pub struct ShimArgs {
    /// The pod's directory (socket, etc files).
    pub dir: PathBuf,
    /// The pod's hostname.
    pub hostname: String,
}

impl ShimArgs {
    /// The command-line arguments after `pod-shim`.
    pub fn to_args(&self) -> Vec<String> {
        vec![
            "--dir".into(),
            self.dir.display().to_string(),
            "--hostname".into(),
            self.hostname.clone(),
        ]
    }

    /// Parse what [`ShimArgs::to_args`] wrote.
    pub fn parse(args: &[String]) -> Result<ShimArgs> {
        let mut dir = None;
        let mut hostname = None;
        let mut it = args.iter();
        while let Some(a) = it.next() {
            match a.as_str() {
                "--dir" => dir = it.next().cloned(),
                "--hostname" => hostname = it.next().cloned(),
                // Extra words (such as the cluster name) only label the process for `ps`.
                _ => {}
            }
        }
        Ok(ShimArgs {
            dir: PathBuf::from(dir.context("pod-shim needs --dir")?),
            hostname: hostname.context("pod-shim needs --hostname")?,
        })
    }
}

#[derive(Default)]
struct State {
    version: u64,
    processes: Vec<Process>,
    /// Exits reaped before their start was recorded (a process that ends at once), and orphans.
    unclaimed: Vec<(i32, Exit)>,
    exiting: bool,
}

/// Most unclaimed exits kept: orphans reparented to the shim are reaped too and never claimed.
const MAX_UNCLAIMED: usize = 64;

type Shared = Arc<(Mutex<State>, Condvar)>;

/// Run the shim (the `podway pod-shim` process). Prints `ready` on stdout once the namespaces
/// are set up and the socket listens; returns when asked to exit.
pub fn run(args: &ShimArgs) -> Result<()> {
    set_up_namespaces(args)?;
    let _ = rustix::process::setsid();
    rustix::process::set_child_subreaper(Some(rustix::process::getpid())).context("becoming a child subreaper")?;
    let socket = socket_path(&args.dir);
    if let Some(parent) = socket.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let _ = std::fs::remove_file(&socket);
    let listener = UnixListener::bind(&socket).with_context(|| format!("listening on {}", socket.display()))?;
    let shared: Shared = Arc::default();
    {
        let shared = shared.clone();
        std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || reap(&shared))?;
    }
    println!("ready");
    std::io::stdout().flush()?;
    for conn in listener.incoming() {
        let Ok(conn) = conn else { continue };
        let shared = shared.clone();
        std::thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(move || serve(conn, &shared))?;
    }
    Ok(())
}

fn set_up_namespaces(args: &ShimArgs) -> Result<()> {
    rustix::system::sethostname(args.hostname.as_bytes()).context("setting the pod's hostname")?;
    // Mounts made here must stay in the pod's mount namespace.
    rustix::mount::mount_change(
        "/",
        rustix::mount::MountPropagationFlags::PRIVATE | rustix::mount::MountPropagationFlags::REC,
    )
    .context("making the pod's mounts private")?;
    for file in ["resolv.conf", "hosts", "hostname"] {
        let source = args.dir.join("etc").join(file);
        let target = Path::new("/etc").join(file);
        if source.exists() && target.exists() {
            rustix::mount::mount_bind(&source, &target)
                .with_context(|| format!("bind-mounting {} on {}", source.display(), target.display()))?;
        }
    }
    Ok(())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Reap every child (containers, and orphans that land on the subreaper), recording exits.
fn reap(shared: &Shared) {
    loop {
        match rustix::process::wait(WaitOptions::empty()) {
            Ok(Some((pid, status))) => {
                let code = status
                    .exit_status()
                    .or_else(|| status.terminating_signal().map(|s| 128 + s))
                    .unwrap_or(0);
                let (lock, cvar) = &**shared;
                let exit = Exit {
                    code,
                    signal: status.terminating_signal(),
                    finished_ms: now_ms(),
                };
                let pid = pid.as_raw_nonzero().get();
                let mut st = lock.lock().expect("state lock");
                if let Some(p) = st.processes.iter_mut().find(|p| p.pid == pid && p.exit.is_none()) {
                    p.exit = Some(exit);
                    st.version += 1;
                    cvar.notify_all();
                } else {
                    if st.unclaimed.len() >= MAX_UNCLAIMED {
                        st.unclaimed.remove(0);
                    }
                    st.unclaimed.push((pid, exit));
                }
            }
            Ok(None) => {}
            Err(_) => {
                // No children right now: sleep until a start (or a timeout, for orphans).
                let (lock, cvar) = &**shared;
                let st = lock.lock().expect("state lock");
                let _ = cvar.wait_timeout(st, Duration::from_millis(500));
            }
        }
    }
}

fn serve(conn: UnixStream, shared: &Shared) {
    let Ok(read_half) = conn.try_clone() else { return };
    let mut out = conn;
    for line in BufReader::new(read_half).lines() {
        let Ok(line) = line else { return };
        let reply = match serde_json::from_str::<Request>(&line) {
            Ok(req) => handle(req, shared),
            Err(e) => Reply::Error {
                message: format!("bad request: {e}"),
            },
        };
        let mut text = serde_json::to_string(&reply).unwrap_or_default();
        text.push('\n');
        if out.write_all(text.as_bytes()).is_err() {
            return;
        }
        if shared.0.lock().map(|s| s.exiting).unwrap_or(true) {
            std::process::exit(0);
        }
    }
}

fn snapshot(st: &State) -> Reply {
    Reply::State {
        version: st.version,
        processes: st.processes.clone(),
    }
}

fn handle(req: Request, shared: &Shared) -> Reply {
    let (lock, cvar) = &**shared;
    match req {
        Request::Start(start) => match spawn(&start) {
            Ok(pid) => {
                let mut st = lock.lock().expect("state lock");
                let exit = st
                    .unclaimed
                    .iter()
                    .position(|(p, _)| *p == pid)
                    .map(|i| st.unclaimed.remove(i).1);
                st.processes.push(Process {
                    name: start.name,
                    pid,
                    started_ms: now_ms(),
                    exit,
                });
                st.version += 1;
                cvar.notify_all();
                Reply::Started { pid }
            }
            Err(e) => Reply::Error {
                message: format!("{e:#}"),
            },
        },
        Request::Signal { pid, signal } => {
            let running = lock
                .lock()
                .expect("state lock")
                .processes
                .iter()
                .any(|p| p.pid == pid && p.exit.is_none());
            if !running {
                return Reply::Ok;
            }
            match signal_group(pid, signal) {
                Ok(()) => Reply::Ok,
                Err(e) => Reply::Error {
                    message: format!("signalling {pid}: {e}"),
                },
            }
        }
        Request::State => snapshot(&lock.lock().expect("state lock")),
        Request::Wait { after, timeout_ms } => {
            let st = lock.lock().expect("state lock");
            let (st, _) = cvar
                .wait_timeout_while(st, Duration::from_millis(timeout_ms), |s| s.version <= after)
                .expect("state lock");
            snapshot(&st)
        }
        Request::Exit => {
            let mut st = lock.lock().expect("state lock");
            for p in st.processes.iter().filter(|p| p.exit.is_none()) {
                let _ = signal_group(p.pid, 9);
            }
            st.exiting = true;
            Reply::Ok
        }
    }
}

/// Signal a container's whole process group (each container is a group of its own), falling
/// back to the process when it left its group.
fn signal_group(pid: i32, signal: i32) -> std::io::Result<()> {
    let sig = match signal {
        1 => Signal::HUP,
        2 => Signal::INT,
        3 => Signal::QUIT,
        9 => Signal::KILL,
        10 => Signal::USR1,
        12 => Signal::USR2,
        _ => Signal::TERM,
    };
    let pid = Pid::from_raw(pid).ok_or_else(|| std::io::Error::other("pid 0"))?;
    rustix::process::kill_process_group(pid, sig)
        .or_else(|_| rustix::process::kill_process(pid, sig))
        .map_err(Into::into)
}

fn spawn(start: &StartRequest) -> Result<i32> {
    let (program, rest) = start.argv.split_first().context("empty command")?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&start.log)
        .with_context(|| format!("opening the log {}", start.log.display()))?;
    let stdin = match &start.stdin_fifo {
        // Read-write, so opening never blocks and the pipe never reports EOF between writers.
        Some(fifo) => Stdio::from(
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(fifo)
                .with_context(|| format!("opening stdin {}", fifo.display()))?,
        ),
        None => Stdio::null(),
    };
    let child = Command::new(program)
        .args(rest)
        .env_clear()
        .envs(start.env.iter().map(|(k, v)| (k, v)))
        .current_dir(&start.cwd)
        .stdin(stdin)
        .stdout(log.try_clone()?)
        .stderr(log)
        .process_group(0)
        .spawn()
        .map_err(|e| anyhow::anyhow!("exec: {program:?}: {e}"))?;
    // The reaper thread collects the exit status with wait(); the Child handle is not needed.
    let pid = child.id() as i32;
    // Joined right after the start: what the program forks from then on inherits the limits.
    for dir in &start.cgroups {
        let _ = std::fs::write(dir.join("cgroup.procs"), pid.to_string());
    }
    drop(child);
    Ok(pid)
}

/// The agent's side of the protocol: one request, one reply, over a fresh connection.
pub fn call(dir: &Path, req: &Request, timeout: Duration) -> Result<Reply> {
    let socket = socket_path(dir);
    let conn = UnixStream::connect(&socket).with_context(|| format!("connecting to {}", socket.display()))?;
    conn.set_read_timeout(Some(timeout))?;
    let mut w = conn.try_clone()?;
    let mut line = serde_json::to_string(req)?;
    line.push('\n');
    w.write_all(line.as_bytes())?;
    let mut reply = String::new();
    BufReader::new(conn).read_line(&mut reply)?;
    if reply.is_empty() {
        anyhow::bail!("the pod shim closed the connection");
    }
    Ok(serde_json::from_str(&reply)?)
}

/// Every process in a [`Reply::State`], by container name (newest instance last).
pub fn by_container(processes: &[Process]) -> BTreeMap<String, Vec<Process>> {
    let mut map: BTreeMap<String, Vec<Process>> = BTreeMap::new();
    for p in processes {
        map.entry(p.name.clone()).or_default().push(p.clone());
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shim_args_round_trip_through_the_command_line() {
        let a = ShimArgs {
            dir: "/var/lib/x/pods/default_web_1".into(),
            hostname: "web-1".into(),
        };
        let b = ShimArgs::parse(&a.to_args()).unwrap();
        assert_eq!(b.dir, a.dir);
        assert_eq!(b.hostname, "web-1");
    }

    #[test]
    fn requests_are_one_json_object_per_line() {
        let line = serde_json::to_string(&Request::Signal { pid: 7, signal: 15 }).unwrap();
        assert_eq!(line, r#"{"signal":{"pid":7,"signal":15}}"#);
        let back: Request = serde_json::from_str(&line).unwrap();
        assert!(matches!(back, Request::Signal { pid: 7, signal: 15 }));
        assert!(!serde_json::to_string(&Request::State).unwrap().contains('\n'));
    }
}
