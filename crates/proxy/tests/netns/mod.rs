//! A throw-away network for the traffic tests: four namespaces of our own, wired with veths,
//! removed again in `Drop` (also on panic).
//!
//! ```text
//!  client 192.0.2.2 ── 192.0.2.1 node 10.250.1.1 ── 10.250.1.2 ep1
//!                                     10.250.2.1 ── 10.250.2.2 ep2
//! ```
//! Only addresses inside these namespaces are used; nothing is routed to the host.

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::Duration;

/// The namespaces of one test run.
pub struct Net {
    pub prefix: String,
}

pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
pub const NODE_IP: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

impl Net {
    /// Builds the network; panics with the failing command when it cannot.
    pub fn new(tag: &str) -> Net {
        assert!(
            rustix::process::geteuid().is_root(),
            "the nftables traffic tests need root (network namespaces, veths, nft); run them as root as CI does"
        );
        let net = Net {
            prefix: format!("pwtest-{}-{tag}", std::process::id()),
        };
        for ns in ["client", "node", "ep1", "ep2"] {
            sh(&["ip", "netns", "add", &net.ns(ns)]);
            net.exec(ns, &["ip", "link", "set", "lo", "up"]);
        }
        net.link("client", "c0", "192.0.2.2/24", "node", "n0", "192.0.2.1/24");
        net.link("ep1", "e0", "10.250.1.2/24", "node", "n1", "10.250.1.1/24");
        net.link("ep2", "e0", "10.250.2.2/24", "node", "n2", "10.250.2.1/24");
        net.exec("client", &["ip", "route", "add", "default", "via", "192.0.2.1"]);
        net.exec("ep1", &["ip", "route", "add", "default", "via", "10.250.1.1"]);
        net.exec("ep2", &["ip", "route", "add", "default", "via", "10.250.2.1"]);
        // As on a real node, everything not local leaves through the uplink; a packet to a
        // service IP without endpoints is therefore forwarded, where the filter chain refuses it.
        net.exec("node", &["ip", "route", "add", "default", "via", "192.0.2.2"]);
        net.exec("node", &["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        net
    }

    /// The full name of namespace `short`.
    pub fn ns(&self, short: &str) -> String {
        format!("{}-{short}", self.prefix)
    }

    /// Runs a command inside namespace `short`, panicking with its output on failure.
    pub fn exec(&self, short: &str, args: &[&str]) -> String {
        let ns = self.ns(short);
        let mut all = vec!["ip", "netns", "exec", ns.as_str()];
        all.extend_from_slice(args);
        sh(&all)
    }

    fn link(&self, a: &str, a_if: &str, a_ip: &str, b: &str, b_if: &str, b_ip: &str) {
        // Host-side names must be unique across tests running at once and under 16 bytes.
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let tmp_a = format!(
            "pwv{}x{}",
            std::process::id() % 100000,
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let tmp_b = format!("{tmp_a}p");
        sh(&["ip", "link", "add", &tmp_a, "type", "veth", "peer", "name", &tmp_b]);
        sh(&["ip", "link", "set", &tmp_a, "netns", &self.ns(a)]);
        sh(&["ip", "link", "set", &tmp_b, "netns", &self.ns(b)]);
        self.exec(a, &["ip", "link", "set", &tmp_a, "name", a_if]);
        self.exec(b, &["ip", "link", "set", &tmp_b, "name", b_if]);
        self.exec(a, &["ip", "addr", "add", a_ip, "dev", a_if]);
        self.exec(b, &["ip", "addr", "add", b_ip, "dev", b_if]);
        self.exec(a, &["ip", "link", "set", a_if, "up"]);
        self.exec(b, &["ip", "link", "set", b_if, "up"]);
    }

    /// Runs `f` on a thread that entered namespace `short`; sockets it creates live there.
    pub fn inside<T: Send + 'static>(&self, short: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.ns(short));
        thread::spawn(move || {
            let fd = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
            rustix::thread::move_into_link_name_space(
                std::os::fd::AsFd::as_fd(&fd),
                Some(rustix::thread::LinkNameSpaceType::Network),
            )
            .unwrap_or_else(|e| panic!("setns {path}: {e}"));
            f()
        })
        .join()
        .expect("namespace thread panicked")
    }

    /// Starts TCP and UDP echo servers in endpoint namespace `short` on `port`: each answers
    /// `"<short> <peer ip>"`, so a test sees which endpoint answered and whom it saw.
    pub fn serve(&self, short: &str, port: u16) {
        let name = short.to_string();
        let (tcp, udp) = self.inside(short, move || {
            let addr = SocketAddr::from((Ipv4Addr::UNSPECIFIED, port));
            (TcpListener::bind(addr).unwrap(), UdpSocket::bind(addr).unwrap())
        });
        let tcp_name = name.clone();
        thread::spawn(move || {
            for mut conn in tcp.incoming().flatten() {
                let peer = conn.peer_addr().map(|a| a.ip().to_string()).unwrap_or_default();
                let _ = conn.write_all(format!("{tcp_name} {peer}").as_bytes());
            }
        });
        thread::spawn(move || {
            let mut buf = [0u8; 64];
            while let Ok((_, peer)) = udp.recv_from(&mut buf) {
                let _ = udp.send_to(format!("{name} {}", peer.ip()).as_bytes(), peer);
            }
        });
    }

    /// Connects over TCP from namespace `short` and returns the answer, or the connect error.
    pub fn tcp(&self, short: &str, dst: SocketAddr) -> Result<String, std::io::Error> {
        self.inside(short, move || {
            let mut s = TcpStream::connect_timeout(&dst, Duration::from_secs(2))?;
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            let mut answer = String::new();
            s.read_to_string(&mut answer)?;
            Ok(answer)
        })
    }

    /// Sends one UDP datagram from a fresh socket in namespace `short` and returns the answer.
    pub fn udp(&self, short: &str, dst: SocketAddr) -> Result<String, std::io::Error> {
        self.inside(short, move || {
            let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
            s.connect(dst)?;
            s.set_read_timeout(Some(Duration::from_secs(2)))?;
            s.send(b"ping")?;
            let mut buf = [0u8; 64];
            let n = s.recv(&mut buf)?;
            Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
        })
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        // Deleting a namespace takes its veths (and the node's nft table) with it.
        for ns in ["client", "node", "ep1", "ep2"] {
            let _ = Command::new("ip").args(["netns", "del", &self.ns(ns)]).status();
        }
    }
}

/// Runs a host command, panicking with its stderr when it fails.
pub fn sh(args: &[&str]) -> String {
    let out = Command::new(args[0])
        .args(&args[1..])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"));
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Collects values from `f` until `done` holds or `tries` run out.
pub fn collect_until<T>(tries: usize, mut f: impl FnMut() -> T, done: impl Fn(&[T]) -> bool) -> Vec<T> {
    let mut seen = Vec::new();
    for _ in 0..tries {
        seen.push(f());
        if done(&seen) {
            break;
        }
    }
    seen
}
