//! Resolution: every image spelling, command/args semantics, catalog precedence, errors.

use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::{Container, ContainerPort};

use super::*;
use crate::images::catalog::{parse_catalog, Catalog};
use crate::images::launch::HostPrograms;

struct Fixture {
    _dir: tempfile::TempDir,
    ctx: ResolveContext,
}

/// Fake host programs (empty files) in a temp dir, and a work dir beside them.
fn fixture(catalog: &str) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let bin = root.join("usr/bin");
    std::fs::create_dir_all(&bin).unwrap();
    for program in ["nginx", "busybox", "curl", "python3", "ls", "my-app"] {
        std::fs::write(bin.join(program), "").unwrap();
    }
    let host = HostPrograms {
        nginx: bin.join("nginx"),
        busybox: bin.join("busybox"),
        busybox_applets: ["sh", "wget", "sleep", "echo", "true", "nslookup"]
            .map(String::from)
            .to_vec(),
        curl: bin.join("curl"),
        python3: bin.join("python3"),
        path: vec![bin.clone()],
        ..HostPrograms::debian()
    };
    let ctx = ResolveContext {
        catalog: parse_catalog(&root.join("images.yaml"), catalog).unwrap(),
        podway_exe: "/usr/local/bin/podway".into(),
        work_dir: root.join("work"),
        host,
        applets_dir: root.join("applets"),
    };
    Fixture { _dir: dir, ctx }
}

fn container(command: Option<&[&str]>, args: Option<&[&str]>) -> Container {
    let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    Container {
        command: command.map(owned),
        args: args.map(owned),
        ..Default::default()
    }
}

fn launch(f: &Fixture, image: &str, command: Option<&[&str]>, args: Option<&[&str]>) -> Launch {
    resolve(image, &container(command, args), &f.ctx).unwrap_or_else(|e| panic!("{image}: {e}"))
}

/// program then arguments, with the fixture's directory shown as `$ROOT`.
fn argv(f: &Fixture, l: &Launch) -> Vec<String> {
    let root = f._dir.path().to_string_lossy().to_string();
    l.argv().into_iter().map(|a| a.replace(&root, "$ROOT")).collect()
}

fn env<'a>(l: &'a Launch, key: &str) -> Option<&'a str> {
    l.env.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

#[test]
fn builtin_images_run_podway_with_the_containers_arguments() {
    let f = fixture("");
    type Case<'a> = (&'a str, Option<&'a [&'a str]>, &'a [&'a str]);
    let cases: &[Case] = &[
        (
            "gcr.io/google-samples/hello-app:1.0",
            None,
            &["builtin-image", "hello-app-1.0.0"],
        ),
        (
            "us-docker.pkg.dev/google-samples/containers/gke/hello-app:2.0",
            None,
            &["builtin-image", "hello-app-2.0.0"],
        ),
        (
            "sysnet4admin/echo-hname",
            None,
            &["builtin-image", "echo-hname", "-g", "daemon off;"],
        ),
        (
            "sysnet4admin/echo-ip",
            None,
            &["builtin-image", "echo-ip", "-g", "daemon off;"],
        ),
        ("traefik/whoami", None, &["builtin-image", "whoami"]),
        (
            "traefik/whoami:v1.10",
            Some(&["--port", "2001"]),
            &["builtin-image", "whoami", "--port", "2001"],
        ),
        (
            "hashicorp/http-echo",
            Some(&["-text=foo"]),
            &["builtin-image", "http-echo", "-text=foo"],
        ),
        (
            "registry.k8s.io/echoserver:1.10",
            None,
            &["builtin-image", "echoserver", "-g", "daemon off;"],
        ),
        (
            "k8s.gcr.io/echoserver:1.4",
            None,
            &["builtin-image", "echoserver-1.4", "-g", "daemon off;"],
        ),
        ("kicbase/echo-server:1.0", None, &["builtin-image", "echo-server"]),
    ];
    for (image, args, expected) in cases {
        let l = launch(&f, image, None, *args);
        assert_eq!(l.program, PathBuf::from("/usr/local/bin/podway"), "{image}");
        assert_eq!(
            l.args,
            expected.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            "{image}"
        );
    }
    assert_eq!(
        env(&launch(&f, "kicbase/echo-server:1.0", None, None), "PORT"),
        Some("8080")
    );
    assert_eq!(
        env(&launch(&f, "gcr.io/google-samples/hello-app:1.0", None, None), "PORT"),
        Some("8080")
    );
}

