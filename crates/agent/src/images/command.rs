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

/// Expand `$(VAR)` in a container's command or args the way the kubelet does: a defined
/// variable is replaced, an undefined one is left as written, `$$` is a literal `$`.
#[doc(alias = "expansion.Expand")]
pub fn expand_references(input: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let bytes = input.as_bytes();
    let mut out = String::with_capacity(input.len());
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' && i + 1 < bytes.len() {
            match bytes[i + 1] {
                b'$' => {
                    out.push_str(&input[copied..i]);
                    out.push('$');
                    i += 2;
                    copied = i;
                    continue;
                }
                b'(' => {
                    if let Some(close) = input[i + 2..].find(')') {
                        let name = &input[i + 2..i + 2 + close];
                        out.push_str(&input[copied..i]);
                        match lookup(name) {
                            Some(value) if !name.is_empty() => out.push_str(&value),
                            _ => out.push_str(&input[i..i + 3 + close]),
                        }
                        i += 3 + close;
                        copied = i;
                        continue;
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    out.push_str(&input[copied..]);
    out
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
        assert_eq!(effective_argv(&ep, &cmd, Some(&command), Some(&args)), v(&["/bin/other", "--flag"]));
        assert_eq!(effective_argv(&ep, &cmd, Some(&[]), Some(&[])), v(&["/ep", "default"]), "empty is unset");
    }

    #[test]
    fn references_expand_like_the_kubelet() {
        let lookup = |name: &str| (name == "PORT").then(|| "8080".to_string());
        assert_eq!(expand_references("--port=$(PORT)", lookup), "--port=8080");
        assert_eq!(expand_references("$(MISSING) and $$(PORT) and $$", lookup), "$(MISSING) and $(PORT) and $");
        assert_eq!(expand_references("$(PORT", lookup), "$(PORT");
        assert_eq!(expand_references("a$b$", lookup), "a$b$");
    }
}
