//! Applies a plan to the machine through [`Ip`]: observe, render, run.

use std::ffi::OsStr;
use std::process::Command;

use super::ip::{Ip, IpError, SystemIp, IP_PROGRAM};
use super::observe::{observe, Observed};
use super::plan::{NetworkPlan, NodePlan};
use super::render::{render_teardown, render_up, IpCommand};
use super::NetworkError;

/// A cluster's node network on this machine: its [`NetworkPlan`] and the `ip` that applies it.
///
/// Not safe against two callers changing the same cluster at once (each may observe before the
/// other acts); `podway up`/`down` hold the cluster's lock around these calls. Every method
/// blocks while `ip` runs; from async code call them on a blocking thread.
pub struct Network<I: Ip = SystemIp> {
    plan: NetworkPlan,
    ip: I,
}

impl Network<SystemIp> {
    /// The network of `plan` on this machine, through the real `ip`.
    pub fn system(plan: NetworkPlan) -> Self {
        Self::new(plan, SystemIp)
    }
}

impl<I: Ip> Network<I> {
    /// The network of `plan`, applied through `ip`.
    pub fn new(plan: NetworkPlan, ip: I) -> Self {
        Self { plan, ip }
    }

    /// The plan: node names, addresses, ranges.
    pub fn plan(&self) -> &NetworkPlan {
        &self.plan
    }

    /// The `ip` this network runs.
    pub fn ip(&self) -> &I {
        &self.ip
    }

    /// Makes the machine match the plan: the bridge with the host address, per node a
    /// namespace with `eth0` on the bridge, its address, default route via the host and
    /// forwarding on, routes to every other node's pod range, and host blackhole routes for
    /// the pod and service ranges. Idempotent; after a crash midway, calling it again repairs
    /// the half-made state. Removes this cluster's nodes that the plan no longer has.
    ///
    /// Fails on the first command that fails, leaving a partial state that `up` again or
    /// [`Network::down`] handle. Needs root.
    pub fn up(&self) -> Result<(), NetworkError> {
        let seen = self.observe()?;
        self.run_all(render_up(&self.plan, &seen))
    }

    /// Removes everything of this cluster's network: host veths, node namespaces (and with them
    /// everything inside), the bridge, the blackhole routes. Things already gone are fine.
    /// Nothing outside the cluster's names and metric is touched. Needs root.
    pub fn down(&self) -> Result<(), NetworkError> {
        teardown_stale(&self.ip, self.plan.cluster())
    }

    /// Runs `argv` inside node `node`'s network namespace and returns its standard output
    /// (`podway node ssh NODE -- CMD` without a terminal). The command sees the node's
    /// interfaces and routes and the host's filesystem.
    pub fn exec_in_node<S: AsRef<str>>(&self, node: &str, argv: &[S]) -> Result<String, NetworkError> {
        let node = self.node(node)?;
        let mut args = vec!["netns".to_string(), "exec".to_string(), node.netns.clone()];
        args.extend(argv.iter().map(|a| a.as_ref().to_string()));
        Ok(self.ip.run(&args)?)
    }

    /// A command that runs `argv` inside node `node`'s network namespace, to spawn with the
    /// caller's own stdio (an interactive `podway node ssh NODE`), or to start a node's agent.
    /// Always the real `ip`, whatever this network's [`Ip`] is.
    pub fn node_command<S: AsRef<OsStr>>(&self, node: &str, argv: &[S]) -> Result<Command, NetworkError> {
        let node = self.node(node)?;
        let mut cmd = Command::new(IP_PROGRAM);
        cmd.args(["netns", "exec", &node.netns]).args(argv);
        Ok(cmd)
    }

    /// A command that runs `argv` in node `node`'s network namespace but the host's mount
    /// namespace (`nsenter --net`): how the node's agent starts. Unlike `ip netns exec`, it
    /// keeps the host's `/sys`, so the agent sees the cgroup hierarchy it sets pod limits in.
    pub fn agent_command<S: AsRef<OsStr>>(&self, node: &str, argv: &[S]) -> Result<Command, NetworkError> {
        let node = self.node(node)?;
        let mut cmd = Command::new("nsenter");
        cmd.arg(format!("--net=/run/netns/{}", node.netns)).arg("--").args(argv);
        Ok(cmd)
    }

    fn node(&self, name: &str) -> Result<&NodePlan, NetworkError> {
        self.plan.node(name).ok_or_else(|| NetworkError::UnknownNode {
            node: name.to_string(),
            known: self.plan.node_names().join(", "),
        })
    }

    fn observe(&self) -> Result<Observed, NetworkError> {
        let inspect: Vec<&str> = self.plan.nodes().iter().map(|n| n.netns.as_str()).collect();
        Ok(observe(&self.ip, &inspect)?)
    }

    fn run_all(&self, cmds: Vec<IpCommand>) -> Result<(), NetworkError> {
        run_all(&self.ip, cmds)
    }
}

/// Removes every leftover of cluster `cluster` on this machine, found by name and metric alone
/// (after a `kill -9`, a crash, or a test that died): its host veths, node namespaces, bridge
/// and blackhole routes. Needs no plan, so it works whatever node count and ranges the dead
/// cluster had. Nothing is an error if already gone. Needs root.
pub fn teardown_stale(ip: &dyn Ip, cluster: &str) -> Result<(), NetworkError> {
    let seen = observe(ip, &[])?;
    run_all(ip, render_teardown(cluster, &seen))
}

