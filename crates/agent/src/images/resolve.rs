//! Image → program: the catalog first, then the built-in test images, then host programs.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Container;

use super::catalog::CatalogEntry;
use super::command::{base_name, effective_argv};
use super::error::ImageError;
use super::known::{self, KnownImage, Provider, Userland, CURL_ENTRYPOINT, NGINX_ENTRYPOINT};
use super::launch::{GeneratedFile, Launch, ResolveContext, DEFAULT_PATH};
use super::nginx;
use super::reference::ImageRef;

/// The subcommand of the podway binary that runs a built-in image.
pub const BUILTIN_SUBCOMMAND: &str = "builtin-image";

/// Resolve `image` (the pod's string, as written) for `container` into the process to start.
///
/// Order: the user's catalog, the built-in test images, the images run with a host program.
/// The container's `command` replaces the image's ENTRYPOINT and its `args` the image's CMD
/// (`$(VAR)` references must already be expanded). Resolution is pure apart from checking that
/// host programs exist: generated files are returned in [`Launch::files`], to be written with
/// [`Launch::write_files`] before starting.
pub fn resolve(image: &str, container: &Container, ctx: &ResolveContext) -> Result<Launch, ImageError> {
    let reference = ImageRef::parse(image).map_err(|e| ImageError::InvalidName {
        image: image.to_string(),
        detail: e.to_string(),
    })?;
    if let Some(entry) = ctx.catalog.find(image, &reference) {
        return from_catalog(image, entry, container, ctx);
    }
    if let Some(known) = known::lookup(&reference) {
        return from_known(image, &known, container, ctx);
    }
    Err(ImageError::NotFound {
        image: image.to_string(),
        reference: reference.normalized(),
        suggestion: reference.familiar_repository(),
        catalog: ctx.catalog.path.clone(),
    })
}

fn working_dir(container: &Container, image_default: Option<&str>) -> PathBuf {
    PathBuf::from(
        container
            .working_dir
            .as_deref()
            .filter(|d| !d.is_empty())
            .or(image_default)
            .unwrap_or("/"),
    )
}

fn not_found(image: &str, command: &str) -> ImageError {
    ImageError::ExecutableNotFound {
        image: image.to_string(),
        command: command.to_string(),
    }
}

fn from_catalog(
    image: &str,
    entry: &CatalogEntry,
    container: &Container,
    ctx: &ResolveContext,
) -> Result<Launch, ImageError> {
    let argv = effective_argv(
        &entry.command,
        &entry.args,
        container.command.as_deref(),
        container.args.as_deref(),
    );
    let program = ctx.host.which(&argv[0]).ok_or_else(|| not_found(image, &argv[0]))?;
    let mut env: Vec<(String, String)> = entry.env.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    if !entry.env.contains_key("PATH") {
        env.insert(0, ("PATH".to_string(), DEFAULT_PATH.to_string()));
    }
    Ok(Launch {
        program,
        args: argv[1..].to_vec(),
        env,
        working_dir: working_dir(container, entry.working_dir.as_deref()),
        files: Vec::new(),
    })
}

fn from_known(
    image: &str,
    known: &KnownImage,
    container: &Container,
    ctx: &ResolveContext,
) -> Result<Launch, ImageError> {
    let host = &ctx.host;
    let required = match known.provider {
        Provider::Builtin(_) => None,
        Provider::Nginx => Some((&host.nginx, "nginx")),
        Provider::Busybox => Some((&host.busybox, "busybox")),
        Provider::Curl => Some((&host.curl, "curl")),
        Provider::Python => Some((&host.python3, "python3")),
    };
    if let Some((program, package)) = required {
        if !program.is_file() {
            return Err(ImageError::HostProgramMissing {
                image: image.to_string(),
                program: program.clone(),
                package,
                catalog: ctx.catalog.path.clone(),
            });
        }
    }

    let owned = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    let mut argv = effective_argv(
        &owned(known.entrypoint),
        &owned(known.cmd),
        container.command.as_deref(),
        container.args.as_deref(),
    );
    // The images' entrypoint scripts, done here: nginx's runs its arguments; curl's puts `curl`
    // in front of arguments that are not a command (`-sS http://…`, `http://…`).
    if argv.first().is_some_and(|a| a == NGINX_ENTRYPOINT) && known.entrypoint == [NGINX_ENTRYPOINT] {
        argv.remove(0);
    }
    if argv.first().is_some_and(|a| a == CURL_ENTRYPOINT) && known.provider == Provider::Curl {
        argv.remove(0);
        let is_command = |c: &str| c == "curl" || is_applet(ctx, c) || host.which(c).is_some();
        if argv
            .first()
            .is_none_or(|first| first.starts_with('-') || !is_command(first))
        {
            argv.insert(0, "curl".to_string());
        }
    }
    let Some(first) = argv.first().cloned() else {
        return Err(not_found(image, ""));
    };

    let files = userland_files(known, container, ctx);
    let mut env: Vec<(String, String)> = vec![(
        "PATH".to_string(),
        userland_path(known.userland, &ctx.work_dir, &ctx.applets_dir),
    )];
    env.extend(known.env.iter().map(|(k, v)| (k.to_string(), v.clone())));
    let name = base_name(&first);
    let (program, args) = if known::is_own_program(known, name) {
        own_program(known, &argv[1..], ctx)
    } else {
        match known.userland {
            Userland::None => return Err(not_found(image, &first)),
            Userland::Busybox => busybox_command(&argv, ctx).ok_or_else(|| not_found(image, &first))?,
            Userland::Debian => match host.which(&first) {
                Some(program) => (program, argv[1..].to_vec()),
                None => busybox_command(&argv, ctx).ok_or_else(|| not_found(image, &first))?,
            },
        }
    };
    Ok(Launch {
        program,
        args,
        env,
        working_dir: working_dir(container, None),
        files,
    })
}

