//! What a resolved image runs ([`Launch`]) and what resolution needs to know ([`ResolveContext`]).

use std::path::{Path, PathBuf};

use super::catalog::Catalog;

/// Where the host programs podway runs images with are. [`HostPrograms::debian`] has Debian's
/// paths; [`HostPrograms::detect`] also asks the host what it has. Tests point them elsewhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPrograms {
    /// nginx, for the `nginx` image.
    pub nginx: PathBuf,
    /// nginx's `mime.types`, included by the generated configuration.
    pub nginx_mime_types: PathBuf,
    /// The page nginx serves: the official image serves `/usr/share/nginx/html`, and Debian's
    /// nginx-common ships its "Welcome to nginx!" page there too.
    pub nginx_html_root: PathBuf,
    /// busybox, for `busybox` and for the shell and tools of Alpine-based images.
    pub busybox: PathBuf,
    /// busybox's applets (`busybox --list`): each becomes a command in the container's PATH.
    pub busybox_applets: Vec<String>,
    /// curl, for `curlimages/curl`.
    pub curl: PathBuf,
    /// python3, for `python`.
    pub python3: PathBuf,
    /// The directories a command without a `/` is looked up in (catalog commands, Debian images).
    pub path: Vec<PathBuf>,
    /// Whether podway runs as root (nginx then runs its workers as root too).
    pub as_root: bool,
    /// Whether the kernel has IPv6 (nginx then also listens on `[::]`, like the image).
    pub ipv6: bool,
}

/// The PATH of the images' own environment (Debian's and Alpine's default).
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

impl HostPrograms {
    /// Debian's paths, without looking at the host (no applets known, root, IPv6).
    pub fn debian() -> HostPrograms {
        HostPrograms {
            nginx: "/usr/sbin/nginx".into(),
            nginx_mime_types: "/etc/nginx/mime.types".into(),
            nginx_html_root: "/usr/share/nginx/html".into(),
            busybox: "/bin/busybox".into(),
            busybox_applets: Vec::new(),
            curl: "/usr/bin/curl".into(),
            python3: "/usr/bin/python3".into(),
            path: DEFAULT_PATH.split(':').map(PathBuf::from).collect(),
            as_root: true,
            ipv6: true,
        }
    }

    /// Debian's paths plus what the host says: busybox's applets, whether we are root, whether
    /// the kernel has IPv6. Runs `busybox --list` once; call it at agent start.
    pub fn detect() -> HostPrograms {
        let mut host = HostPrograms::debian();
        host.busybox_applets = std::process::Command::new(&host.busybox)
            .arg("--list")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).lines().map(str::to_string).collect())
            .unwrap_or_default();
        host.as_root = rustix::process::geteuid().is_root();
        host.ipv6 = Path::new("/proc/net/if_inet6").exists();
        host
    }

    /// Find a command the way `execvp` would: as is when it has a `/`, else in [`Self::path`].
    pub fn which(&self, command: &str) -> Option<PathBuf> {
        if command.contains('/') {
            return Some(PathBuf::from(command)).filter(|p| p.is_file());
        }
        self.path.iter().map(|dir| dir.join(command)).find(|p| p.is_file())
    }
}

/// Everything [`resolve`](super::resolve) needs besides the image and the container.
#[derive(Debug, Clone)]
pub struct ResolveContext {
    /// The user's image catalog, consulted first.
    pub catalog: Catalog,
    /// The podway executable: built-in images run as `<podway_exe> builtin-image <name> …`.
    pub podway_exe: PathBuf,
    /// A writable directory for this container (one per container, kept while it exists).
    /// Generated files are placed there by [`Launch::write_files`]; resolution itself writes
    /// nothing.
    pub work_dir: PathBuf,
    /// The host programs.
    pub host: HostPrograms,
    /// Where the busybox applet links are: one directory shared by all containers of a node
    /// (the links never differ), so a container start does not make hundreds of them.
    pub applets_dir: PathBuf,
}

/// A file the launch needs on disk before it starts (see [`Launch::write_files`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GeneratedFile {
    /// A regular file.
    File {
        /// Where (inside the work dir).
        path: PathBuf,
        /// The contents.
        contents: String,
        /// Unix permission bits (0o644 for data, 0o755 for scripts).
        mode: u32,
    },
    /// A symbolic link (busybox applets: busybox picks the applet from argv\[0\]).
    Symlink {
        /// Where (inside the work dir).
        path: PathBuf,
        /// What it points to.
        target: PathBuf,
    },
}

/// How to start a container's process: the result of resolving its image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The program to execute (an absolute path).
    pub program: PathBuf,
    /// Its arguments (argv\[1..\]; argv\[0\] is the program).
    pub args: Vec<String>,
    /// The image's ENV, in order. The runtime applies it first; the container's env (and the
    /// service variables) override it, as with a real image. Includes `PATH`.
    pub env: Vec<(String, String)>,
    /// The working directory: the container's `workingDir`, else the image's WORKDIR, else `/`.
    pub working_dir: PathBuf,
    /// Files to create before starting ([`Launch::write_files`]): nginx.conf, PATH entries.
    pub files: Vec<GeneratedFile>,
}

impl Launch {
    /// The whole argv: program then arguments.
    pub fn argv(&self) -> Vec<String> {
        std::iter::once(self.program.to_string_lossy().to_string())
            .chain(self.args.iter().cloned())
            .collect()
    }

    /// Create [`Launch::files`] (and their directories), replacing what is there: call it
    /// before each start of the container.
    pub fn write_files(&self) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        for file in &self.files {
            let path = match file {
                GeneratedFile::File { path, .. } | GeneratedFile::Symlink { path, .. } => path,
            };
            // A link that already points where it should stays (shared applet links).
            if let GeneratedFile::Symlink { target, .. } = file {
                if std::fs::read_link(path).is_ok_and(|t| &t == target) {
                    continue;
                }
            }
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            match std::fs::symlink_metadata(path) {
                Ok(_) => std::fs::remove_file(path)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
            match file {
                GeneratedFile::File { path, contents, mode } => {
                    std::fs::write(path, contents)?;
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(*mode))?;
                }
                GeneratedFile::Symlink { path, target } => std::os::unix::fs::symlink(target, path)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_files_and_links_are_written_and_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let launch = Launch {
            program: "/bin/true".into(),
            args: vec![],
            env: vec![],
            working_dir: "/".into(),
            files: vec![
                GeneratedFile::File {
                    path: dir.path().join("a/conf"),
                    contents: "x".into(),
                    mode: 0o755,
                },
                GeneratedFile::Symlink {
                    path: dir.path().join("bin/sh"),
                    target: "/bin/busybox".into(),
                },
            ],
        };
        launch.write_files().unwrap();
        launch.write_files().unwrap();
        assert_eq!(std::fs::read_to_string(dir.path().join("a/conf")).unwrap(), "x");
        assert_eq!(
            std::fs::read_link(dir.path().join("bin/sh")).unwrap(),
            PathBuf::from("/bin/busybox")
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("a/conf"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
    }

    #[test]
    fn which_finds_commands_in_the_path_or_as_given() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tool"), "").unwrap();
        let host = HostPrograms {
            path: vec![dir.path().to_path_buf()],
            ..HostPrograms::debian()
        };
        assert_eq!(host.which("tool"), Some(dir.path().join("tool")));
        assert_eq!(host.which("missing"), None);
        let abs = dir.path().join("tool").to_string_lossy().to_string();
        assert_eq!(host.which(&abs), Some(PathBuf::from(&abs)));
    }
}
