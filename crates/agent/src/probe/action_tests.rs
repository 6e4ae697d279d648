use std::sync::Mutex;

use k8s_openapi::api::core::v1::{ContainerPort, EnvVar, ExecAction, GRPCAction, TCPSocketAction};
use tokio::net::TcpListener;

use super::*;

/// An answer to a command; `None` means it never ends.
type Answer = Option<Result<ExecOutput, ExecError>>;

/// Answers exec probes from a script and remembers what it ran.
struct FakeExec {
    answer: Box<dyn Fn(&ExecRequest) -> Answer + Send + Sync>,
    seen: Mutex<Vec<ExecRequest>>,
}

impl FakeExec {
    /// `answer` returning `None` means the command never ends.
    fn new(answer: impl Fn(&ExecRequest) -> Answer + Send + Sync + 'static) -> FakeExec {
        FakeExec {
            answer: Box::new(answer),
            seen: Mutex::new(Vec::new()),
        }
    }
}

impl ProbeExec for FakeExec {
    fn exec(&self, request: ExecRequest) -> BoxFuture<'_, Result<ExecOutput, ExecError>> {
        self.seen.lock().unwrap().push(request.clone());
        let answer = (self.answer)(&request);
        Box::pin(async move {
            match answer {
                Some(answer) => answer,
                None => std::future::pending().await,
            }
        })
    }
}

fn exited(code: i32, output: &str) -> Answer {
    Some(Ok(ExecOutput {
        exit_code: code,
        output: output.as_bytes().to_vec(),
    }))
}

fn target() -> ProbeTarget {
    let container = Container {
        name: "app".into(),
        ports: Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: 8080,
            ..Default::default()
        }]),
        env: Some(vec![
            EnvVar {
                name: "FILE".into(),
                value: Some("/tmp/healthy".into()),
                ..Default::default()
            },
            EnvVar {
                name: "SECRET".into(),
                value_from: Some(Default::default()),
                ..Default::default()
            },
        ]),
        ..Default::default()
    };
    ProbeTarget::new("127.0.0.1", &container)
}

fn exec_probe_of(command: &[&str]) -> Probe {
    Probe {
        exec: Some(ExecAction {
            command: Some(command.iter().map(|s| s.to_string()).collect()),
        }),
        ..Probe::default()
    }
}

const SECOND: Duration = Duration::from_secs(1);

#[test]
fn numbered_named_and_numeric_string_ports_resolve_like_the_kubelet() {
    let t = target();
    assert_eq!(resolve_port(&IntOrString::Int(80), &t), Ok(80));
    assert_eq!(resolve_port(&IntOrString::String("http".into()), &t), Ok(8080));
    assert_eq!(resolve_port(&IntOrString::String("9090".into()), &t), Ok(9090));
    assert_eq!(
        resolve_port(&IntOrString::String("metrics".into()), &t),
        Err("strconv.Atoi: parsing \"metrics\": invalid syntax".to_string())
    );
    assert_eq!(
        resolve_port(&IntOrString::Int(70000), &t),
        Err("invalid port number: 70000".to_string())
    );
    assert_eq!(
        resolve_port(&IntOrString::Int(0), &t),
        Err("invalid port number: 0".to_string())
    );
}

#[test]
fn events_use_the_kubelet_wording() {
    let failed = Attempt::Failure("HTTP probe failed with statuscode: 503".into());
    assert_eq!(
        failed.event(ProbeKind::Readiness),
        Some((
            "Unhealthy",
            "Readiness probe failed: HTTP probe failed with statuscode: 503".to_string()
        ))
    );
    let errored = Attempt::Errored {
        result: "unknown",
        error: "boom".into(),
    };
    assert_eq!(
        errored.event(ProbeKind::Liveness),
        Some((
            "Unhealthy",
            "Liveness probe errored and resulted in unknown state: boom".to_string()
        ))
    );
    let warned = Attempt::Warning("Probe terminated redirects, Response body: x".into());
    assert_eq!(warned.event(ProbeKind::Startup).unwrap().0, "ProbeWarning");
    assert_eq!(warned.counted(), Some(ProbeResult::Success));
    assert_eq!(errored.counted(), None);
    assert_eq!(Attempt::Success(String::new()).event(ProbeKind::Readiness), None);
}

#[tokio::test]
async fn tcp_probe_passes_when_a_listener_accepts() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    assert_eq!(
        tcp_probe("127.0.0.1", port, SECOND).await,
        Attempt::Success(String::new())
    );
}

#[tokio::test]
async fn tcp_probe_to_a_closed_port_fails_with_gos_dial_message() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    assert_eq!(
        tcp_probe("127.0.0.1", port, SECOND).await,
        Attempt::Failure(format!("dial tcp 127.0.0.1:{port}: connect: connection refused"))
    );
}

