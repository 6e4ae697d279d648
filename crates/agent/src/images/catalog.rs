//! The user's image catalog: a YAML file in the data dir that maps an image name or a glob
//! pattern to the program that runs for it. It is consulted before the built-in test images and
//! the host programs, so it can also override them. Format: docs/images.md.
//!
//! ```yaml
//! images:
//! - image: myorg/api            # a name (any spelling: myorg/api, docker.io/myorg/api:1.2, …)
//!   command: [/opt/api/bin/api]  # the image's ENTRYPOINT: a pod's `command` replaces it
//!   args: [--port, "8080"]       # the image's CMD: a pod's `args` replaces it
//!   env: {LOG_LEVEL: info}       # the image's ENV: the pod's env wins
//!   workingDir: /opt/api         # the image's WORKDIR: the pod's workingDir wins
//! - image: "myorg/*"             # a pattern: `*` is any run of characters, `?` one character
//!   command: [/usr/local/bin/myorg-runner]
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::reference::ImageRef;

/// The file name of the catalog inside podway's data dir.
pub const CATALOG_FILE_NAME: &str = "images.yaml";

/// A parsed image catalog. Entries are tried in file order; the first match wins.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    /// Where the catalog lives (or would live: a missing file is an empty catalog). Error
    /// messages name it so a user knows which file to edit.
    pub path: PathBuf,
    /// The entries, in file order.
    pub entries: Vec<CatalogEntry>,
}

/// One catalog entry: what an image (or every image matching a pattern) runs.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CatalogEntry {
    /// An image name in any spelling, or a glob pattern (`myorg/*`, `*:1.0`).
    pub image: String,
    /// The image's ENTRYPOINT: a host program (absolute path, or a name looked up in PATH) and
    /// its first arguments. A pod's `command` replaces it.
    pub command: Vec<String>,
    /// The image's CMD. A pod's `args` replaces it.
    #[serde(default)]
    pub args: Vec<String>,
    /// The image's ENV; the container's own env wins over it.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// The image's WORKDIR; the container's workingDir wins over it.
    #[serde(default)]
    pub working_dir: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    #[serde(default)]
    images: Vec<CatalogEntry>,
}

/// Why the catalog cannot be used. Retrying does not help until the user fixes the file.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The file exists but cannot be read.
    #[error("cannot read the image catalog {path}: {source}")]
    Read {
        /// The catalog file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid catalog (bad YAML, unknown field, wrong type).
    #[error("the image catalog {path} is invalid: {message} (see docs/images.md for the format)")]
    Invalid {
        /// The catalog file.
        path: PathBuf,
        /// What is wrong, with the line and column where YAML reports one.
        message: String,
    },
}

