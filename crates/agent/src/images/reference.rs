//! Image references: parsing and normalisation the way containerd and the kubelet see them
//! (`nginx` is `docker.io/library/nginx:latest`).
//!
//! The grammar is the distribution reference grammar: `[domain/]path[:tag][@digest]`, where the
//! first path component is a domain only if it contains `.` or `:`, is `localhost`, or has an
//! upper-case letter; otherwise the domain is `docker.io`, and a single-component path on
//! `docker.io` lives under `library/`.

use std::fmt;

/// The registry Docker Hub images live on when a reference names none.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// The tag a reference gets when it names neither a tag nor a digest.
pub const DEFAULT_TAG: &str = "latest";

/// A parsed, normalised image reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageRef {
    /// Registry host (and port), e.g. `docker.io`, `registry.k8s.io`, `localhost:5000`.
    pub domain: String,
    /// Repository path inside the registry, e.g. `library/nginx`, `google-samples/hello-app`.
    pub path: String,
    /// The tag as written, if any (`1.14.2`); see [`ImageRef::tag_or_default`].
    pub tag: Option<String>,
    /// The digest as written, if any (`sha256:…`).
    pub digest: Option<String>,
}

/// Why a string is not an image reference; the text matches the distribution library's errors,
/// which the kubelet reports as `InvalidImageName`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// Anything that does not follow the grammar.
    #[error("invalid reference format")]
    Format,
    /// The repository has upper-case letters (Docker Hub names are lower case).
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    Uppercase(String),
    /// A bare 64-hex-digit string looks like an image ID, which is not a name.
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexName(String),
}

impl ImageRef {
    /// Parse `image` the way the kubelet does (ParseNormalizedNamed), normalising the domain.
    pub fn parse(image: &str) -> Result<ImageRef, ReferenceError> {
        if image.is_empty() || image.len() > 4096 {
            return Err(ReferenceError::Format);
        }
        let (rest, digest) = match image.split_once('@') {
            Some((name, digest)) => {
                validate_digest(digest)?;
                (name, Some(digest.to_string()))
            }
            None => (image, None),
        };
        // A tag is a ':' after the last '/', so `localhost:5000/app` has no tag.
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => {
                let tag = &rest[last_slash + i + 1..];
                validate_tag(tag)?;
                (&rest[..last_slash + i], Some(tag.to_string()))
            }
            None => (rest, None),
        };
        let (domain, path) = split_domain(name);
        if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
            return Err(ReferenceError::HexName(name.to_string()));
        }
        validate_domain(&domain)?;
        if path.len() > 255 {
            return Err(ReferenceError::Format);
        }
        if path.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ReferenceError::Uppercase(path));
        }
        for component in path.split('/') {
            validate_component(component)?;
        }
        Ok(ImageRef {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// `domain/path`, e.g. `docker.io/library/nginx`.
    pub fn repository(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }

    /// The short name people write: `nginx`, `traefik/whoami`, `registry.k8s.io/echoserver`.
    pub fn familiar_repository(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            self.path.strip_prefix("library/").unwrap_or(&self.path).to_string()
        } else {
            self.repository()
        }
    }

    /// The tag, or `latest` when the reference names neither tag nor digest (the kubelet's
    /// default). With a digest and no tag there is no tag.
    pub fn tag_or_default(&self) -> Option<&str> {
        match (&self.tag, &self.digest) {
            (Some(tag), _) => Some(tag),
            (None, None) => Some(DEFAULT_TAG),
            (None, Some(_)) => None,
        }
    }

    /// The last path component (`nginx`, `hello-app`).
    pub fn name(&self) -> &str {
        self.path.rsplit('/').next().unwrap_or(&self.path)
    }

    /// The fully qualified reference with the default tag applied:
    /// `docker.io/library/nginx:latest`, `docker.io/library/nginx@sha256:…`.
    pub fn normalized(&self) -> String {
        self.with_repository(&self.repository())
    }

    /// The familiar reference with the default tag applied: `nginx:latest`.
    pub fn familiar(&self) -> String {
        self.with_repository(&self.familiar_repository())
    }

    fn with_repository(&self, repository: &str) -> String {
        let mut s = repository.to_string();
        if let Some(tag) = self.tag_or_default() {
            s.push(':');
            s.push_str(tag);
        }
        if let Some(digest) = &self.digest {
            s.push('@');
            s.push_str(digest);
        }
        s
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.normalized())
    }
}

fn split_domain(name: &str) -> (String, String) {
    let (domain, path) = match name.split_once('/') {
        Some((first, rest))
            if first.contains(['.', ':']) || first == "localhost" || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            (first.to_string(), rest.to_string())
        }
        _ => (DEFAULT_DOMAIN.to_string(), name.to_string()),
    };
    let domain = if domain == "index.docker.io" {
        DEFAULT_DOMAIN.to_string()
    } else {
        domain
    };
    let path = if domain == DEFAULT_DOMAIN && !path.contains('/') {
        format!("library/{path}")
    } else {
        path
    };
    (domain, path)
}