#[test]
fn a_command_naming_the_images_program_runs_it_and_others_fail_on_distroless_images() {
    let f = fixture("");
    let l = launch(&f, "gcr.io/google-samples/hello-app:1.0", Some(&["/hello-app"]), None);
    assert_eq!(l.args, ["builtin-image", "hello-app-1.0.0"]);
    let err = resolve(
        "gcr.io/google-samples/hello-app:1.0",
        &container(Some(&["sh"]), None),
        &f.ctx,
    )
    .unwrap_err();
    assert_eq!(err.reason(), "RunContainerError");
    assert_eq!(
        err.status_message(),
        "failed to start container process: exec: \"sh\": executable file not found in $PATH"
    );
}

#[test]
fn busybox_commands_are_applets_with_sh_by_default() {
    let f = fixture("");
    let bb = "$ROOT/usr/bin/busybox";
    assert_eq!(argv(&f, &launch(&f, "busybox", None, None)), [bb, "sh"]);
    assert_eq!(
        argv(&f, &launch(&f, "busybox:1.28", Some(&["sleep", "3600"]), None)),
        [bb, "sleep", "3600"]
    );
    assert_eq!(
        argv(&f, &launch(&f, "busybox", Some(&["/bin/sh", "-c"]), Some(&["echo hi"]))),
        [bb, "sh", "-c", "echo hi"]
    );
    assert_eq!(
        argv(&f, &launch(&f, "busybox", None, Some(&["wget", "-qO-", "http://svc"]))),
        [bb, "wget", "-qO-", "http://svc"]
    );
    assert_eq!(
        argv(&f, &launch(&f, "busybox", Some(&["busybox", "nslookup", "svc"]), None)),
        [bb, "nslookup", "svc"]
    );
    let err = resolve("busybox", &container(Some(&["bash"]), None), &f.ctx).unwrap_err();
    assert_eq!(err.reason(), "RunContainerError");
    // Scripts find the applets: the PATH starts with the image's programs, then the applets.
    let l = launch(&f, "busybox", None, None);
    let work = f.ctx.work_dir.display().to_string();
    let applets = f.ctx.applets_dir.display().to_string();
    assert!(
        env(&l, "PATH").unwrap().starts_with(&format!("{work}/bin:{applets}:")),
        "{:?}",
        l.env
    );
    assert!(l.files.contains(&GeneratedFile::Symlink {
        path: f.ctx.applets_dir.join("wget"),
        target: f.ctx.host.busybox.clone()
    }));
}

#[test]
fn curl_arguments_get_curl_in_front_as_the_images_entrypoint_does() {
    let f = fixture("");
    let curl = "$ROOT/usr/bin/curl";
    assert_eq!(argv(&f, &launch(&f, "curlimages/curl", None, None)), [curl]);
    assert_eq!(
        argv(&f, &launch(&f, "curlimages/curl", None, Some(&["-sS", "http://svc"]))),
        [curl, "-sS", "http://svc"]
    );
    assert_eq!(
        argv(&f, &launch(&f, "curlimages/curl", None, Some(&["http://svc"]))),
        [curl, "http://svc"]
    );
    assert_eq!(
        argv(
            &f,
            &launch(&f, "curlimages/curl:8.5.0", None, Some(&["curl", "-I", "x"]))
        ),
        [curl, "-I", "x"]
    );
    let bb = "$ROOT/usr/bin/busybox";
    assert_eq!(
        argv(&f, &launch(&f, "curlimages/curl", None, Some(&["sh", "-c", "sleep 1"]))),
        [bb, "sh", "-c", "sleep 1"]
    );
    assert_eq!(
        argv(&f, &launch(&f, "curlimages/curl", Some(&["sleep", "infinity"]), None)),
        [bb, "sleep", "infinity"]
    );
}

