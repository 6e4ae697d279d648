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
    // A cluster with a node, so the pods of the quickstart run; `podway` on the PATH and its
    // data directory in the environment, as for a user after `make up`.
    let (c, _layout) = Cluster::start_nodes(1);
    let work = tempfile::tempdir().unwrap();
    let bin_dir = common::podway_bin().parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    for block in blocks {
        let out = std::process::Command::new("bash")
            .args(["-euo", "pipefail", "-c", &block])
            .current_dir(work.path())
            .env("HOME", c.home())
            .env("KUBECONFIG", c.kubeconfig())
            .env("PATH", &path)
            .env("PODWAY_DATA_DIR", c.data_dir())
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