fn validate_component(component: &str) -> Result<(), ReferenceError> {
    // [a-z0-9]+ ((\.|_|__|-+) [a-z0-9]+)*
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return Err(ReferenceError::Format);
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let sep = &component[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|b| b == b'-');
        if !ok {
            return Err(ReferenceError::Format);
        }
    }
    Ok(())
}

fn validate_domain(domain: &str) -> Result<(), ReferenceError> {
    let (host, port) = match domain.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || domain.starts_with('[') => (host, Some(port)),
        _ => (domain, None),
    };
    if let Some(port) = port {
        if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ReferenceError::Format);
        }
    }
    if host.starts_with('[') && host.ends_with(']') {
        return Ok(());
    }
    let ok = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if ok {
        Ok(())
    } else {
        Err(ReferenceError::Format)
    }
}

fn validate_tag(tag: &str) -> Result<(), ReferenceError> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let bytes = tag.as_bytes();
    let ok = !bytes.is_empty()
        && bytes.len() <= 128
        && word(bytes[0])
        && bytes.iter().all(|&b| word(b) || b == b'.' || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(ReferenceError::Format)
    }
}

fn validate_digest(digest: &str) -> Result<(), ReferenceError> {
    let (algorithm, hex) = digest.split_once(':').ok_or(ReferenceError::Format)?;
    let algorithm_ok = !algorithm.is_empty()
        && algorithm
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b));
    let hex_ok = hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase());
    let length_ok = algorithm != "sha256" || hex.len() == 64;
    if algorithm_ok && hex_ok && length_ok {
        Ok(())
    } else {
        Err(ReferenceError::Format)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31";

    fn parsed(image: &str) -> ImageRef {
        ImageRef::parse(image).unwrap_or_else(|e| panic!("{image}: {e}"))
    }

    #[test]
    fn a_bare_name_is_a_docker_hub_library_image_with_the_latest_tag() {
        let r = parsed("nginx");
        assert_eq!(r.repository(), "docker.io/library/nginx");
        assert_eq!(r.normalized(), "docker.io/library/nginx:latest");
        assert_eq!(r.familiar(), "nginx:latest");
        assert_eq!(r.tag, None);
    }

    #[test]
    fn fully_qualified_and_short_spellings_normalise_alike() {
        for image in [
            "docker.io/library/nginx:1.14.2",
            "index.docker.io/library/nginx:1.14.2",
            "nginx:1.14.2",
        ] {
            let r = parsed(image);
            assert_eq!(r.normalized(), "docker.io/library/nginx:1.14.2", "{image}");
            assert_eq!(r.familiar_repository(), "nginx");
        }
    }

    #[test]
    fn a_digest_reference_has_no_default_tag() {
        let r = parsed(&format!("nginx@{DIGEST}"));
        assert_eq!(r.tag_or_default(), None);
        assert_eq!(r.normalized(), format!("docker.io/library/nginx@{DIGEST}"));
        let both = parsed(&format!("nginx:1.25@{DIGEST}"));
        assert_eq!(both.normalized(), format!("docker.io/library/nginx:1.25@{DIGEST}"));
    }

    #[test]
    fn registry_hosts_are_recognised_by_dots_ports_and_localhost() {
        let cases = [
            (
                "gcr.io/google-samples/hello-app:1.0",
                "gcr.io",
                "google-samples/hello-app",
                Some("1.0"),
            ),
            (
                "us-docker.pkg.dev/google-samples/containers/gke/hello-app:2.0",
                "us-docker.pkg.dev",
                "google-samples/containers/gke/hello-app",
                Some("2.0"),
            ),
            (
                "registry.k8s.io/echoserver:1.10",
                "registry.k8s.io",
                "echoserver",
                Some("1.10"),
            ),
            ("k8s.gcr.io/echoserver:1.4", "k8s.gcr.io", "echoserver", Some("1.4")),
            ("localhost:5000/app", "localhost:5000", "app", None),
            ("localhost/app:v1", "localhost", "app", Some("v1")),
            ("traefik/whoami", "docker.io", "traefik/whoami", None),
        ];
        for (image, domain, path, tag) in cases {
            let r = parsed(image);
            assert_eq!(
                (r.domain.as_str(), r.path.as_str(), r.tag.as_deref()),
                (domain, path, tag),
                "{image}"
            );
        }
    }

    #[test]
    fn upper_case_repositories_are_rejected_as_docker_does() {
        assert_eq!(
            ImageRef::parse("Nginx").unwrap_err().to_string(),
            "invalid reference format: repository name (library/Nginx) must be lowercase"
        );
        // An upper-case first component is taken as a registry host, as in Docker.
        assert_eq!(parsed("MyRegistry/app").domain, "MyRegistry");
    }

    #[test]
    fn malformed_references_are_rejected() {
        for image in [
            "",
            "nginx:",
            ":tag",
            "nginx::1",
            "a//b",
            "-nginx",
            "nginx@sha256:abc",
            "nginx:-x",
            "a b",
        ] {
            assert_eq!(ImageRef::parse(image), Err(ReferenceError::Format), "{image:?}");
        }
        let hex = "0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31";
        assert!(matches!(ImageRef::parse(hex), Err(ReferenceError::HexName(_))));
    }
}
