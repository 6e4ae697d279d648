//! `podway`: a Kubernetes-compatible cluster in one binary.
//!
//! - `podway up`: start the cluster in the foreground (Ctrl-C or `podway down` stops it).
//! - `podway down`: stop a running cluster.
//! - `podway kubeconfig`: print the kubeconfig of the cluster in the data directory.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Parser, Subcommand};

mod kubeconfig;
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
}

fn main() -> Result<()> {
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