#[test]
fn python_runs_the_hosts_python3_under_any_of_its_names() {
    let f = fixture("");
    let py = "$ROOT/usr/bin/python3";
    assert_eq!(argv(&f, &launch(&f, "python:3.12", None, None)), [py]);
    assert_eq!(
        argv(
            &f,
            &launch(&f, "python", Some(&["python", "-m", "http.server", "8000"]), None)
        ),
        [py, "-m", "http.server", "8000"]
    );
    assert_eq!(
        argv(
            &f,
            &launch(&f, "python", Some(&["/usr/local/bin/python3.12", "-V"]), None)
        ),
        [py, "-V"]
    );
    // Debian-based: other commands are the host's, busybox's when the host lacks them.
    assert_eq!(
        argv(&f, &launch(&f, "python", Some(&["ls", "/"]), None)),
        ["$ROOT/usr/bin/ls", "/"]
    );
    assert_eq!(
        argv(&f, &launch(&f, "python", Some(&["sh", "-c", "x"]), None)),
        ["$ROOT/usr/bin/busybox", "sh", "-c", "x"]
    );
}

#[test]
fn nginx_runs_the_hosts_nginx_with_a_config_for_the_containers_ports() {
    let f = fixture("");
    let nginx = "$ROOT/usr/bin/nginx";
    let conf = "$ROOT/work/nginx.conf";
    let expected = [nginx, "-c", conf, "-e", "stderr", "-g", "daemon off;"];
    for image in ["nginx", "nginx:1.14.2", "docker.io/library/nginx:1.14.2"] {
        assert_eq!(argv(&f, &launch(&f, image, None, None)), expected, "{image}");
    }
    assert_eq!(
        argv(&f, &launch(&f, "nginx", Some(&["nginx", "-g", "daemon off;"]), None)),
        expected
    );
    assert_eq!(
        argv(
            &f,
            &launch(&f, "nginx", Some(&["nginx-debug"]), Some(&["-g", "daemon off;"]))
        ),
        expected
    );

    let mut c = container(None, None);
    c.ports = Some(vec![ContainerPort {
        container_port: 8080,
        ..Default::default()
    }]);
    let l = resolve("nginx", &c, &f.ctx).unwrap();
    let GeneratedFile::File { path, contents, .. } = &l.files[0] else {
        panic!("{:?}", l.files)
    };
    assert_eq!(path, &f.ctx.work_dir.join("nginx.conf"));
    assert!(
        contents.contains("listen 8080;") && !contents.contains("listen 80;"),
        "{contents}"
    );

    // `sh -c '… nginx …'` scripts find a wrapper that runs the same nginx.
    let wrapper = l.files.iter().find_map(|file| match file {
        GeneratedFile::File { path, contents, mode } if path.ends_with("bin/nginx") => Some((contents, *mode)),
        _ => None,
    });
    let (script, mode) = wrapper.expect("bin/nginx wrapper");
    assert_eq!(mode, 0o755);
    assert!(script.starts_with("#!/bin/sh\nexec '") && script.contains("'-c' '") && script.ends_with(" \"$@\"\n"));
    let sh = launch(&f, "nginx", Some(&["sh", "-c", "nginx -g 'daemon off;'"]), None);
    assert_eq!(argv(&f, &sh)[..2], ["$ROOT/usr/bin/busybox", "sh"]);
}

#[test]
fn the_catalog_comes_first_and_its_command_and_args_follow_kubernetes_semantics() {
    let catalog = "images:\n- image: nginx\n  command: [my-app, --serve]\n  args: [--port, '80']\n  env: {MODE: web}\n\
                   - image: 'myorg/*'\n  command: [/opt/missing]\n";
    let f = fixture(catalog);
    let app = "$ROOT/usr/bin/my-app";
    assert_eq!(
        argv(&f, &launch(&f, "nginx:1.25", None, None)),
        [app, "--serve", "--port", "80"]
    );
    assert_eq!(
        argv(&f, &launch(&f, "nginx", None, Some(&["--port", "9"]))),
        [app, "--serve", "--port", "9"]
    );
    assert_eq!(
        argv(&f, &launch(&f, "nginx", Some(&["ls"]), None)),
        ["$ROOT/usr/bin/ls"]
    );
    let l = launch(&f, "nginx", None, None);
    assert_eq!(env(&l, "MODE"), Some("web"));
    assert_eq!(env(&l, "PATH"), Some(DEFAULT_PATH));
    assert!(l.files.is_empty(), "catalog entries get no generated files");
    let err = resolve("myorg/api", &container(None, None), &f.ctx).unwrap_err();
    assert_eq!(
        err,
        ImageError::ExecutableNotFound {
            image: "myorg/api".into(),
            command: "/opt/missing".into()
        }
    );
}

