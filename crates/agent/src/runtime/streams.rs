//! The runtime's side of the kubelet endpoint: container logs, exec (inside the pod's
//! namespaces, with a terminal when asked), attach and port-forward (a connection made from
//! inside the pod's network namespace, so `localhost` ports work as in Kubernetes).

use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::FutureExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, ReadBuf};

use super::{PodView, Runtime};
use crate::kubelet::{Exit, IoRequest, LogSource, PodStreams, Spawned, StreamError};

/// A command that runs `argv` inside the namespaces of the shim `pid`, with `env`, in `cwd`
/// (the container's working directory; `/` when empty).
pub fn enter_command(
    pid: i32,
    argv: &[String],
    env: &[(String, String)],
    cwd: &str,
) -> std::io::Result<tokio::process::Command> {
    if argv.is_empty() {
        return Err(std::io::Error::other("empty command"));
    }
    let mut cmd = tokio::process::Command::new("nsenter");
    cmd.arg("--target")
        .arg(pid.to_string())
        .args(["--net", "--uts", "--ipc", "--mount"])
        .arg(format!("--wd={}", if cwd.is_empty() { "/" } else { cwd }))
        .arg("--")
        .args(argv)
        .env_clear()
        .envs(env.iter().map(|(k, v)| (k, v)));
    Ok(cmd)
}

/// The runtime as the kubelet endpoint sees it.
pub struct RuntimeStreams(pub Arc<Runtime>);

impl RuntimeStreams {
    fn view(&self, namespace: &str, pod: &str) -> Result<Arc<Mutex<PodView>>, StreamError> {
        self.0
            .view(namespace, pod)
            .ok_or_else(|| StreamError::pod_not_found(pod))
    }

    /// The pod's shim pid, the container's view and its directory.
    fn container(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
    ) -> Result<(i32, super::ContainerView, PathBuf), StreamError> {
        let view = self.view(namespace, pod)?;
        let v = view.lock().expect("view lock");
        let c = v
            .containers
            .get(container)
            .cloned()
            .ok_or_else(|| StreamError::container_not_found(container, pod))?;
        Ok((v.shim_pid, c, v.dir.join(container)))
    }

    /// Like [`Self::container`], checking the container runs.
    fn running(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
    ) -> Result<(i32, super::ContainerView, PathBuf), StreamError> {
        let (shim_pid, c, dir) = self.container(namespace, pod, container)?;
        if !c.running || shim_pid == 0 {
            return Err(StreamError::new(
                400,
                format!("container {container:?} in pod {pod:?} is not running"),
            ));
        }
        Ok((shim_pid, c, dir))
    }

    /// Resolves when the current run of `container` ends (or the pod goes).
    fn run_ended(&self, namespace: &str, pod: &str, container: &str) -> BoxFuture<'static, ()> {
        let rt = self.0.clone();
        let (ns, pod, container) = (namespace.to_string(), pod.to_string(), container.to_string());
        let generation = rt.view(&ns, &pod).and_then(|v| {
            v.lock()
                .expect("view lock")
                .containers
                .get(&container)
                .map(|c| c.generation)
        });
        async move {
            let mut changes = rt.changes();
            loop {
                let now = rt.view(&ns, &pod).and_then(|v| {
                    v.lock()
                        .expect("view lock")
                        .containers
                        .get(&container)
                        .map(|c| (c.generation, c.running))
                });
                match now {
                    Some((g, true)) if Some(g) == generation => {}
                    _ => return,
                }
                // Woken by any pod's change; a tick covers a missed wake-up.
                let _ = tokio::time::timeout(Duration::from_secs(1), changes.recv()).await;
            }
        }
        .boxed()
    }
}

#[async_trait::async_trait]
impl PodStreams for RuntimeStreams {
    async fn log(&self, namespace: &str, pod: &str, container: &str, previous: bool) -> Result<LogSource, StreamError> {
        let (_, c, dir) = self.container(namespace, pod, container)?;
        if previous {
            if c.log_index == 0 || !c.ever_started {
                return Err(StreamError::previous_not_found(container, pod));
            }
            return Ok(LogSource {
                path: dir.join(format!("{}.log", c.log_index - 1)),
                stopped: None,
            });
        }
        if !c.ever_started {
            return Err(StreamError::waiting_to_start(container, pod, &c.waiting_reason));
        }
        let stopped = c.running.then(|| self.run_ended(namespace, pod, container));
        Ok(LogSource {
            path: dir.join(format!("{}.log", c.log_index)),
            stopped,
        })
    }

