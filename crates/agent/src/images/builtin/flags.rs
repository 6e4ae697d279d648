//! Command-line flags the way Go's `flag` package reads them (whoami and http-echo are Go
//! programs): `-name value`, `-name=value`, `--name=value`, bool flags alone, parsing stops at
//! the first non-flag argument or `--`.

use std::collections::HashMap;

/// One flag: its name and whether it is a bool (takes no separate value).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Flag {
    pub name: &'static str,
    pub is_bool: bool,
}

/// Why the arguments were refused; Go exits 2 for these (0 for `-h`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FlagError {
    /// `-h` or `-help`.
    Help,
    /// An unknown flag, e.g. `-x`.
    Undefined(String),
    /// A flag at the end without its value.
    NeedsArgument(String),
    /// A bool flag with a value that is not a bool.
    InvalidBool(String, String),
}

impl std::fmt::Display for FlagError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FlagError::Help => f.write_str("flag: help requested"),
            FlagError::Undefined(name) => write!(f, "flag provided but not defined: -{name}"),
            FlagError::NeedsArgument(name) => write!(f, "flag needs an argument: -{name}"),
            FlagError::InvalidBool(value, name) => {
                write!(f, "invalid boolean value {value:?} for -{name}: parse error")
            }
        }
    }
}

/// The flags that were set (last one wins; bools are "true"/"false") and the remaining args.
pub(crate) type Parsed = (HashMap<&'static str, String>, Vec<String>);

/// Parse `args` against `flags`.
pub(crate) fn parse(flags: &[Flag], args: &[String]) -> Result<Parsed, FlagError> {
    let mut set = HashMap::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        if arg == "--" {
            i += 1;
            break;
        }
        let Some(body) = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) else {
            break;
        };
        if body.is_empty() || body.starts_with('-') || body.starts_with('=') {
            // "-" alone is an argument; "---x" and "-=x" are bad syntax, treated as unknown.
            if body.is_empty() {
                break;
            }
            return Err(FlagError::Undefined(body.to_string()));
        }
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let Some(flag) = flags.iter().find(|f| f.name == name) else {
            if name == "h" || name == "help" {
                return Err(FlagError::Help);
            }
            return Err(FlagError::Undefined(name.to_string()));
        };
        let value = if flag.is_bool {
            match inline.as_deref() {
                None => "true".to_string(),
                Some(v) => match v {
                    "1" | "t" | "T" | "true" | "TRUE" | "True" => "true".to_string(),
                    "0" | "f" | "F" | "false" | "FALSE" | "False" => "false".to_string(),
                    _ => return Err(FlagError::InvalidBool(v.to_string(), name.to_string())),
                },
            }
        } else if let Some(v) = inline {
            v
        } else {
            i += 1;
            args.get(i)
                .cloned()
                .ok_or_else(|| FlagError::NeedsArgument(name.to_string()))?
        };
        set.insert(flag.name, value);
        i += 1;
    }
    Ok((set, args[i.min(args.len())..].to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLAGS: &[Flag] = &[
        Flag {
            name: "listen",
            is_bool: false,
        },
        Flag {
            name: "version",
            is_bool: true,
        },
    ];

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn every_go_flag_spelling_is_accepted() {
        for a in [
            &["-listen", ":1"][..],
            &["-listen=:1"],
            &["--listen", ":1"],
            &["--listen=:1"],
        ] {
            let (set, rest) = parse(FLAGS, &args(a)).unwrap();
            assert_eq!(set.get("listen").map(String::as_str), Some(":1"), "{a:?}");
            assert!(rest.is_empty());
        }
        let (set, rest) = parse(FLAGS, &args(&["-version", "extra", "-listen=x"])).unwrap();
        assert_eq!(set.get("version").map(String::as_str), Some("true"));
        assert_eq!(
            rest,
            args(&["extra", "-listen=x"]),
            "parsing stops at the first argument"
        );
    }

    #[test]
    fn unknown_and_incomplete_flags_are_errors_with_gos_wording() {
        assert_eq!(
            parse(FLAGS, &args(&["-nope"])).unwrap_err().to_string(),
            "flag provided but not defined: -nope"
        );
        assert_eq!(
            parse(FLAGS, &args(&["-listen"])).unwrap_err().to_string(),
            "flag needs an argument: -listen"
        );
        assert_eq!(parse(FLAGS, &args(&["-h"])), Err(FlagError::Help));
        assert!(matches!(
            parse(FLAGS, &args(&["-version=maybe"])),
            Err(FlagError::InvalidBool(..))
        ));
    }
}
