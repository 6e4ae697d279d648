//! Kubernetes' command and args semantics against an image's ENTRYPOINT and CMD.

/// The process argv a container runs, as the container runtime computes it:
///
/// | pod `command` | pod `args` | runs                  |
/// |---------------|------------|-----------------------|
/// | –             | –          | ENTRYPOINT + CMD      |
/// | set           | –          | command (CMD ignored) |
/// | –             | set        | ENTRYPOINT + args     |
/// | set           | set        | command + args        |
///
/// An empty list counts as unset, as in the kubelet. `$(VAR)` references must already be
/// expanded ([`expand_references`]).
pub fn effective_argv(
    entrypoint: &[String],
    cmd: &[String],
    command: Option<&[String]>,
    args: Option<&[String]>,
) -> Vec<String> {
    let command = command.filter(|c| !c.is_empty());
    let args = args.filter(|a| !a.is_empty());
    match (command, args) {
        (Some(command), Some(args)) => command.iter().chain(args).cloned().collect(),
        (Some(command), None) => command.to_vec(),
        (None, Some(args)) => entrypoint.iter().chain(args).cloned().collect(),
        (None, None) => entrypoint.iter().chain(cmd).cloned().collect(),
    }
}

/// Expand `$(VAR)` in a container's command or args the way the kubelet does (see
/// [`podway_api::expansion::expand`]).
pub fn expand_references(input: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    podway_api::expansion::expand(input, lookup)
}

/// The base name of a command: `/bin/sh` → `sh`.
pub(crate) fn base_name(command: &str) -> &str {
    command.rsplit('/').next().unwrap_or(command)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(items: &[&str]) -> Vec<String> {
        items.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn command_replaces_entrypoint_and_args_replace_cmd() {
        let (ep, cmd) = (v(&["/ep"]), v(&["default"]));
        let (command, args) = (v(&["/bin/other"]), v(&["--flag"]));
        assert_eq!(effective_argv(&ep, &cmd, None, None), v(&["/ep", "default"]));
        assert_eq!(effective_argv(&ep, &cmd, Some(&command), None), v(&["/bin/other"]));
        assert_eq!(effective_argv(&ep, &cmd, None, Some(&args)), v(&["/ep", "--flag"]));
        assert_eq!(
            effective_argv(&ep, &cmd, Some(&command), Some(&args)),
            v(&["/bin/other", "--flag"])
        );
        assert_eq!(
            effective_argv(&ep, &cmd, Some(&[]), Some(&[])),
            v(&["/ep", "default"]),
            "empty is unset"
        );
    }
}
