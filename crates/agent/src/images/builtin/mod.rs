//! The built-in test images: small HTTP servers that answer like the images tutorials use, run
//! as `podway builtin-image <name> [args…]`, one process per container.
//!
//! | name              | image                                   | listens on                          |
//! |-------------------|-----------------------------------------|-------------------------------------|
//! | `echo-hname`      | sysnet4admin/echo-hname                 | 80                                  |
//! | `echo-ip`         | sysnet4admin/echo-ip                    | 80                                  |
//! | `whoami`          | traefik/whoami                          | `--port`, `WHOAMI_PORT_NUMBER`, 80  |
//! | `http-echo`       | hashicorp/http-echo                     | `-listen`, `:5678`                  |
//! | `echoserver`      | registry.k8s.io/echoserver (1.5+)       | 8080                                |
//! | `echoserver-1.4`  | k8s.gcr.io/echoserver:1.4 and older     | 8080                                |
//! | `echo-server`     | kicbase/echo-server                     | `PORT`, 8080                        |
//! | `hello-app-1.0.0` | hello-app:1.0 (gcr.io, pkg.dev)         | `PORT`, 8080                        |
//! | `hello-app-2.0.0` | hello-app:2.0                           | `PORT`, 8080                        |
//!
//! Each runs on a single-threaded tokio runtime (a few MB resident) and ends with exit code 0
//! on SIGTERM or SIGINT.

mod apps;
mod bodies;
mod flags;
mod host;
mod http;

use std::io::Write;
use std::sync::Arc;

/// A built-in image ended with a non-zero exit code, as the real image would (http-echo's 127
/// for a missing `-text`, Go's 2 for a bad flag). The caller should exit with [`Self::code`]; the
/// message has already been printed to stderr.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct BuiltinExit {
    /// The process exit code.
    pub code: i32,
    /// What the image printed.
    pub message: String,
}

/// Run a built-in test image in this process (`podway builtin-image NAME [ARGS...]`): `argv` is
/// `[NAME, ARGS...]`. Returns when SIGTERM or SIGINT arrives (`Ok`: exit 0). An error of type
/// [`BuiltinExit`] carries the exit code the real image would have used.
pub fn run_builtin(argv: &[String]) -> anyhow::Result<()> {
    let Some((name, args)) = argv.split_first() else {
        anyhow::bail!(
            "usage: podway builtin-image NAME [ARGS...] (names: {})",
            super::BUILTIN_NAMES.join(", ")
        );
    };
    let env = |key: &str| std::env::var(key).ok();
    let host = apps::Host {
        hostname: host::hostname(),
        ips: host::interface_ips(),
    };
    let app = match apps::configure(name, args, &env, host).map_err(anyhow::Error::msg)? {
        apps::Start::Serve(app) => app,
        apps::Start::Exit { code, stdout, stderr } => {
            print!("{stdout}");
            if !stderr.is_empty() {
                eprintln!("{}", stderr.trim_end());
            }
            return if code == 0 {
                Ok(())
            } else {
                Err(BuiltinExit { code, message: stderr }.into())
            };
        }
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(app.listen).await?;
        serve_app(app, listener, terminated()).await?;
        anyhow::Ok(())
    })
}

/// The TCP port a built-in image started as `argv` (`[NAME, ARGS...]`) with `env` will listen
/// on, if it serves at all (a bad flag or `-version` only prints and exits).
pub fn listen_port(argv: &[String], env: &dyn Fn(&str) -> Option<String>) -> Option<u16> {
    let (name, args) = argv.split_first()?;
    let host = apps::Host {
        hostname: String::new(),
        ips: Vec::new(),
    };
    match apps::configure(name, args, env, host).ok()? {
        apps::Start::Serve(app) => Some(app.listen.port()),
        apps::Start::Exit { .. } => None,
    }
}

/// Serve `app` on `listener` until `shutdown` completes, logging like the image.
async fn serve_app(
    app: apps::App,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let (out, err) = app.startup_log();
    write_log(true, &out);
    write_log(false, &err);
    let app = Arc::new(app);
    let handler: http::Handler = Arc::new(move |req: &http::Request| {
        let resp = app.respond(req);
        if let Some((to_stdout, line)) = app.access_log(req, &resp) {
            write_log(to_stdout, &line);
        }
        resp
    });
    http::serve(listener, handler, shutdown).await
}

fn write_log(to_stdout: bool, text: &str) {
    if text.is_empty() {
        return;
    }
    // A closed stdout (log file gone) must not take the server down.
    let _ = if to_stdout {
        std::io::stdout().lock().write_all(text.as_bytes())
    } else {
        std::io::stderr().lock().write_all(text.as_bytes())
    };
}

/// Completes on SIGTERM (the kubelet's stop signal) or SIGINT.
async fn terminated() {
    use tokio::signal::unix::{signal, SignalKind};
    match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
        (Ok(mut term), Ok(mut int)) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
        }
        // Without signal handling the default action (termination) still stops the server.
        _ => std::future::pending().await,
    }
}

#[cfg(test)]
#[path = "loopback_tests.rs"]
mod loopback_tests;
