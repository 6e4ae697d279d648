//! Service addresses made local, so the kernel delivers their packets to our listeners.
//!
//! Each cluster IP and external IP becomes a /32 on `lo` with the label `lo:pwsvc` (why `lo`
//! and not a dummy interface: README.md beside this file). The label lets a restarted proxy
//! find, and remove, exactly the addresses an earlier run added and no others.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::process::Stdio;

use async_trait::async_trait;
use tokio::io::AsyncWriteExt;

use crate::backend::SyncError;

/// The label on every address this backend adds (at most 15 bytes, `<device>:<suffix>`).
pub const LABEL: &str = "lo:pwsvc";

/// Adds and removes local service addresses (a trait so tests and benches need no root).
#[async_trait]
pub trait ServiceAddresses: Send {
    /// The addresses present now that this backend (or an earlier run) added.
    async fn list(&mut self) -> Result<BTreeSet<Ipv4Addr>, SyncError>;
    /// Adds `add` and removes `remove`, in one go.
    async fn change(&mut self, add: &[Ipv4Addr], remove: &[Ipv4Addr]) -> Result<(), SyncError>;
}

/// [`ServiceAddresses`] on `lo` through the `ip` tool, in the current network namespace; one
/// `ip -batch` process per change, however many addresses it holds.
#[derive(Debug, Clone, Default)]
pub struct LoopbackAddresses;

#[async_trait]
impl ServiceAddresses for LoopbackAddresses {
    async fn list(&mut self) -> Result<BTreeSet<Ipv4Addr>, SyncError> {
        let out = tokio::process::Command::new("ip")
            .args(["-4", "-o", "addr", "show", "dev", "lo", "label", LABEL])
            .output()
            .await
            .map_err(|e| format!("cannot run ip: {e}"))?;
        if !out.status.success() {
            return Err(format!("ip addr show dev lo: {}", String::from_utf8_lossy(&out.stderr).trim()).into());
        }
        Ok(parse_addresses(&String::from_utf8_lossy(&out.stdout)))
    }

    async fn change(&mut self, add: &[Ipv4Addr], remove: &[Ipv4Addr]) -> Result<(), SyncError> {
        if add.is_empty() && remove.is_empty() {
            return Ok(());
        }
        let script = batch(add, remove);
        let mut child = tokio::process::Command::new("ip")
            .args(["-4", "-force", "-batch", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run ip: {e}"))?;
        let mut stdin = child.stdin.take().ok_or("ip has no stdin")?;
        stdin.write_all(script.as_bytes()).await?;
        drop(stdin);
        let out = child.wait_with_output().await?;
        let stderr = String::from_utf8_lossy(&out.stderr);
        match real_errors(&stderr) {
            errors if errors.is_empty() => Ok(()),
            errors => Err(format!("ip -batch on lo: {}", errors.join("; ")).into()),
        }
    }
}

/// The `ip -batch` lines that add and remove /32s on `lo`.
fn batch(add: &[Ipv4Addr], remove: &[Ipv4Addr]) -> String {
    let mut s = String::new();
    for ip in remove {
        s.push_str(&format!("addr del {ip}/32 dev lo label {LABEL}\n"));
    }
    for ip in add {
        s.push_str(&format!("addr add {ip}/32 dev lo label {LABEL}\n"));
    }
    s
}

/// The stderr lines of `ip -force -batch` that are failures: adding an address that is there,
/// or removing one that is not, is already done.
fn real_errors(stderr: &str) -> Vec<&str> {
    let benign = ["File exists", "Cannot assign requested address", "Command failed"];
    stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !benign.iter().any(|b| l.contains(b)))
        .collect()
}

/// The /32 addresses in `ip -o addr show` output.
fn parse_addresses(out: &str) -> BTreeSet<Ipv4Addr> {
    out.lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            words.find(|w| *w == "inet")?;
            words.next()?.strip_suffix("/32")?.parse().ok()
        })
        .collect()
}

/// A [`ServiceAddresses`] that does nothing: for addresses that are local already (a bench on
/// `127.0.0.0/8`) or a caller that manages them itself.
#[derive(Debug, Clone, Default)]
pub struct NoAddresses;

#[async_trait]
impl ServiceAddresses for NoAddresses {
    async fn list(&mut self) -> Result<BTreeSet<Ipv4Addr>, SyncError> {
        Ok(BTreeSet::new())
    }

    async fn change(&mut self, _add: &[Ipv4Addr], _remove: &[Ipv4Addr]) -> Result<(), SyncError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_removes_before_it_adds_and_labels_every_address() {
        let s = batch(&["10.96.0.1".parse().unwrap()], &["10.96.0.2".parse().unwrap()]);
        assert_eq!(
            s,
            "addr del 10.96.0.2/32 dev lo label lo:pwsvc\naddr add 10.96.0.1/32 dev lo label lo:pwsvc\n"
        );
    }

    #[test]
    fn only_failures_other_than_already_done_are_errors() {
        let stderr = "RTNETLINK answers: File exists\nCommand failed -:1\nError: Device does not exist.\n";
        assert_eq!(real_errors(stderr), vec!["Error: Device does not exist."]);
    }

    #[test]
    fn labelled_slash_32_addresses_are_parsed_from_ip_output() {
        let out = "1: lo    inet 10.96.0.10/32 scope global lo:pwsvc\\       valid_lft forever\n\
                   1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n";
        assert_eq!(
            parse_addresses(out).into_iter().collect::<Vec<_>>(),
            vec!["10.96.0.10".parse::<Ipv4Addr>().unwrap()]
        );
    }
}
