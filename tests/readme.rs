//! The README's quickstart stays true: every shell block in it runs, as written, against a
//! fresh cluster.

mod common;

use common::{text, Cluster};

/// The ```sh blocks of the README's Quickstart section.
fn quickstart_blocks() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let start = readme.find("## Quickstart").expect("a Quickstart section");
    let end = readme[start..]
        .find("\n### ")
        .map(|e| start + e)
        .unwrap_or(readme.len());
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in readme[start..end].lines() {
        match (&mut current, line.trim_start()) {
            (None, "```sh") => current = Some(String::new()),
            (Some(b), "```") => {
                blocks.push(std::mem::take(b));
                current = None;
            }
            (Some(b), _) => {
                b.push_str(line);
                b.push('\n');
            }
            _ => {}
        }
    }
    blocks
}

#[test]
fn every_quickstart_block_runs_as_written() {
    let blocks = quickstart_blocks();
    assert!(blocks.len() >= 4, "found {} blocks", blocks.len());
    let c = Cluster::start();
    let work = tempfile::tempdir().unwrap();
    for block in blocks {
        let out = std::process::Command::new("bash")
            .args(["-euo", "pipefail", "-c", &block])
            .current_dir(work.path())
            .env("HOME", c.home())
            .env("KUBECONFIG", c.kubeconfig())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "this README block failed:\n{block}\nstdout:\n{}\nstderr:\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
    }
}