fn run_all(ip: &dyn Ip, cmds: Vec<IpCommand>) -> Result<(), NetworkError> {
    for cmd in cmds {
        match ip.run(&cmd.args) {
            Ok(_) => {}
            Err(e) if cmd.missing_ok && e.is_missing() => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

impl From<IpError> for NetworkError {
    fn from(e: IpError) -> Self {
        NetworkError::Ip(e)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    use super::*;
    use crate::network::ip::FakeIp;
    use crate::network::plan::NetworkConfig;

    fn plan(nodes: usize) -> NetworkPlan {
        NetworkPlan::new(&NetworkConfig {
            cluster: "t".into(),
            nodes,
            ..NetworkConfig::default()
        })
        .unwrap()
    }

    fn failed(args: &[String], stderr: &str) -> IpError {
        IpError::Failed {
            args: args.to_vec(),
            status: Some(2),
            stderr: stderr.into(),
        }
    }

    /// An `ip` on an empty machine: queries answer empty, changes succeed.
    fn empty_machine() -> FakeIp {
        FakeIp::new(|args| Ok(if args[0] == "-json" { "[]".into() } else { String::new() }))
    }

    #[test]
    fn up_observes_then_runs_the_rendered_commands() {
        let net = Network::new(plan(2), empty_machine());
        net.up().unwrap();
        let calls = net.ip().calls();
        assert_eq!(
            calls[..3],
            ["-json netns list", "-json link show", "-json route show type blackhole"]
        );
        let rendered: Vec<String> = render_up(net.plan(), &Observed::default())
            .iter()
            .map(|c| c.args.join(" "))
            .collect();
        assert_eq!(calls[3..], rendered[..]);
    }

    #[test]
    fn up_stops_at_the_first_failure_and_reports_it() {
        let ip = FakeIp::new(|args| match args.first().map(String::as_str) {
            Some("-json") => Ok("[]".into()),
            Some("netns") => Err(failed(
                args,
                "mount --make-shared /run/netns failed: Operation not permitted",
            )),
            _ => Ok(String::new()),
        });
        let net = Network::new(plan(2), ip);
        let err = net.up().unwrap_err().to_string();
        assert!(err.contains("`ip netns add podway-t-control-plane` failed"), "{err}");
        assert!(err.contains("Operation not permitted"), "{err}");
        assert!(
            !net.ip().calls().iter().any(|c| c.contains("podway-t-worker")),
            "stopped at the first node"
        );
    }

    #[test]
    fn down_tolerates_objects_vanishing_between_observation_and_deletion() {
        let p = plan(1);
        let veth = p.nodes()[0].host_veth.clone();
        let links = format!(r#"[{{"ifname":"{veth}"}},{{"ifname":"{}"}}]"#, p.bridge());
        let ip = FakeIp::new(move |args| match args.join(" ").as_str() {
            "-json netns list" => Ok(r#"[{"name":"podway-t-control-plane"}]"#.into()),
            "-json link show" => Ok(links.clone()),
            "-json route show type blackhole" => Ok("[]".into()),
            _ => Err(failed(args, "Cannot find device")),
        });
        let net = Network::new(p, ip);
        net.down().unwrap();
        assert_eq!(net.ip().calls().len(), 3 + 3);
    }

    #[test]
    fn down_reports_failures_other_than_missing() {
        let ip = FakeIp::new(|args| match args[0].as_str() {
            "-json" if args[1] == "netns" => Ok(r#"[{"name":"podway-t-worker"}]"#.into()),
            "-json" => Ok("[]".into()),
            _ => Err(failed(args, "Operation not permitted")),
        });
        let err = Network::new(plan(2), ip).down().unwrap_err();
        assert!(matches!(err, NetworkError::Ip(_)), "{err}");
    }

    #[test]
    fn exec_in_node_runs_inside_the_nodes_namespace_and_returns_stdout() {
        let ip = FakeIp::new(|args| Ok(format!("ran {}", args.join(" "))));
        let net = Network::new(plan(2), ip);
        let out = net.exec_in_node("t-worker", &["hostname", "-I"]).unwrap();
        assert_eq!(out, "ran netns exec podway-t-worker hostname -I");
    }

    #[test]
    fn an_unknown_node_is_an_error_listing_the_known_ones() {
        let called = Arc::new(AtomicBool::new(false));
        let seen = called.clone();
        let ip = FakeIp::new(move |_| {
            seen.store(true, Ordering::SeqCst);
            Ok(String::new())
        });
        let net = Network::new(plan(2), ip);
        let err = net.exec_in_node("t-worker7", &["true"]).unwrap_err().to_string();
        assert_eq!(
            err,
            "node \"t-worker7\" not found; the cluster's nodes are: t-control-plane, t-worker"
        );
        assert!(net.node_command("nope", &["sh"]).is_err());
        assert!(!called.load(Ordering::SeqCst));
    }

    #[test]
    fn agents_enter_only_the_nodes_network_namespace() {
        let net = Network::new(plan(1), empty_machine());
        let cmd = net.agent_command("t-control-plane", &["podway", "agent"]).unwrap();
        assert_eq!(cmd.get_program(), "nsenter");
        let args: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(
            args,
            ["--net=/run/netns/podway-t-control-plane", "--", "podway", "agent"]
        );
    }

    #[test]
    fn node_command_wraps_argv_in_ip_netns_exec() {
        let net = Network::new(plan(1), empty_machine());
        let cmd = net.node_command("t-control-plane", &["sh", "-c", "ip addr"]).unwrap();
        assert_eq!(cmd.get_program(), IP_PROGRAM);
        let args: Vec<_> = cmd.get_args().map(|a| a.to_string_lossy().into_owned()).collect();
        assert_eq!(args, ["netns", "exec", "podway-t-control-plane", "sh", "-c", "ip addr"]);
    }
}