/// Load the catalog at `path`. A missing file is an empty catalog (most users never write one).
pub fn load_catalog(path: &Path) -> Result<Catalog, CatalogError> {
    match std::fs::read_to_string(path) {
        Ok(text) => parse_catalog(path, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Catalog {
            path: path.to_path_buf(),
            entries: Vec::new(),
        }),
        Err(source) => Err(CatalogError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

/// Parse catalog text; `path` is only used in messages.
pub fn parse_catalog(path: &Path, text: &str) -> Result<Catalog, CatalogError> {
    let invalid = |message: String| CatalogError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    // An empty file (or one with only comments) is an empty catalog, not an error.
    let file: Option<CatalogFile> = serde_yaml::from_str(text).map_err(|e| invalid(e.to_string()))?;
    let entries = file.map(|f| f.images).unwrap_or_default();
    for (i, entry) in entries.iter().enumerate() {
        if entry.image.trim().is_empty() {
            return Err(invalid(format!("images[{i}].image: must not be empty")));
        }
        if entry.command.is_empty() || entry.command[0].is_empty() {
            return Err(invalid(format!(
                "images[{i}].command: must name the program to run for {:?}",
                entry.image
            )));
        }
    }
    Ok(Catalog {
        path: path.to_path_buf(),
        entries,
    })
}

impl Catalog {
    /// An empty catalog that would live at `path`.
    pub fn empty(path: impl Into<PathBuf>) -> Catalog {
        Catalog {
            path: path.into(),
            entries: Vec::new(),
        }
    }

    /// The first entry matching the image, trying every spelling of it: as written, the familiar
    /// and the fully qualified forms with the default tag, and both repository forms without a
    /// tag. So `nginx`, `nginx:latest`, `docker.io/library/nginx` all match `image: nginx`.
    pub fn find(&self, written: &str, reference: &ImageRef) -> Option<&CatalogEntry> {
        let spellings = [
            written.to_string(),
            reference.familiar(),
            reference.normalized(),
            reference.familiar_repository(),
            reference.repository(),
        ];
        self.entries
            .iter()
            .find(|entry| spellings.iter().any(|s| glob_match(&entry.image, s)))
    }
}

/// Shell-style matching: `*` matches any run of characters (including `/`), `?` one character;
/// everything else matches itself.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    // Iterative matcher with one backtrack point: linear for the patterns people write.
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog(text: &str) -> Catalog {
        parse_catalog(Path::new("/data/images.yaml"), text).unwrap()
    }

    fn find<'a>(catalog: &'a Catalog, image: &str) -> Option<&'a str> {
        let r = ImageRef::parse(image).unwrap();
        catalog.find(image, &r).map(|e| e.command[0].as_str())
    }

    #[test]
    fn glob_stars_span_slashes_and_question_marks_match_one_character() {
        assert!(glob_match("myorg/*", "myorg/api:1.0"));
        assert!(glob_match("*:1.0", "gcr.io/google-samples/hello-app:1.0"));
        assert!(glob_match("app-?", "app-1"));
        assert!(!glob_match("app-?", "app-10"));
        assert!(!glob_match("myorg/*", "other/api"));
        assert!(glob_match("*", ""));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
    }

    #[test]
    fn an_entry_matches_every_spelling_of_its_image() {
        let c = catalog("images:\n- image: nginx\n  command: [/opt/nginx]\n");
        for image in [
            "nginx",
            "nginx:latest",
            "docker.io/library/nginx",
            "docker.io/library/nginx:latest",
        ] {
            assert_eq!(find(&c, image), Some("/opt/nginx"), "{image}");
        }
        assert_eq!(
            find(&c, "nginx:1.25"),
            Some("/opt/nginx"),
            "untagged entries match every tag"
        );
        assert_eq!(find(&c, "myorg/nginx"), None);
    }

    #[test]
    fn the_first_matching_entry_wins() {
        let c = catalog(
            "images:\n- image: myorg/api:2.*\n  command: [/opt/api2]\n- image: myorg/*\n  command: [/opt/any]\n",
        );
        assert_eq!(find(&c, "myorg/api:2.1"), Some("/opt/api2"));
        assert_eq!(find(&c, "myorg/api:1.0"), Some("/opt/any"));
        assert_eq!(find(&c, "docker.io/myorg/web"), Some("/opt/any"));
    }

    #[test]
    fn all_fields_are_read() {
        let c =
            catalog("images:\n- image: a\n  command: [/bin/a, -x]\n  args: [b]\n  env: {K: v}\n  workingDir: /srv\n");
        let e = &c.entries[0];
        assert_eq!(e.command, ["/bin/a", "-x"]);
        assert_eq!(e.args, ["b"]);
        assert_eq!(e.env.get("K").map(String::as_str), Some("v"));
        assert_eq!(e.working_dir.as_deref(), Some("/srv"));
    }

    #[test]
    fn an_empty_or_missing_file_is_an_empty_catalog() {
        assert!(catalog("").entries.is_empty());
        assert!(catalog("# nothing yet\n").entries.is_empty());
        let dir = tempfile::tempdir().unwrap();
        let c = load_catalog(&dir.path().join("images.yaml")).unwrap();
        assert!(c.entries.is_empty());
        assert_eq!(c.path, dir.path().join("images.yaml"));
    }

    #[test]
    fn invalid_catalogs_name_the_file_and_the_problem() {
        let p = Path::new("/data/images.yaml");
        let unknown = parse_catalog(p, "images:\n- image: a\n  cmd: [x]\n")
            .unwrap_err()
            .to_string();
        assert!(
            unknown.contains("/data/images.yaml") && unknown.contains("unknown field `cmd`"),
            "{unknown}"
        );
        let no_command = parse_catalog(p, "images:\n- image: a\n  command: []\n")
            .unwrap_err()
            .to_string();
        assert!(no_command.contains("images[0].command"), "{no_command}");
        let not_yaml = parse_catalog(p, "images: [\n").unwrap_err().to_string();
        assert!(
            not_yaml.starts_with("the image catalog /data/images.yaml is invalid"),
            "{not_yaml}"
        );
    }

    #[test]
    fn a_catalog_file_is_loaded_from_disk() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("images.yaml");
        std::fs::write(&path, "images:\n- image: a\n  command: [/bin/true]\n").unwrap();
        assert_eq!(load_catalog(&path).unwrap().entries.len(), 1);
    }
}
