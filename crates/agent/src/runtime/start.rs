//! Starting one run of a container: resolve its image, compute its environment, make its
//! cgroups and log file, and ask the pod's shim to start it, reporting each failure the way
//! kubelet does (ErrImagePull, CreateContainerConfigError, RunContainerError).

use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::Container;
use podway_events::EventType;

use super::worker::{now_ms, Worker};
use super::{env, shim_client};
use crate::sandbox::files;
use crate::sandbox::shim::{Process, StartRequest};

impl Worker {
    /// Start a run of `c`: resolve its image, compute its environment, ask the shim.
    pub(super) async fn start(&mut self, c: &Container, wake: &mut Option<Instant>) {
        let now = Instant::now();
        let name = c.name.clone();
        let image = c.image.clone().unwrap_or_default();
        let dir = self.dir();
        let cdir = dir.join(&name);
        if let Err(e) = std::fs::create_dir_all(&cdir) {
            self.containers.entry(name.clone()).or_default().waiting = Some((
                "CreateContainerError".into(),
                format!("creating {}: {e}", cdir.display()),
            ));
            return;
        }
        {
            let st = self.containers.entry(name.clone()).or_default();
            if let Some(at) = st.retry_at.filter(|at| *at > now) {
                *wake = Some(wake.map_or(at, |w| w.min(at)));
                return;
            }
            if let Some(at) = st.image_retry_at.filter(|at| *at > now) {
                if st.waiting.as_ref().map(|w| w.0.as_str()) == Some("ErrImagePull") {
                    let msg = format!(
                        "Back-off pulling image \"{image}\": ErrImagePull: {}",
                        st.waiting.as_ref().map(|w| w.1.clone()).unwrap_or_default()
                    );
                    st.waiting = Some(("ImagePullBackOff".into(), msg));
                    self.container_event(
                        &name,
                        EventType::Normal,
                        "BackOff",
                        &format!("Back-off pulling image \"{image}\""),
                    )
                    .await;
                    self.container_event(&name, EventType::Warning, "Failed", "Error: ImagePullBackOff")
                        .await;
                }
                *wake = Some(wake.map_or(at, |w| w.min(at)));
                return;
            }
        }
        let launch = match super::images_glue::launch(&self.rt, c, &cdir) {
            Ok(l) => l,
            Err(e) => {
                let reason = e.reason();
                if reason == "ErrImagePull" {
                    self.container_event(
                        &name,
                        EventType::Normal,
                        "Pulling",
                        &format!("Pulling image \"{image}\""),
                    )
                    .await;
                }
                self.container_event(&name, EventType::Warning, "Failed", &e.to_string())
                    .await;
                self.container_event(&name, EventType::Warning, "Failed", &format!("Error: {reason}"))
                    .await;
                let st = self.containers.entry(name.clone()).or_default();
                st.waiting = Some((reason.to_string(), e.status_message()));
                st.image_backoff.step(now);
                // Shown as ErrImagePull first, then ImagePullBackOff until the next attempt.
                let flip = now + Duration::from_secs(2);
                st.image_retry_at = Some(now + st.image_backoff.delay());
                *wake = Some(wake.map_or(flip, |w| w.min(flip)));
                return;
            }
        };
        let sandbox_ip = self.sandbox.as_ref().map(|s| s.ip.clone()).unwrap_or_default();
        let ns = self.ns();
        let services = super::images_glue::visible_services(&self.rt, &self.pod, &ns);
        let (config_maps, secrets) = super::images_glue::referenced_data(&self.rt, c, &ns).await;
        let ctx = env::EnvContext {
            pod: Some(&self.pod),
            hostname: files::hostname(&self.pod),
            pod_ip: sandbox_ip,
            host_ip: self.rt.cfg.node_ip.clone(),
            services,
            config_maps,
            secrets,
        };
        let container_env = match env::container_env(c, &ctx) {
            Ok(e) => e,
            Err(message) => {
                self.container_event(&name, EventType::Warning, "Failed", &format!("Error: {message}"))
                    .await;
                let st = self.containers.entry(name.clone()).or_default();
                st.waiting = Some(("CreateContainerConfigError".into(), message));
                let at = now + Duration::from_secs(10);
                st.retry_at = Some(at);
                *wake = Some(wake.map_or(at, |w| w.min(at)));
                return;
            }
        };
        let mut full_env = vec![
            (
                "PATH".to_string(),
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string(),
            ),
            ("HOSTNAME".to_string(), files::hostname(&self.pod)),
            ("HOME".to_string(), "/root".to_string()),
        ];
        if c.tty.unwrap_or(false) {
            full_env.push(("TERM".into(), "xterm".into()));
        }
        for (k, v) in launch.env.iter().chain(container_env.iter()) {
            full_env.retain(|(x, _)| x != k);
            full_env.push((k.clone(), v.clone()));
        }
        let argv = env::expand_all(&launch.argv(), &full_env);
        let run_index = self.containers.get(&name).map(|s| s.base_restarts).unwrap_or(0) + self.runs_of(&name) as i32;
        let stdin_fifo = if c.stdin.unwrap_or(false) {
            let fifo = cdir.join("stdin");
            if !fifo.exists() {
                let _ = std::process::Command::new("mkfifo").arg(&fifo).status();
            }
            Some(fifo)
        } else {
            None
        };
        let limits = crate::sandbox::cgroups::limits_of(c.resources.as_ref());
        let cgroups = self.rt.cfg.sandbox.cgroups.create_container(&self.uid(), &name, limits);
        let req = StartRequest {
            cgroups,
            name: name.clone(),
            argv,
            env: full_env.clone(),
            cwd: launch.working_dir.display().to_string(),
            log: cdir.join(format!("{run_index}.log")),
            stdin_fifo,
        };
        self.container_event(
            &name,
            EventType::Normal,
            "Pulled",
            &format!("Container image \"{image}\" already present on machine"),
        )
        .await;
        let cwd = req.cwd.clone();
        let listens = builtin_listen_port(&req.argv, &full_env);
        match shim_client::start(&dir, req).await {
            Ok(pid) => {
                if let (Some(port), Some(sandbox)) = (listens, self.sandbox.as_ref()) {
                    until_listening(&sandbox.ip, port, pid).await;
                }
                let st = self.containers.entry(name.clone()).or_default();
                st.waiting = None;
                st.env = full_env;
                st.cwd = cwd;
                // Report the run as started, as kubelet does after a successful start, even if
                // it already ended: the next pass (the shim's version moved) sees the exit.
                self.processes.push(Process {
                    name: name.clone(),
                    pid,
                    started_ms: now_ms(),
                    exit: None,
                });
                self.container_event(
                    &name,
                    EventType::Normal,
                    "Created",
                    &format!("Created container {name}"),
                )
                .await;
                self.container_event(
                    &name,
                    EventType::Normal,
                    "Started",
                    &format!("Started container {name}"),
                )
                .await;
                self.rt.notify();
            }
            Err(e) => {
                let message = format!("failed to start container \"{name}\": {e:#}");
                self.container_event(&name, EventType::Warning, "Failed", &format!("Error: {message}"))
                    .await;
                let st = self.containers.entry(name.clone()).or_default();
                st.waiting = Some(("RunContainerError".into(), message));
                st.restart_backoff.step(now);
                let at = now + st.restart_backoff.delay();
                st.retry_at = Some(at);
                *wake = Some(wake.map_or(at, |w| w.min(at)));
            }
        }
    }
}

