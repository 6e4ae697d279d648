//! `podway`: a Kubernetes-compatible cluster in one binary.
//!
//! - `podway up`: start the cluster in the foreground (Ctrl-C or `podway down` stops it).
//! - `podway down`: stop a running cluster.
//! - `podway kubeconfig`: print the kubeconfig of the cluster in the data directory.
//! - `podway traffic svc/NAME`: connections and bytes per endpoint of a Service, and its path.
//! - `podway agent`: a node agent (started by `up` on each node, or on another machine).
//!
//! Two hidden words run pieces of a pod: `podway pod-shim` (one per pod, holding its
//! namespaces) and `podway builtin-image NAME` (the program of a built-in test image).

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

mod agent;
mod kubeconfig;
mod nodes;
mod traffic;
mod up;

#[derive(Parser)]
#[command(
    name = "podway",
    version,
    about = "A Kubernetes-compatible cluster in one binary, for running and learning Services"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a cluster in the foreground and print how to use it.
    Up(up::UpArgs),
    /// Stop the cluster running from a data directory.
    Down {
        /// The cluster's data directory.
        #[arg(long, env = "PODWAY_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// Print the kubeconfig of the cluster in a data directory.
    Kubeconfig {
        /// The cluster's data directory.
        #[arg(long, env = "PODWAY_DATA_DIR")]
        data_dir: Option<PathBuf>,
    },
    /// The cluster's nodes: list them, print an address, open a shell inside one, stop and
    /// start one.
    Node {
        /// The cluster's data directory.
        #[arg(long, env = "PODWAY_DATA_DIR")]
        data_dir: Option<PathBuf>,
        #[command(subcommand)]
        command: NodeCommand,
    },
    /// Which endpoint of a Service served how many connections and bytes, and the path a
    /// request takes (NodePort to ClusterIP to endpoint).
    Traffic(traffic::TrafficArgs),
    /// Run a node agent (started by `podway up` on every node; run it yourself to join another
    /// machine to a cluster).
    Agent(agent::AgentArgs),
}

#[derive(Subcommand)]
enum NodeCommand {
    /// List the nodes with their addresses.
    List,
    /// Print a node's IP.
    Ip {
        /// The node.
        node: String,
    },
    /// Stop a node like `docker stop` of a kind node: its agent and pods end, the Node stays
    /// (it goes NotReady and its pods are replaced elsewhere) until `podway node start`.
    Stop {
        /// The node.
        node: String,
    },
    /// Start a node stopped with `podway node stop` (its agent is back within a second).
    Start {
        /// The node.
        node: String,
    },
    /// A shell inside a node (like `minikube ssh`), or a command with `-- CMD ...`.
    Ssh {
        /// The node.
        node: String,
        /// The command to run instead of a shell.
        #[arg(last = true)]
        command: Vec<String>,
    },
}

fn main() -> Result<()> {
    // Processes inside pods are started before anything else is set up: a pod shim runs for
    // the pod's whole life and must stay small, and a built-in image is the pod's program.
    let argv: Vec<String> = std::env::args().collect();
    match argv.get(1).map(String::as_str) {
        Some("pod-shim") => {
            let args = podway_agent::sandbox::shim::ShimArgs::parse(&argv[2..])?;
            return podway_agent::sandbox::shim::run(&args);
        }
        Some("builtin-image") => {
            return match podway_agent::images::run_builtin(&argv[2..]) {
                // The image's own exit code (its message is printed already), as the real
                // image would exit.
                Err(e) => match e.downcast_ref::<podway_agent::images::BuiltinExit>() {
                    Some(exit) => std::process::exit(exit.code),
                    None => Err(e),
                },
                ok => ok,
            };
        }
        _ => {}
    }
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("PODWAY_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Up(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            rt.block_on(up::run(args))
        }
        Command::Down { data_dir } => up::down(&up::data_dir(data_dir)),
        Command::Agent(args) => {
            let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            rt.block_on(agent::run(args))
        }
        Command::Traffic(args) => traffic::run(args),
        Command::Node { data_dir, command } => node_command(&up::data_dir(data_dir), command),
        Command::Kubeconfig { data_dir } => {
            let path = up::data_dir(data_dir).join("kubeconfig");
            print!(
                "{}",
                std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!(
                    "{}: {e}; is a cluster set up there? Run `podway up` first",
                    path.display()
                ))?
            );
            Ok(())
        }
    }
}

fn node_command(dir: &std::path::Path, command: NodeCommand) -> Result<()> {
    let layout = nodes::load_layout(dir)?;
    let plan = podway_agent::network::NetworkPlan::new(&layout).map_err(|e| anyhow::anyhow!("{e}"))?;
    match command {
        NodeCommand::List => {
            println!("{:<32} {:<10} INTERNAL-IP", "NAME", "STATUS");
            for n in plan.nodes() {
                let running = !nodes::is_stopped(dir, &n.name) && !nodes::agent_pids(dir, &n.name).is_empty();
                let status = if running { "Running" } else { "Stopped" };
                println!("{:<32} {status:<10} {}", n.name, n.ip);
            }
            Ok(())
        }
        NodeCommand::Stop { node } => {
            if plan.node(&node).is_none() {
                return Err(unknown_node(&plan, &node));
            }
            let done = nodes::stop_node(dir, &node)?;
            println!(
                "stopped node {node} ({}, {} pod(s) killed)",
                if done.agent {
                    "agent ended"
                } else {
                    "no agent was running"
                },
                done.pods
            );
            Ok(())
        }
        NodeCommand::Start { node } => {
            if plan.node(&node).is_none() {
                return Err(unknown_node(&plan, &node));
            }
            if nodes::start_node(dir, &node)? {
                println!("started node {node}");
            } else {
                println!("node {node} is not stopped");
            }
            Ok(())
        }
        NodeCommand::Ip { node } => {
            let ip = plan.node_ip(&node).ok_or_else(|| unknown_node(&plan, &node))?;
            println!("{ip}");
            Ok(())
        }
        NodeCommand::Ssh { node, command } => {
            if plan.node(&node).is_none() {
                return Err(unknown_node(&plan, &node));
            }
            let network = podway_agent::network::Network::system(plan);
            let argv: Vec<String> = if command.is_empty() {
                vec![std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into())]
            } else {
                command
            };
            let status = network
                .node_command(&node, &argv)
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .status()?;
            std::process::exit(status.code().unwrap_or(1));
        }
    }
}

fn unknown_node(plan: &podway_agent::network::NetworkPlan, node: &str) -> anyhow::Error {
    anyhow::anyhow!(
        "node \"{node}\" not found; the cluster's nodes are: {}",
        plan.node_names().join(", ")
    )
}
