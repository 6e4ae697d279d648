//! `$(VAR)` references in container commands, args and env values, expanded as Kubernetes'
//! `third_party/forked/golang/expansion` does: a defined variable is replaced, an undefined
//! one (or an unclosed `$(`) stays as written, `$$` is a literal `$`, any other `$` is kept.

/// Expand the references in `input`, looking each name up with `lookup`.
#[doc(alias = "expansion.Expand")]
pub fn expand(input: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some((name, tail)) = after.strip_prefix('(').and_then(|inner| inner.split_once(')')) {
            match lookup(name).filter(|_| !name.is_empty()) {
                Some(value) => out.push_str(&value),
                None => {
                    out.push_str("$(");
                    out.push_str(name);
                    out.push(')');
                }
            }
            rest = tail;
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_expand_like_kubernetes() {
        let lookup = |name: &str| (name == "PORT").then(|| "8080".to_string());
        assert_eq!(expand("--port=$(PORT)", lookup), "--port=8080");
        assert_eq!(
            expand("$(MISSING) and $$(PORT) and $$", lookup),
            "$(MISSING) and $(PORT) and $"
        );
        assert_eq!(expand("$(PORT", lookup), "$(PORT");
        assert_eq!(expand("a$b$", lookup), "a$b$");
        assert_eq!(expand("$()x", lookup), "$()x");
        assert_eq!(expand("ünïcode $(PORT) ✓", lookup), "ünïcode 8080 ✓");
    }
}