/// The port a container running one of podway's built-in images (`EXE builtin-image NAME
/// ARGS...`) will listen on.
fn builtin_listen_port(argv: &[String], env: &[(String, String)]) -> Option<u16> {
    let rest = argv
        .get(2..)
        .filter(|_| argv.get(1).map(String::as_str) == Some("builtin-image"))?;
    let lookup = |key: &str| env.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    crate::images::builtin::listen_port(rest, &lookup)
}

/// Wait (at most 2 s) until a just-started built-in image accepts connections on `port`, or its
/// process `pid` has ended. Kubernetes reports a container without a readiness probe ready as
/// soon as it starts, and its status takes a second or more to reach the Service proxies, long
/// after any real server has bound its port. podway's path from start to rotation takes a few
/// milliseconds, less than a loaded machine may need to start the process and bind: without
/// this wait a rolling update sends its first connections to a port nobody listens on yet.
async fn until_listening(ip: &str, port: u16, pid: i32) {
    let Ok(ip) = ip.parse::<std::net::IpAddr>() else { return };
    let addr = std::net::SocketAddr::new(ip, port);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < deadline {
        let attempt = tokio::time::timeout(Duration::from_millis(100), tokio::net::TcpStream::connect(addr)).await;
        if let Ok(Ok(_)) = attempt {
            return;
        }
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
