//! The end-to-end harness: a real `podway up` in a temporary data directory, driven by the real
//! `kubectl` with a fresh `HOME` (kubectl caches discovery for 6 h per HOME). Everything it
//! starts is stopped and removed when the `Cluster` is dropped, even when a test fails.
#![allow(dead_code)]

pub mod net;
pub mod seeds;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A running podway cluster.
pub struct Cluster {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// `https://127.0.0.1:PORT`.
    pub server: String,
    /// Extra `podway up` flags, used by every [`Cluster::boot`].
    pub extra_args: Vec<String>,
}

/// The podway binary under test.
pub fn podway_bin() -> PathBuf {
    std::env::var_os("PODWAY_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_podway")))
}

impl Cluster {
    /// Start a control plane alone (no nodes) with the default (SQLite) store.
    pub fn start() -> Cluster {
        Cluster::start_with(&[])
    }

    /// Start a cluster with `nodes` nodes, under a name and ranges of its own so that clusters
    /// of parallel tests never meet. Returns the cluster and its name.
    pub fn start_nodes(nodes: usize) -> (Cluster, Layout) {
        Cluster::start_nodes_with(nodes, &[])
    }

    /// [`Cluster::start_nodes`] with more `podway up` flags.
    pub fn start_nodes_with(nodes: usize, extra: &[&str]) -> (Cluster, Layout) {
        let layout = Layout::unique("e2e");
        let nodes = nodes.to_string();
        let mut flags = vec![
            "--nodes",
            &nodes,
            "--name",
            &layout.name,
            "--node-cidr",
            &layout.node_cidr,
            "--pod-cidr",
            &layout.pod_cidr,
        ];
        flags.extend_from_slice(extra);
        let c = Cluster::start_with(&flags);
        (c, layout)
    }

    /// Run `podway <args>` against this cluster's data directory.
    pub fn podway(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(podway_bin());
        cmd.args(&args[..1])
            .arg("--data-dir")
            .arg(self.data_dir())
            .args(&args[1..]);
        cmd.output().expect("podway")
    }

    /// Start a cluster with extra `podway up` flags; without `--nodes` it has none (the
    /// default cluster's name and ranges belong to the user's own `make up`).
    pub fn start_with(extra: &[&str]) -> Cluster {
        let mut extra: Vec<&str> = extra.to_vec();
        if !extra.contains(&"--nodes") {
            extra.extend(["--nodes", "0"]);
        }
        let dir = tempfile::Builder::new()
            .prefix("podway-e2e-")
            .tempdir()
            .expect("temp dir");
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        let mut c = Cluster {
            child: None,
            dir,
            server: String::new(),
            extra_args: extra.iter().map(|s| s.to_string()).collect(),
        };
        c.boot();
        c
    }

    /// Start (or restart) `podway up` on the same data directory.
    pub fn boot(&mut self) {
        let mut cmd = Command::new(podway_bin());
        cmd.arg("up")
            .arg("--data-dir")
            .arg(self.data_dir())
            .arg("--api-port")
            .arg(self.port_arg())
            .arg("--kubeconfig-path")
            .arg(self.kubeconfig())
            .args(&self.extra_args)
            .env("HOME", self.home())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd.spawn().expect("spawn podway up");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let mut server = String::new();
        let mut seen = Vec::new();
        loop {
            match lines.next() {
                Some(Ok(line)) => {
                    if let Some(rest) = line.trim().strip_prefix("api server") {
                        server = rest.trim().to_string();
                    }
                    let ready = line.starts_with("ready in");
                    seen.push(line);
                    if ready {
                        break;
                    }
                }
                _ => {
                    let status = child.wait();
                    panic!(
                        "podway up exited before ready ({status:?}); it printed:\n{}",
                        seen.join("\n")
                    );
                }
            }
        }
        // Keep draining stdout so podway never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        assert!(server.starts_with("https://"), "no api server line in: {seen:?}");
        self.server = server;
        self.child = Some(child);
    }

    /// Make the next [`Cluster::boot`] take a fresh port instead of the one in use before.
    pub fn forget_port(&mut self) {
        self.server.clear();
    }

    /// The port to ask for: the one already used on a restart (kubeconfig stays valid), else 0.
    fn port_arg(&self) -> String {
        self.server
            .rsplit(':')
            .next()
            .filter(|p| !p.is_empty())
            .unwrap_or("0")
            .to_string()
    }