#[tokio::test]
async fn tcp_socket_probe_uses_the_named_port_on_the_pod_ip() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port() as i32;
    let mut t = target();
    t.ports = vec![(Some("db".into()), port)];
    let probe = Probe {
        tcp_socket: Some(TCPSocketAction {
            port: IntOrString::String("db".into()),
            host: None,
        }),
        ..Probe::default()
    };
    let exec = FakeExec::new(|_| exited(0, ""));
    assert_eq!(
        run_probe(&probe, &t, 0, SECOND, &exec).await,
        Attempt::Success(String::new())
    );
}

#[tokio::test]
async fn exec_probe_passes_on_exit_zero_and_fails_with_its_output_otherwise() {
    let exec = FakeExec::new(|r| {
        if r.command[0] == "true" {
            exited(0, "fine")
        } else {
            exited(1, "cat: no such file\n")
        }
    });
    assert_eq!(
        run_probe(&exec_probe_of(&["true"]), &target(), 0, SECOND, &exec).await,
        Attempt::Success("fine".into())
    );
    assert_eq!(
        run_probe(&exec_probe_of(&["cat", "x"]), &target(), 0, SECOND, &exec).await,
        Attempt::Failure("cat: no such file\n".into())
    );
}

#[tokio::test]
async fn exec_probe_command_is_expanded_with_static_env_and_sent_to_the_running_instance() {
    let exec = FakeExec::new(|_| exited(0, ""));
    run_probe(
        &exec_probe_of(&["cat", "$(FILE)", "$(SECRET)", "$(NOPE)"]),
        &target(),
        7,
        SECOND,
        &exec,
    )
    .await;
    let seen = exec.seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![ExecRequest {
            container: "app".into(),
            instance: 7,
            command: vec!["cat".into(), "/tmp/healthy".into(), "".into(), "$(NOPE)".into()],
            timeout: SECOND,
        }]
    );
}

#[tokio::test(start_paused = true)]
async fn exec_probe_that_outlives_its_timeout_fails_with_the_command_in_quotes() {
    let exec = FakeExec::new(|_| None);
    let started = tokio::time::Instant::now();
    let attempt = run_probe(&exec_probe_of(&["sh", "-c", "sleep 5"]), &target(), 0, SECOND, &exec).await;
    assert_eq!(attempt, Attempt::Failure("command \"sh -c sleep 5\" timed out".into()));
    assert_eq!(started.elapsed(), SECOND, "a timeout is a failure, not retried");
}

#[tokio::test]
async fn exec_probe_output_is_cut_at_ten_kibibytes() {
    let exec = FakeExec::new(|_| exited(1, &"x".repeat(MAX_EXEC_OUTPUT + 100)));
    let Attempt::Failure(output) = run_probe(&exec_probe_of(&["x"]), &target(), 0, SECOND, &exec).await else {
        panic!("expected a failure")
    };
    assert_eq!(output.len(), MAX_EXEC_OUTPUT);
}

#[tokio::test]
async fn a_runtime_error_is_retried_three_times_then_reported_as_errored() {
    let exec = FakeExec::new(|_| Some(Err(ExecError::Failed("container not running".into()))));
    let attempt = run_probe(&exec_probe_of(&["x"]), &target(), 0, SECOND, &exec).await;
    assert_eq!(
        attempt,
        Attempt::Errored {
            result: "unknown",
            error: "container not running".into()
        }
    );
    assert_eq!(exec.seen.lock().unwrap().len(), MAX_PROBE_RETRIES);
}

#[tokio::test]
async fn grpc_probes_are_reported_as_unsupported_without_counting() {
    let probe = Probe {
        grpc: Some(GRPCAction {
            port: 9000,
            service: None,
        }),
        ..Probe::default()
    };
    let exec = FakeExec::new(|_| exited(0, ""));
    let attempt = run_probe(&probe, &target(), 0, SECOND, &exec).await;
    assert!(matches!(&attempt, Attempt::Errored { error, .. } if error.contains("gRPC probes are not supported")));
    assert_eq!(attempt.counted(), None);
}

#[test]
fn go_quoting_escapes_quotes_backslashes_and_controls_but_keeps_unicode() {
    assert_eq!(go_quote("a \"b\" \\ é\n\u{1}"), "\"a \\\"b\\\" \\\\ é\\n\\x01\"");
}

#[test]
fn io_errors_read_like_go_syscall_errors() {
    let refused = io::Error::from_raw_os_error(111);
    assert_eq!(go_io_error(&refused), "connection refused");
    assert_eq!(go_io_error(&io::Error::from_raw_os_error(113)), "no route to host");
}
