//! The images podway knows without a catalog: built-in test images and images it runs with a
//! host program. Each carries the real image's ENTRYPOINT, CMD and ENV, so a pod's `command`
//! and `args` mean what they mean with the real image.

use super::reference::ImageRef;

/// What actually runs for a known image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Provider {
    /// A test server built into podway: `podway builtin-image <name>`.
    Builtin(&'static str),
    /// The host's nginx with a generated configuration.
    Nginx,
    /// The host's busybox.
    Busybox,
    /// The host's curl.
    Curl,
    /// The host's python3.
    Python,
}

/// What else is in the image besides its program: decides where other commands (a shell,
/// `wget`, `sleep`) come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Userland {
    /// Distroless or scratch: nothing but the program (`sh` fails, as it does for real).
    None,
    /// Alpine or busybox: the commands are busybox applets.
    Busybox,
    /// Debian: the host's programs (the host is Debian too), busybox applets for anything missing.
    Debian,
}

/// A known image: its provider and the parts of its image config that matter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KnownImage {
    pub provider: Provider,
    /// The image's ENTRYPOINT.
    pub entrypoint: &'static [&'static str],
    /// The image's CMD.
    pub cmd: &'static [&'static str],
    /// The image's ENV.
    pub env: Vec<(&'static str, String)>,
    /// Base names that run the image's own program (`nginx`, `/hello-app`).
    pub programs: &'static [&'static str],
    /// Where other commands come from.
    pub userland: Userland,
}

/// The nginx image's entrypoint script: it runs its arguments.
pub(crate) const NGINX_ENTRYPOINT: &str = "/docker-entrypoint.sh";
/// curlimages/curl's entrypoint script: it prepends `curl` to arguments that are not a command.
pub(crate) const CURL_ENTRYPOINT: &str = "/entrypoint.sh";

const NGINX_CMD: &[&str] = &["nginx", "-g", "daemon off;"];

/// The built-in image names `podway builtin-image` accepts.
pub const BUILTIN_NAMES: &[&str] = &[
    "echo-hname",
    "echo-ip",
    "whoami",
    "http-echo",
    "echoserver",
    "echoserver-1.4",
    "echo-server",
    "hello-app-1.0.0",
    "hello-app-2.0.0",
];

/// Find the known image a reference names, if any.
pub(crate) fn lookup(r: &ImageRef) -> Option<KnownImage> {
    let domain = r.domain.as_str();
    let path = r.path.as_str();
    let tag = r.tag.as_deref();
    let docker_hub = domain == "docker.io";
    let image = |provider, entrypoint, cmd, programs, userland| KnownImage {
        provider,
        entrypoint,
        cmd,
        env: Vec::new(),
        programs,
        userland,
    };
    let known = match path {
        "sysnet4admin/echo-hname" if docker_hub => image(
            Provider::Builtin("echo-hname"),
            &[NGINX_ENTRYPOINT],
            NGINX_CMD,
            &["nginx"],
            Userland::Busybox,
        ),
        "sysnet4admin/echo-ip" if docker_hub => image(
            Provider::Builtin("echo-ip"),
            &[NGINX_ENTRYPOINT],
            NGINX_CMD,
            &["nginx"],
            Userland::Busybox,
        ),
        "traefik/whoami" | "containous/whoami" if docker_hub => image(
            Provider::Builtin("whoami"),
            &["/whoami"],
            &[],
            &["whoami"],
            Userland::None,
        ),
        "hashicorp/http-echo" if docker_hub => {
            let mut k = image(
                Provider::Builtin("http-echo"),
                &["/http-echo"],
                &[],
                &["http-echo"],
                Userland::None,
            );
            // Releases from 1.0 on set a default text; 0.2.x insist on -text.
            if !tag.is_some_and(|t| t.starts_with("0.")) {
                k.env.push(("ECHO_TEXT", "hello-world".to_string()));
            }
            k
        }
        "echoserver" | "google_containers/echoserver" | "google-containers/echoserver"
            if matches!(domain, "registry.k8s.io" | "k8s.gcr.io" | "gcr.io") =>
        {
            let name = if echoserver_is_legacy(tag) {
                "echoserver-1.4"
            } else {
                "echoserver"
            };
            image(Provider::Builtin(name), &[], NGINX_CMD, &["nginx"], Userland::Busybox)
        }
        "kicbase/echo-server" | "jmalloc/echo-server" if docker_hub => {
            let mut k = image(
                Provider::Builtin("echo-server"),
                &["/bin/echo-server"],
                &[],
                &["echo-server"],
                Userland::None,
            );
            k.env.push(("PORT", "8080".to_string()));
            k
        }
        _ if is_hello_app(domain, path) => {
            let name = match tag.map(|t| t.split('.').next().unwrap_or(t)) {
                None | Some("1") => "hello-app-1.0.0",
                Some("2") => "hello-app-2.0.0",
                // hello-app has no other versions; a pull of one would fail.
                Some(_) => return None,
            };
            let mut k = image(
                Provider::Builtin(name),
                &[],
                &["/hello-app"],
                &["hello-app"],
                Userland::None,
            );
            k.env.push(("PORT", "8080".to_string()));
            k
        }
        "library/nginx" if docker_hub => image(
            Provider::Nginx,
            &[NGINX_ENTRYPOINT],
            NGINX_CMD,
            &["nginx", "nginx-debug"],
            Userland::Debian,
        ),
        "library/busybox" if docker_hub => image(Provider::Busybox, &[], &["sh"], &["busybox"], Userland::Busybox),
        "busybox" | "google_containers/busybox" | "google-containers/busybox"
            if matches!(domain, "registry.k8s.io" | "k8s.gcr.io" | "gcr.io") =>
        {
            image(Provider::Busybox, &[], &["sh"], &["busybox"], Userland::Busybox)
        }
        "curlimages/curl" if docker_hub => image(
            Provider::Curl,
            &[CURL_ENTRYPOINT],
            &["curl"],
            &["curl"],
            Userland::Busybox,
        ),
        "library/python" if docker_hub => {
            let mut k = image(
                Provider::Python,
                &[],
                &["python3"],
                &["python", "python3"],
                Userland::Debian,
            );
            k.env.push(("LANG", "C.UTF-8".to_string()));
            k
        }
        _ => return None,
    };
    Some(known)
}

