//! Why an image cannot run, worded the way the kubelet words it.

use std::path::PathBuf;

/// Why [`resolve`](super::resolve) could not turn an image into a program.
///
/// `Display` is the kubelet's event text (`Failed to pull image "x": …`);
/// [`ImageError::status_message`] is what goes in the container's waiting state, and
/// [`ImageError::reason`] its reason. None of these is fixed by retrying as is: the user must
/// change the pod, the catalog or the host, which is why the kubelet backs off
/// (`ImagePullBackOff`) instead of failing the pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageError {
    /// The image string is not a valid reference (kubelet: `InvalidImageName`).
    InvalidName {
        /// The image as written in the pod.
        image: String,
        /// The parser's complaint.
        detail: String,
    },
    /// Nothing provides the image: not the catalog, not a built-in, not a host program
    /// (kubelet: `ErrImagePull`).
    NotFound {
        /// The image as written in the pod.
        image: String,
        /// The normalised reference, e.g. `docker.io/library/foo:latest`.
        reference: String,
        /// The short repository name to put in a catalog entry, e.g. `foo`.
        suggestion: String,
        /// The catalog file to add it to.
        catalog: PathBuf,
    },
    /// The image is one podway runs with a host program, and that program is not installed
    /// (kubelet: `ErrImagePull`).
    HostProgramMissing {
        /// The image as written in the pod.
        image: String,
        /// The program podway looked for.
        program: PathBuf,
        /// The Debian package that provides it.
        package: &'static str,
        /// The catalog file that could map the image instead.
        catalog: PathBuf,
    },
    /// The image exists but the container's command names a program the image does not have
    /// (kubelet: `RunContainerError`; the runtime reports `StartError`, exit code 128).
    ExecutableNotFound {
        /// The image as written in the pod.
        image: String,
        /// The command as given (argv\[0\]).
        command: String,
    },
}

impl ImageError {
    /// The container waiting reason the kubelet reports for this error.
    pub fn reason(&self) -> &'static str {
        match self {
            ImageError::InvalidName { .. } => "InvalidImageName",
            ImageError::NotFound { .. } | ImageError::HostProgramMissing { .. } => "ErrImagePull",
            ImageError::ExecutableNotFound { .. } => "RunContainerError",
        }
    }

    /// True for pull errors, after which the kubelet backs off (`ImagePullBackOff`).
    pub fn is_pull_error(&self) -> bool {
        self.reason() == "ErrImagePull"
    }

    /// The image as written in the pod.
    pub fn image(&self) -> &str {
        match self {
            ImageError::InvalidName { image, .. }
            | ImageError::NotFound { image, .. }
            | ImageError::HostProgramMissing { image, .. }
            | ImageError::ExecutableNotFound { image, .. } => image,
        }
    }

    /// The container status message (`state.waiting.message`): the error itself, without the
    /// event's `Failed to pull image "x": ` prefix, as the kubelet reports it.
    pub fn status_message(&self) -> String {
        match self {
            ImageError::InvalidName { image, detail } => {
                format!("Failed to apply default image tag {image:?}: couldn't parse image name {image:?}: {detail}")
            }
            ImageError::NotFound {
                reference,
                suggestion,
                catalog,
                ..
            } => format!(
                "podway cannot pull {reference:?}: it is not in the image catalog ({catalog}), not a built-in test \
                 image and not a program on this host; to run it, map it to a host program in {catalog}, e.g. \
                 \"images: [{{image: {suggestion}, command: [/path/to/program]}}]\" (see docs/images.md)",
                catalog = catalog.display()
            ),
            ImageError::HostProgramMissing {
                image,
                program,
                package,
                catalog,
            } => format!(
                "podway runs {image:?} with the host's {program}, which is not installed: install it \
                 (apt-get install {package}) or map the image to another program in the image catalog {catalog}",
                program = program.display(),
                catalog = catalog.display()
            ),
            ImageError::ExecutableNotFound { command, .. } => {
                format!("failed to start container process: exec: {command:?}: executable file not found in $PATH")
            }
        }
    }

    /// The message of the kubelet's `BackOff` event and of the `ImagePullBackOff` waiting state.
    pub fn backoff_message(&self) -> String {
        format!("Back-off pulling image {:?}", self.image())
    }
}

impl std::fmt::Display for ImageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImageError::NotFound { image, .. } | ImageError::HostProgramMissing { image, .. } => {
                write!(f, "Failed to pull image {image:?}: {}", self.status_message())
            }
            ImageError::InvalidName { .. } => f.write_str(&self.status_message()),
            ImageError::ExecutableNotFound { .. } => write!(f, "Error: {}", self.status_message()),
        }
    }
}

impl std::error::Error for ImageError {}