#[test]
fn an_unknown_image_fails_to_pull_with_how_to_map_it_in_the_catalog() {
    let f = fixture("");
    let err = resolve("myorg/app:1.0", &container(None, None), &f.ctx).unwrap_err();
    assert_eq!(err.reason(), "ErrImagePull");
    assert!(err.is_pull_error());
    let catalog = f.ctx.catalog.path.display().to_string();
    let text = err.to_string();
    assert!(
        text.starts_with("Failed to pull image \"myorg/app:1.0\": podway cannot pull \"docker.io/myorg/app:1.0\""),
        "{text}"
    );
    assert!(
        text.contains(&format!("map it to a host program in {catalog}")),
        "{text}"
    );
    assert!(
        text.contains("images: [{image: myorg/app, command: [/path/to/program]}]"),
        "{text}"
    );
    assert_eq!(err.backoff_message(), "Back-off pulling image \"myorg/app:1.0\"");
    // The suggested entry is valid catalog YAML that would match.
    let suggestion = "images: [{image: myorg/app, command: [/path/to/program]}]";
    let c = parse_catalog(Path::new("x"), suggestion).unwrap();
    assert!(c
        .find("myorg/app:1.0", &ImageRef::parse("myorg/app:1.0").unwrap())
        .is_some());
}

#[test]
fn invalid_names_and_missing_host_programs_say_what_is_wrong() {
    let mut f = fixture("");
    let err = resolve("Nginx", &container(None, None), &f.ctx).unwrap_err();
    assert_eq!(err.reason(), "InvalidImageName");
    assert_eq!(
        err.status_message(),
        "Failed to apply default image tag \"Nginx\": couldn't parse image name \"Nginx\": invalid reference \
         format: repository name (library/Nginx) must be lowercase"
    );
    f.ctx.host.nginx = "/nonexistent/nginx".into();
    let err = resolve("nginx", &container(None, None), &f.ctx).unwrap_err();
    assert_eq!(err.reason(), "ErrImagePull");
    assert!(err.status_message().contains("apt-get install nginx"), "{err}");
}

#[test]
fn the_working_dir_is_the_containers_else_the_root() {
    let f = fixture("");
    let mut c = container(None, None);
    assert_eq!(resolve("busybox", &c, &f.ctx).unwrap().working_dir, PathBuf::from("/"));
    c.working_dir = Some("/tmp".into());
    assert_eq!(
        resolve("busybox", &c, &f.ctx).unwrap().working_dir,
        PathBuf::from("/tmp")
    );
}

#[test]
fn generated_nginx_config_passes_nginx_t_when_nginx_is_installed() {
    let nginx = Path::new("/usr/sbin/nginx");
    let dir = tempfile::tempdir().unwrap();
    let ctx = ResolveContext {
        catalog: Catalog::empty(dir.path().join("images.yaml")),
        podway_exe: "/usr/local/bin/podway".into(),
        work_dir: dir.path().join("work"),
        applets_dir: dir.path().join("applets"),
        host: HostPrograms {
            ipv6: Path::new("/proc/net/if_inet6").exists(),
            ..HostPrograms::debian()
        },
    };
    let Ok(l) = resolve("nginx", &container(None, None), &ctx) else {
        eprintln!("nginx is not installed: the generated configuration is not checked with nginx -t");
        return;
    };
    assert!(nginx.is_file());
    l.write_files().unwrap();
    let mut args = l.args.clone();
    args.retain(|a| a != "-g" && a != "daemon off;");
    let out = std::process::Command::new(&l.program)
        .args(&args)
        .arg("-t")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
