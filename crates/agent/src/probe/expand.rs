//! `$(VAR)` expansion of an exec probe's command, as the kubelet's
//! `ExpandContainerCommandOnlyStatic` does it: only the container's own `env` values (a
//! `valueFrom` counts as empty), `$$` escapes a dollar, unknown or unclosed references stay
//! as written.

use std::collections::HashMap;

/// Expand every argument of `command` with `env` (name → value, later entries winning).
pub(crate) fn expand_command(command: &[String], env: &[(String, String)]) -> Vec<String> {
    let vars: HashMap<&str, &str> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    command.iter().map(|arg| expand(arg, &vars)).collect()
}

fn expand(input: &str, vars: &HashMap<&str, &str>) -> String {
    podway_api::expansion::expand(input, |name| vars.get(name).map(|v| v.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Vec<String> {
        let env = vec![
            ("A".to_string(), "alpha".to_string()),
            ("EMPTY".to_string(), String::new()),
        ];
        expand_command(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>(), &env)
    }

    #[test]
    fn known_variables_are_replaced_and_unknown_ones_kept() {
        assert_eq!(
            run(&["cat", "/tmp/$(A)", "$(B)", "x$(EMPTY)y"]),
            vec!["cat", "/tmp/alpha", "$(B)", "xy"]
        );
    }

    #[test]
    fn double_dollar_escapes_and_lone_dollars_stay() {
        assert_eq!(
            run(&["$$(A)", "$HOME", "cost$", "$(A"]),
            vec!["$(A)", "$HOME", "cost$", "$(A"]
        );
    }
}