/// echoserver up to 1.4 printed `CLIENT VALUES:`…; later versions print `Hostname:`….
fn echoserver_is_legacy(tag: Option<&str>) -> bool {
    let Some((major, minor)) = tag.and_then(|t| t.split_once('.')) else {
        return false;
    };
    matches!((major.parse::<u32>(), minor.parse::<u32>()), (Ok(1), Ok(m)) if m <= 4)
}

/// Google's hello-app in all its registry spellings.
fn is_hello_app(domain: &str, path: &str) -> bool {
    let gcr = matches!(domain, "gcr.io" | "us.gcr.io" | "eu.gcr.io" | "asia.gcr.io");
    (gcr && path == "google-samples/hello-app")
        || (domain.ends_with("-docker.pkg.dev") && path == "google-samples/containers/gke/hello-app")
}

/// Is `name` (a base name) one of the image's own programs? `python3.12` counts as `python3`.
pub(crate) fn is_own_program(known: &KnownImage, name: &str) -> bool {
    known.programs.contains(&name)
        || (known.provider == Provider::Python
            && name
                .strip_prefix("python3.")
                .is_some_and(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider(image: &str) -> Option<Provider> {
        lookup(&ImageRef::parse(image).unwrap()).map(|k| k.provider)
    }

    #[test]
    fn every_hello_app_spelling_is_the_builtin_of_its_version() {
        for image in [
            "gcr.io/google-samples/hello-app:1.0",
            "us.gcr.io/google-samples/hello-app:1.0",
            "us-docker.pkg.dev/google-samples/containers/gke/hello-app:1.0",
            "europe-docker.pkg.dev/google-samples/containers/gke/hello-app:1.0",
        ] {
            assert_eq!(provider(image), Some(Provider::Builtin("hello-app-1.0.0")), "{image}");
        }
        assert_eq!(
            provider("us-docker.pkg.dev/google-samples/containers/gke/hello-app:2.0"),
            Some(Provider::Builtin("hello-app-2.0.0"))
        );
        assert_eq!(
            provider("gcr.io/google-samples/hello-app:2.0"),
            Some(Provider::Builtin("hello-app-2.0.0"))
        );
        assert_eq!(provider("gcr.io/google-samples/hello-app:9.9"), None);
        assert_eq!(provider("gcr.io/other/hello-app:1.0"), None);
    }

    #[test]
    fn echoserver_versions_pick_their_output_format() {
        assert_eq!(
            provider("registry.k8s.io/echoserver:1.10"),
            Some(Provider::Builtin("echoserver"))
        );
        assert_eq!(
            provider("k8s.gcr.io/echoserver:1.4"),
            Some(Provider::Builtin("echoserver-1.4"))
        );
        assert_eq!(
            provider("gcr.io/google_containers/echoserver:1.4"),
            Some(Provider::Builtin("echoserver-1.4"))
        );
        assert_eq!(provider("docker.io/library/echoserver:1.10"), None);
    }

    #[test]
    fn docker_hub_test_images_are_builtins() {
        for (image, name) in [
            ("sysnet4admin/echo-hname", "echo-hname"),
            ("docker.io/sysnet4admin/echo-ip:latest", "echo-ip"),
            ("traefik/whoami:v1.10", "whoami"),
            ("hashicorp/http-echo:0.2.3", "http-echo"),
            ("kicbase/echo-server:1.0", "echo-server"),
        ] {
            assert_eq!(provider(image), Some(Provider::Builtin(name)), "{image}");
            assert!(BUILTIN_NAMES.contains(&name));
        }
    }

    #[test]
    fn host_program_images_are_recognised_with_any_tag() {
        assert_eq!(provider("nginx:1.14.2"), Some(Provider::Nginx));
        assert_eq!(
            provider("docker.io/library/nginx@sha256:0d17b565c37bcbd895e9d92315a05c1c3c9a29f762b011a10c54a66cd53c9b31"),
            Some(Provider::Nginx)
        );
        assert_eq!(provider("busybox:1.28"), Some(Provider::Busybox));
        assert_eq!(provider("registry.k8s.io/busybox"), Some(Provider::Busybox));
        assert_eq!(provider("curlimages/curl:8.5.0"), Some(Provider::Curl));
        assert_eq!(provider("python:3.12-slim"), Some(Provider::Python));
        assert_eq!(provider("myorg/nginx"), None);
    }

    #[test]
    fn http_echo_has_a_default_text_only_from_1_0() {
        let env = |image: &str| lookup(&ImageRef::parse(image).unwrap()).unwrap().env;
        assert!(env("hashicorp/http-echo:0.2.3").is_empty());
        assert_eq!(
            env("hashicorp/http-echo"),
            vec![("ECHO_TEXT", "hello-world".to_string())]
        );
    }
}