fn is_applet(ctx: &ResolveContext, command: &str) -> bool {
    ctx.host.busybox_applets.iter().any(|a| a == base_name(command))
}

/// A command from busybox: `busybox` itself or one of its applets.
fn busybox_command(argv: &[String], ctx: &ResolveContext) -> Option<(PathBuf, Vec<String>)> {
    let name = base_name(&argv[0]);
    if name == "busybox" {
        return Some((ctx.host.busybox.clone(), argv[1..].to_vec()));
    }
    is_applet(ctx, name).then(|| {
        let args = std::iter::once(name.to_string())
            .chain(argv[1..].iter().cloned())
            .collect();
        (ctx.host.busybox.clone(), args)
    })
}

/// The image's own program with the container's arguments (argv\[1..\]).
fn own_program(known: &KnownImage, rest: &[String], ctx: &ResolveContext) -> (PathBuf, Vec<String>) {
    let host = &ctx.host;
    match known.provider {
        Provider::Builtin(name) => {
            let args = [BUILTIN_SUBCOMMAND, name]
                .into_iter()
                .map(str::to_string)
                .chain(rest.iter().cloned())
                .collect();
            (ctx.podway_exe.clone(), args)
        }
        Provider::Nginx => (host.nginx.clone(), nginx::args(rest, &nginx_conf(&ctx.work_dir))),
        Provider::Busybox => (host.busybox.clone(), rest.to_vec()),
        Provider::Curl => (host.curl.clone(), rest.to_vec()),
        Provider::Python => (host.python3.clone(), rest.to_vec()),
    }
}

fn nginx_conf(work_dir: &Path) -> PathBuf {
    work_dir.join("nginx.conf")
}

/// The image's PATH: `<work>/bin` (the image's own programs, for scripts) first, then busybox's
/// applets before the host's programs on Alpine-like images, after them on Debian-like ones.
fn userland_path(userland: Userland, work_dir: &Path, applets: &Path) -> String {
    let bin = work_dir.join("bin");
    match userland {
        Userland::None => DEFAULT_PATH.to_string(),
        Userland::Busybox => format!("{}:{}:{DEFAULT_PATH}", bin.display(), applets.display()),
        Userland::Debian => format!("{}:{DEFAULT_PATH}:{}", bin.display(), applets.display()),
    }
}

/// nginx.conf for the nginx image; for images with a shell, a script per own program in
/// `<work>/bin` (so `sh -c '… nginx -g "daemon off;"'` runs what the image would) and a link per
/// busybox applet in the node's shared applets directory.
fn userland_files(known: &KnownImage, container: &Container, ctx: &ResolveContext) -> Vec<GeneratedFile> {
    let mut files = Vec::new();
    if known.provider == Provider::Nginx {
        let config = nginx::NginxConfig {
            ports: nginx::listen_ports(container),
            ipv6: ctx.host.ipv6,
            as_root: ctx.host.as_root,
            work_dir: &ctx.work_dir,
            html_root: &ctx.host.nginx_html_root,
            mime_types: &ctx.host.nginx_mime_types,
        };
        files.push(GeneratedFile::File {
            path: nginx_conf(&ctx.work_dir),
            contents: nginx::render(&config),
            mode: 0o644,
        });
    }
    if known.userland == Userland::None {
        return files;
    }
    for name in known.programs.iter().filter(|&&n| n != "busybox") {
        let (program, args) = own_program(known, &[], ctx);
        let words: Vec<String> = std::iter::once(program.to_string_lossy().to_string())
            .chain(args)
            .collect();
        let quoted: Vec<String> = words.iter().map(|w| shell_quote(w)).collect();
        files.push(GeneratedFile::File {
            path: ctx.work_dir.join("bin").join(name),
            contents: format!("#!/bin/sh\nexec {} \"$@\"\n", quoted.join(" ")),
            mode: 0o755,
        });
    }
    for applet in &ctx.host.busybox_applets {
        files.push(GeneratedFile::Symlink {
            path: ctx.applets_dir.join(applet),
            target: ctx.host.busybox.clone(),
        });
    }
    files
}

fn shell_quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

#[cfg(test)]
#[path = "resolve_tests.rs"]
mod tests;