    /// Kill podway with SIGKILL (a crash) and wait for it.
    pub fn crash(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stop podway with SIGTERM and wait for it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                if Instant::now() > deadline {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// The fresh HOME kubectl runs with.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// The kubeconfig podway wrote.
    pub fn kubeconfig(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// A scratch file path in the test's directory.
    pub fn file(&self, name: &str, content: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    /// Run kubectl with this cluster's kubeconfig and a fresh HOME.
    pub fn kubectl(&self, args: &[&str]) -> Output {
        self.kubectl_stdin(args, None)
    }

    /// Run kubectl with `stdin` piped in.
    pub fn kubectl_stdin(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new("kubectl");
        cmd.args(args)
            .env("HOME", self.home())
            .env("KUBECONFIG", self.kubeconfig())
            .env("KUBECTL_EDITOR", "false")
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("kubectl on PATH");
        if let Some(input) = stdin {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        }
        child.wait_with_output().unwrap()
    }

    /// Run kubectl and return stdout, failing the test with stderr if it fails.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            out.status.success(),
            "kubectl {args:?} failed:\n{}{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// Run kubectl expecting failure; return stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.kubectl(args);
        assert!(
            !out.status.success(),
            "kubectl {args:?} should fail but printed:\n{}",
            text(&out.stdout)
        );
        text(&out.stderr)
    }

    /// `kubectl apply -f -` with `yaml`, returning stdout.
    pub fn apply(&self, yaml: &str) -> String {
        let out = self.kubectl_stdin(&["apply", "-f", "-"], Some(yaml));
        assert!(out.status.success(), "apply failed:\n{}", text(&out.stderr));
        text(&out.stdout)
    }

    /// An HTTPS GET with curl: (status code, body). `auth` adds the admin client certificate.
    pub fn curl(&self, path: &str, auth: bool) -> (u16, String) {
        self.request("GET", path, None, "", auth)
    }

    /// An HTTPS request with curl and an optional body file: (status code, body).
    pub fn request(
        &self,
        method: &str,
        path: &str,
        body: Option<&Path>,
        content_type: &str,
        auth: bool,
    ) -> (u16, String) {
        let pki = self.data_dir().join("pki");
        let mut cmd = Command::new("curl");
        cmd.args(["-sS", "-X", method, "-o", "-", "-w", "\n%{http_code}", "--cacert"])
            .arg(pki.join("ca.crt"));
        if auth {
            cmd.arg("--cert")
                .arg(pki.join("admin.crt"))
                .arg("--key")
                .arg(pki.join("admin.key"));
        }
        if let Some(b) = body {
            cmd.arg("--data-binary")
                .arg(format!("@{}", b.display()))
                .arg("-H")
                .arg(format!("Content-Type: {content_type}"));
        }
        let out = cmd.arg(format!("{}{path}", self.server)).output().expect("curl");
        let all = text(&out.stdout);
        let (body, code) = all.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }
}

impl Drop for Cluster {
    /// Stop podway, then `podway down`: after a crash (or a failed test) that removes the pods
    /// and the node network the cluster left behind.
    fn drop(&mut self) {
        self.stop();
        let _ = Command::new(podway_bin())
            .arg("down")
            .arg("--data-dir")
            .arg(self.data_dir())
            .stdout(Stdio::null())
            .status();
    }
}

/// The name and ranges of a test cluster with nodes.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Cluster name (prefix of node names).
    pub name: String,
    /// The node network.
    pub node_cidr: String,
    /// The pod range.
    pub pod_cidr: String,
}

impl Layout {
    /// A name and ranges no other test cluster of this process uses (test binaries run one at
    /// a time, tests within one in parallel): 172.31.N.0/24 and 10.M.0.0/16 with M in
    /// 112-211, clear of the service range (10.96.0.0/12) and of a user's default cluster.
    pub fn unique(prefix: &str) -> Layout {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let k = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        // 37 is coprime to 200: the first 200 clusters of a process get distinct numbers.
        let n = (std::process::id() * 7 + k * 37) % 200;
        Layout {
            name: format!("{prefix}{n}"),
            node_cidr: format!("172.31.{}.0/24", n + 20),
            pod_cidr: format!("10.{}.0.0/16", 112 + n % 100),
        }
    }
}

/// Bytes as text.
pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Retry `check` until it returns `Some`, or fail after `secs` seconds with `what`.
pub fn eventually<T>(secs: u64, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out after {secs}s waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The columns of a kubectl table line, split on runs of spaces.
pub fn columns(line: &str) -> Vec<String> {
    line.split_whitespace().map(str::to_string).collect()
}

/// The table row whose first column is `name`.
pub fn row(table: &str, name: &str) -> Vec<String> {
    table
        .lines()
        .map(columns)
        .find(|c| c.first().map(String::as_str) == Some(name))
        .unwrap_or_else(|| panic!("no row {name} in:\n{table}"))
}

/// A seed tutorial file from ../shared/seeds (for reference in failure messages).
pub fn seeds_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/seeds")
}

/// A real etcd (Debian's etcd-server) on free loopback ports, in a temporary directory, killed
/// and removed on drop.
pub struct Etcd {
    child: Child,
    _dir: tempfile::TempDir,
    /// `127.0.0.1:PORT` of the client endpoint.
    pub endpoint: String,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Etcd {
    /// Start etcd and wait until it answers.
    pub fn start() -> Etcd {
        let dir = tempfile::Builder::new().prefix("podway-etcd-").tempdir().unwrap();
        let (client, peer) = (free_port(), free_port());
        let endpoint = format!("127.0.0.1:{client}");
        let child = Command::new("etcd")
            .args(["--name", "podway-test", "--data-dir"])
            .arg(dir.path().join("data"))
            .arg(format!("--listen-client-urls=http://{endpoint}"))
            .arg(format!("--advertise-client-urls=http://{endpoint}"))
            .arg(format!("--listen-peer-urls=http://127.0.0.1:{peer}"))
            .arg(format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer}"))
            .arg(format!("--initial-cluster=podway-test=http://127.0.0.1:{peer}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("etcd (Debian package etcd-server) on PATH");
        let etcd = Etcd {
            child,
            _dir: dir,
            endpoint,
        };
        eventually(30, "etcd to answer /health", || {
            let out = Command::new("curl")
                .args(["-sf", &format!("http://{}/health", etcd.endpoint)])
                .output()
                .ok()?;
            text(&out.stdout).contains("true").then_some(())
        });
        etcd
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Live (not zombie) processes whose command-line arguments satisfy `matches`.
pub fn live_processes(matches: impl Fn(&[String]) -> bool) -> Vec<u32> {
    let mut found = vec![];
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let zombie = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.rsplit_once(") ").is_none_or(|(_, rest)| rest.starts_with('Z')))
            .unwrap_or(true);
        let args: Vec<String> = cmd.split(|b| *b == 0).map(text).collect();
        if !zombie && matches(&args) {
            found.push(pid);
        }
    }
    found
}
