//! Running scripts through `nft -f -`, behind a narrow trait so tests can record instead.

use std::process::Stdio;

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// Why a script could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum NftError {
    /// `nft` could not be started (not installed, not executable). Retrying does not help.
    #[error("cannot run {program}: {source}; install the nftables package or use --proxy-mode userspace")]
    Spawn {
        /// The program that was started.
        program: String,
        /// What the OS said.
        source: std::io::Error,
    },
    /// `nft` rejected the script; nothing of it was applied. Retrying the same script will fail
    /// again, a full render may succeed.
    #[error("nft -f failed ({status}): {stderr}")]
    Rejected {
        /// The exit status.
        status: String,
        /// What nft printed.
        stderr: String,
    },
}

/// Something that applies an `nft -f` script atomically.
#[async_trait]
pub trait Nft: Send + Sync {
    /// Applies `script` as one transaction in the current network namespace.
    async fn apply(&self, script: &str) -> Result<(), NftError>;
}

/// The real `nft` program.
#[derive(Debug, Clone)]
pub struct NftCommand {
    program: String,
    prefix: Vec<String>,
}

impl NftCommand {
    /// Runs `nft` from `PATH`.
    pub fn new() -> Self {
        NftCommand {
            program: "nft".into(),
            prefix: Vec::new(),
        }
    }

    /// Runs `program prefix... -f -` instead, e.g. `ip netns exec NS nft` to program another
    /// namespace.
    pub fn with_prefix(program: impl Into<String>, prefix: impl IntoIterator<Item = impl Into<String>>) -> Self {
        NftCommand {
            program: program.into(),
            prefix: prefix.into_iter().map(Into::into).collect(),
        }
    }
}

impl Default for NftCommand {
    fn default() -> Self {
        NftCommand::new()
    }
}

#[async_trait]
impl Nft for NftCommand {
    async fn apply(&self, script: &str) -> Result<(), NftError> {
        let spawn_err = |source| NftError::Spawn {
            program: self.program.clone(),
            source,
        };
        let mut child = Command::new(&self.program)
            .args(&self.prefix)
            .args(["-f", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(spawn_err)?;
        let mut stdin = child.stdin.take().expect("stdin is piped");
        // A write error means nft exited early; its status and stderr say why.
        let _ = stdin.write_all(script.as_bytes()).await;
        drop(stdin);
        let out = child.wait_with_output().await.map_err(spawn_err)?;
        if out.status.success() {
            Ok(())
        } else {
            Err(NftError::Rejected {
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
    }
}

/// Whether nftables can carry Services here: `nft` runs and the kernel accepts a table with
/// the expressions podway uses (verdict maps on concatenations, numgen, fib, dynamic sets,
/// nat). Checked in a throw-away table that is removed again in the same transaction, so
/// nothing is left behind.
pub async fn nftables_usable(nft: &dyn Nft) -> Result<(), NftError> {
    nft.apply(PROBE).await
}

const PROBE: &str = "\
add table ip podway-probe
add map ip podway-probe m { type ipv4_addr . inet_proto . inet_service : verdict ; }
add set ip podway-probe s { type ipv4_addr ; flags dynamic,timeout ; timeout 10s ; }
add chain ip podway-probe ep
add rule ip podway-probe ep update @s { ip saddr }
add rule ip podway-probe ep meta l4proto tcp dnat to 192.0.2.1:80
add chain ip podway-probe pre { type nat hook prerouting priority -100 ; policy accept ; }
add rule ip podway-probe pre ip daddr . meta l4proto . th dport vmap @m
add rule ip podway-probe pre fib daddr type local numgen random mod 2 == 0 goto ep
add chain ip podway-probe post { type nat hook postrouting priority 100 ; policy accept ; }
add rule ip podway-probe post masquerade fully-random
delete table ip podway-probe
";

#[cfg(test)]
pub(crate) mod fake {
    //! A recording [`Nft`] for unit tests.
    use super::*;
    use std::sync::Mutex;

    /// Records every script and fails the next `fail` applies.
    #[derive(Default)]
    pub struct FakeNft {
        pub scripts: Mutex<Vec<String>>,
        pub fail: Mutex<usize>,
    }

    #[async_trait]
    impl Nft for FakeNft {
        async fn apply(&self, script: &str) -> Result<(), NftError> {
            self.scripts.lock().unwrap().push(script.to_string());
            let mut fail = self.fail.lock().unwrap();
            if *fail > 0 {
                *fail -= 1;
                return Err(NftError::Rejected {
                    status: "exit status: 1".into(),
                    stderr: "injected".into(),
                });
            }
            Ok(())
        }
    }
}
