//! API lifecycle: when a version was deprecated and removed upstream, and what replaces it.
//!
//! kube-apiserver generates these facts from `+k8s:prerelease-lifecycle-gen` markers on each
//! type and answers every request to a deprecated version with a `Warning: 299 - "..."` header
//! (`staging/src/k8s.io/apiserver/pkg/endpoints/deprecation`); kubectl prints it as
//! `Warning: <text>` on stderr.

/// A Kubernetes release, `major.minor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Release {
    /// Major version (1).
    pub major: u32,
    /// Minor version.
    pub minor: u32,
}

impl Release {
    /// `1.<minor>`.
    pub const fn v1(minor: u32) -> Release {
        Release { major: 1, minor }
    }
}

/// The lifecycle markers of one group-version-kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifecycle {
    /// `group/version` (or `v1` for core) of the deprecated kind.
    pub api_version: &'static str,
    /// Its kind.
    pub kind: &'static str,
    /// `+k8s:prerelease-lifecycle-gen:deprecated`.
    pub deprecated: Release,
    /// `+k8s:prerelease-lifecycle-gen:removed`, if announced.
    pub removed: Option<Release>,
    /// `+k8s:prerelease-lifecycle-gen:replacement`: `group/version` and kind.
    pub replacement: Option<(&'static str, &'static str)>,
}

impl Lifecycle {
    /// The warning text, worded as upstream's `deprecation.WarningMessage`:
    /// `networking.k8s.io/v1beta1 Ingress is deprecated in v1.19+, unavailable in v1.22+; use networking.k8s.io/v1 Ingress`.
    pub fn warning(&self) -> String {
        let mut w = format!(
            "{} {} is deprecated in v{}.{}+",
            self.api_version, self.kind, self.deprecated.major, self.deprecated.minor
        );
        if let Some(r) = self.removed {
            w.push_str(&format!(", unavailable in v{}.{}+", r.major, r.minor));
        }
        if let Some((api_version, kind)) = self.replacement {
            w.push_str(&format!("; use {api_version} {kind}"));
        }
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warning_names_deprecation_removal_and_replacement_as_kube_apiserver_does() {
        let l = Lifecycle {
            api_version: "networking.k8s.io/v1beta1",
            kind: "Ingress",
            deprecated: Release::v1(19),
            removed: Some(Release::v1(22)),
            replacement: Some(("networking.k8s.io/v1", "Ingress")),
        };
        assert_eq!(
            l.warning(),
            "networking.k8s.io/v1beta1 Ingress is deprecated in v1.19+, unavailable in v1.22+; use networking.k8s.io/v1 Ingress"
        );
    }

    #[test]
    fn warning_without_removal_or_replacement_says_only_deprecated() {
        let l = Lifecycle {
            api_version: "batch/v1beta1",
            kind: "CronJob",
            deprecated: Release::v1(21),
            removed: None,
            replacement: None,
        };
        assert_eq!(l.warning(), "batch/v1beta1 CronJob is deprecated in v1.21+");
    }
}