    async fn exec(
        &self,
        namespace: &str,
        pod: &str,
        container: &str,
        command: Vec<String>,
        io: IoRequest,
    ) -> Result<Spawned, StreamError> {
        let (pid, c, _) = self.running(namespace, pod, container)?;
        let mut env = c.env.clone();
        if io.tty && !env.iter().any(|(k, _)| k == "TERM") {
            env.push(("TERM".into(), "xterm".into()));
        }
        let mut cmd = enter_command(pid, &command, &env, &c.cwd).map_err(|e| StreamError::internal(e.to_string()))?;
        cmd.kill_on_drop(true);
        if io.tty {
            return spawn_with_tty(cmd).map_err(|e| StreamError::internal(format!("allocating a terminal: {e}")));
        }
        cmd.stdin(if io.stdin {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(if io.stdout {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stderr(if io.stderr {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        });
        let mut child = cmd
            .spawn()
            .map_err(|e| StreamError::internal(format!("starting nsenter: {e}")))?;
        let stdin = child.stdin.take().map(|s| Box::pin(s) as crate::kubelet::StdinPipe);
        let stdout = child.stdout.take().map(|s| Box::pin(s) as crate::kubelet::OutputPipe);
        let stderr = child.stderr.take().map(|s| Box::pin(s) as crate::kubelet::OutputPipe);
        let exit = async move {
            match child.wait().await {
                Ok(status) => Exit::Code(exit_code(status)),
                Err(e) => Exit::Failed(e.to_string()),
            }
        }
        .boxed();
        Ok(Spawned {
            stdin,
            stdout,
            stderr,
            resize: None,
            exit,
        })
    }

    async fn attach(&self, namespace: &str, pod: &str, container: &str, io: IoRequest) -> Result<Spawned, StreamError> {
        let (_, c, dir) = self.running(namespace, pod, container)?;
        let ended = self.run_ended(namespace, pod, container).shared();
        let stdin = if io.stdin && c.stdin {
            // Opening a FIFO for writing blocks until someone reads it; the container may
            // have ended a moment ago, so open without blocking (ENXIO: nobody reads).
            use std::os::unix::fs::OpenOptionsExt;
            let file = std::fs::OpenOptions::new()
                .write(true)
                .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
                .open(dir.join("stdin"))
                .map_err(|e| {
                    StreamError::new(
                        400,
                        format!("container {container:?} in pod {pod:?} does not read stdin: {e}"),
                    )
                })?;
            rustix::fs::fcntl_setfl(&file, rustix::fs::OFlags::empty())
                .map_err(|e| StreamError::internal(format!("opening the container's stdin: {e}")))?;
            let fifo = tokio::fs::File::from_std(file);
            Some(Box::pin(fifo) as crate::kubelet::StdinPipe)
        } else {
            None
        };
        // The container writes straight to its log file: follow it from the start of this run.
        let stdout = if io.stdout {
            let path = dir.join(format!("{}.log", c.log_index));
            let (mut w, r) = tokio::io::duplex(64 * 1024);
            let ended = ended.clone();
            tokio::spawn(async move {
                let Ok(mut file) = tokio::fs::File::open(&path).await else {
                    return;
                };
                let mut buf = vec![0u8; 16 * 1024];
                let mut done = false;
                loop {
                    let n = file.read(&mut buf).await.unwrap_or(0);
                    if n > 0 {
                        if w.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                        continue;
                    }
                    if done {
                        return;
                    }
                    tokio::select! {
                        _ = ended.clone() => done = true,
                        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                    }
                }
            });
            Some(Box::pin(r) as crate::kubelet::OutputPipe)
        } else {
            None
        };
        Ok(Spawned {
            stdin,
            stdout,
            stderr: None,
            resize: None,
            exit: async move {
                ended.await;
                Exit::Code(0)
            }
            .boxed(),
        })
    }

    async fn port_forward(&self, namespace: &str, pod: &str, port: u16) -> Result<tokio::net::TcpStream, StreamError> {
        let view = self.view(namespace, pod)?;
        let pid = view.lock().expect("view lock").shim_pid;
        if pid == 0 {
            return Err(StreamError::new(400, format!("pod {pod:?} has no sandbox")));
        }
        let stream = tokio::task::spawn_blocking(move || connect_in_pod(pid, port))
            .await
            .map_err(|e| StreamError::internal(e.to_string()))?
            .map_err(|e| {
                StreamError::internal(format!(
                    "failed to connect to localhost:{port} inside namespace of pod: {e}"
                ))
            })?;
        stream
            .set_nonblocking(true)
            .map_err(|e| StreamError::internal(e.to_string()))?;
        tokio::net::TcpStream::from_std(stream).map_err(|e| StreamError::internal(e.to_string()))
    }
}

/// Connect to `localhost:port` from inside the pod's network namespace: a short-lived thread
/// enters the namespace (setns affects only the calling thread) and makes the socket, which
/// stays in that namespace.
fn connect_in_pod(pid: i32, port: u16) -> std::io::Result<std::net::TcpStream> {
    std::thread::spawn(move || {
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/net"))?;
        rustix::thread::move_into_link_name_space(ns.as_fd(), Some(rustix::thread::LinkNameSpaceType::Network))?;
        std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_secs(5))
    })
    .join()
    .map_err(|_| std::io::Error::other("the connecting thread panicked"))?
}

fn exit_code(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status.code().unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// Run `cmd` on a new pseudo-terminal: `setsid -c` makes it the controlling terminal.
fn spawn_with_tty(cmd: tokio::process::Command) -> std::io::Result<Spawned> {
    use rustix::pty::{grantpt, openpt, ptsname, unlockpt, OpenptFlags};
    let master: OwnedFd = openpt(OpenptFlags::RDWR | OpenptFlags::NOCTTY | OpenptFlags::CLOEXEC)?;
    grantpt(&master)?;
    unlockpt(&master)?;
    let slave_path = ptsname(&master, Vec::new())?;
    let slave = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(slave_path.to_string_lossy().as_ref())?;
    let std_cmd = cmd.as_std();
    let mut wrapped = tokio::process::Command::new("setsid");
    wrapped
        .arg("-c")
        .arg(std_cmd.get_program())
        .args(std_cmd.get_args())
        .env_clear()
        .envs(std_cmd.get_envs().filter_map(|(k, v)| v.map(|v| (k, v))))
        .stdin(slave.try_clone()?)
        .stdout(slave.try_clone()?)
        .stderr(slave)
        .kill_on_drop(true);
    let mut child = wrapped.spawn()?;
    let master_file = std::fs::File::from(master);
    let resize_fd = master_file.try_clone()?;
    let reader = PtyReader(tokio::fs::File::from_std(master_file.try_clone()?));
    let writer = tokio::fs::File::from_std(master_file);
    let resize = move |width: u16, height: u16| {
        let _ = rustix::termios::tcsetwinsize(
            &resize_fd,
            rustix::termios::Winsize {
                ws_row: height,
                ws_col: width,
                ws_xpixel: 0,
                ws_ypixel: 0,
            },
        );
    };
    Ok(Spawned {
        stdin: Some(Box::pin(writer)),
        stdout: Some(Box::pin(reader)),
        stderr: None,
        resize: Some(Box::new(resize)),
        exit: async move {
            match child.wait().await {
                Ok(status) => Exit::Code(exit_code(status)),
                Err(e) => Exit::Failed(e.to_string()),
            }
        }
        .boxed(),
    })
}

/// A pty master reports EIO once the terminal's last user is gone: that is end of file.
struct PtyReader(tokio::fs::File);

impl AsyncRead for PtyReader {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        match Pin::new(&mut self.0).poll_read(cx, buf) {
            Poll::Ready(Err(e)) if e.raw_os_error() == Some(5) => Poll::Ready(Ok(())),
            other => other,
        }
    }
}
