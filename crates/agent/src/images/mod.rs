//! Images: how an image name becomes a program to run (being written).

/// Run a built-in test image in this process (`podway builtin-image NAME [ARGS...]`); returns
/// when the image's program ends.
pub fn run_builtin(argv: &[String]) -> anyhow::Result<()> {
    anyhow::bail!("built-in image {:?} is not written yet", argv.first())
}
