//! The workers against a scripted exec runtime, on paused time: every timing below is exact.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::ExecAction;
use tokio::sync::mpsc::UnboundedReceiver;

use super::super::{ExecError, ExecOutput, ExecRequest};
use super::*;

/// Exit codes per command name, the last one repeating; -1 never ends. Remembers each call.
struct Script {
    t0: Instant,
    answers: Mutex<HashMap<String, VecDeque<i32>>>,
    calls: Mutex<Vec<(Duration, String, u64)>>,
}

impl Script {
    fn new(answers: &[(&str, &[i32])]) -> Arc<Script> {
        Arc::new(Script {
            t0: Instant::now(),
            answers: Mutex::new(
                answers
                    .iter()
                    .map(|(name, codes)| (name.to_string(), codes.iter().copied().collect()))
                    .collect(),
            ),
            calls: Mutex::new(Vec::new()),
        })
    }

    /// When `name` ran, in seconds since the test began.
    fn times(&self, name: &str) -> Vec<u64> {
        self.calls
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, n, _)| n == name)
            .map(|(at, _, _)| at.as_secs())
            .collect()
    }
}

impl ProbeExec for Script {
    fn exec(&self, request: ExecRequest) -> BoxFuture<'_, Result<ExecOutput, ExecError>> {
        let name = request.command[0].clone();
        self.calls
            .lock()
            .unwrap()
            .push((self.t0.elapsed(), name.clone(), request.instance));
        let code = {
            let mut answers = self.answers.lock().unwrap();
            let queue = answers.get_mut(&name).expect("scripted command");
            if queue.len() > 1 {
                queue.pop_front().unwrap()
            } else {
                queue[0]
            }
        };
        Box::pin(async move {
            if code < 0 {
                std::future::pending::<()>().await;
            }
            Ok(ExecOutput {
                exit_code: code,
                output: format!("{name} exited {code}").into_bytes(),
            })
        })
    }
}

fn probe(command: &str, period: i32, failure: i32) -> Probe {
    Probe {
        exec: Some(ExecAction {
            command: Some(vec![command.to_string()]),
        }),
        period_seconds: Some(period),
        failure_threshold: Some(failure),
        ..Probe::default()
    }
}

fn container(readiness: Option<Probe>, liveness: Option<Probe>, startup: Option<Probe>) -> Container {
    Container {
        name: "app".into(),
        readiness_probe: readiness,
        liveness_probe: liveness,
        startup_probe: startup,
        ..Container::default()
    }
}

fn spawn(c: &Container, script: &Arc<Script>) -> (ContainerProbes, UnboundedReceiver<ProbeUpdate>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (ContainerProbes::spawn(c, "127.0.0.1", script.clone(), tx), rx)
}

/// Wait (in paused time) until the status satisfies `f`; return the seconds since the test began.
async fn until(probes: &ContainerProbes, script: &Script, f: impl Fn(&ContainerProbeStatus) -> bool) -> u64 {
    let mut rx = probes.subscribe();
    tokio::time::timeout(Duration::from_secs(3600), rx.wait_for(|s| f(s)))
        .await
        .expect("the status gets there within an hour")
        .expect("the probes are alive");
    script.t0.elapsed().as_secs()
}

async fn advance(seconds: u64) {
    tokio::time::sleep(Duration::from_secs(seconds)).await;
}

fn events(rx: &mut UnboundedReceiver<ProbeUpdate>) -> Vec<ProbeEvent> {
    std::iter::from_fn(|| rx.try_recv().ok())
        .filter_map(|u| match u {
            ProbeUpdate::Event(e) => Some(e),
            ProbeUpdate::Status { .. } => None,
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_container_without_probes_is_started_and_ready_exactly_while_running() {
    let script = Script::new(&[]);
    let (probes, mut rx) = spawn(&container(None, None, None), &script);
    assert_eq!((probes.status().started, probes.status().ready), (false, false));
    probes.container_running(0, Instant::now());
    assert_eq!((probes.status().started, probes.status().ready), (true, true));
    assert_eq!(
        rx.try_recv(),
        Ok(ProbeUpdate::Status {
            container: "app".into()
        })
    );
    probes.container_exited(0);
    assert_eq!((probes.status().started, probes.status().ready), (false, false));
}

#[tokio::test(start_paused = true)]
async fn readiness_is_probed_as_soon_as_the_container_starts_not_a_period_later() {
    let script = Script::new(&[("ready", &[0])]);
    let (probes, _rx) = spawn(&container(Some(probe("ready", 10, 3)), None, None), &script);
    advance(3).await;
    probes.container_running(0, Instant::now());
    assert!(!probes.status().ready, "readiness starts as Failure");
    assert_eq!(until(&probes, &script, |s| s.ready).await, 3);
    assert_eq!(probes.status().readiness, Some(ProbeResult::Success));
}

#[tokio::test(start_paused = true)]
async fn readiness_turns_false_after_failure_threshold_failures_with_an_event_each() {
    // Two successes: publishing the initial Failure for the new container makes the pod sync,
    // which triggers a second readiness run right after the first, as in the kubelet.
    let script = Script::new(&[("ready", &[0, 0, 1])]);
    let (probes, mut rx) = spawn(&container(Some(probe("ready", 10, 3)), None, None), &script);
    advance(1).await;
    probes.container_running(0, Instant::now());
    assert_eq!(until(&probes, &script, |s| s.ready).await, 1);
    assert_eq!(until(&probes, &script, |s| !s.ready).await, 30);
    assert_eq!(&script.times("ready")[..5], &[1, 1, 10, 20, 30]);
    let events = events(&mut rx);
    // The Failure makes the pod sync, which may already have run one more readiness probe.
    assert!(events.len() >= 3, "{events:?}");
    assert_eq!(
        events[0],
        ProbeEvent {
            container: "app".into(),
            kind: ProbeKind::Readiness,
            instance: 0,
            reason: "Unhealthy",
            message: "Readiness probe failed: ready exited 1".into(),
        }
    );
    assert_eq!(probes.status().restart, None, "readiness never restarts a container");
}

#[tokio::test(start_paused = true)]
async fn liveness_failure_asks_for_a_restart_and_the_new_instance_is_probed_afresh() {
    let script = Script::new(&[("live", &[1])]);
    let (probes, _rx) = spawn(&container(None, Some(probe("live", 5, 2)), None), &script);
    advance(1).await;
    probes.container_running(0, Instant::now());
    assert_eq!(
        until(&probes, &script, |s| s.restart == Some(ProbeKind::Liveness)).await,
        10
    );
    assert!(
        probes.status().ready,
        "a liveness failure alone does not make the container unready"
    );
    // The runtime kills and restarts it as instance 1.
    probes.container_exited(0);
    probes.container_running(1, Instant::now());
    assert_eq!(probes.status().restart, None);
    assert_eq!(
        until(&probes, &script, |s| s.restart == Some(ProbeKind::Liveness)).await,
        20
    );
    // On hold between the verdict and the restart: no probe at 10 s after the failure.
    assert_eq!(script.times("live"), vec![5, 10, 15, 20]);
    let instances: Vec<u64> = script.calls.lock().unwrap().iter().map(|c| c.2).collect();
    assert_eq!(instances, vec![0, 0, 1, 1]);
}

#[tokio::test(start_paused = true)]
async fn startup_gates_readiness_and_liveness_until_it_succeeds() {
    let script = Script::new(&[("start", &[1, 1, 0]), ("ready", &[0]), ("live", &[0])]);
    let c = container(
        Some(probe("ready", 10, 3)),
        Some(probe("live", 10, 3)),
        Some(probe("start", 10, 5)),
    );
    let (probes, _rx) = spawn(&c, &script);
    advance(1).await;
    probes.container_running(0, Instant::now());
    assert!(!probes.status().started);
    assert_eq!(until(&probes, &script, |s| s.started).await, 30);
    // Readiness runs right when the container counts as started.
    assert_eq!(until(&probes, &script, |s| s.ready).await, 30);
    advance(25).await;
    assert_eq!(
        script.times("start"),
        vec![10, 20, 30],
        "startup stops probing once it passed"
    );
    assert_eq!(script.times("ready")[0], 30);
    assert_eq!(script.times("live"), vec![40, 50]);
}

#[tokio::test(start_paused = true)]
async fn startup_failure_asks_for_a_restart() {
    let script = Script::new(&[("start", &[1]), ("ready", &[0])]);
    let c = container(Some(probe("ready", 10, 3)), None, Some(probe("start", 10, 2)));
    let (probes, _rx) = spawn(&c, &script);
    advance(1).await;
    probes.container_running(0, Instant::now());
    assert_eq!(
        until(&probes, &script, |s| s.restart == Some(ProbeKind::Startup)).await,
        20
    );
    let status = probes.status();
    assert_eq!(
        (status.started, status.ready, status.startup),
        (false, false, Some(ProbeResult::Failure))
    );
    assert!(script.times("ready").is_empty());
}

#[tokio::test(start_paused = true)]
async fn initial_delay_skips_ticks_until_it_has_passed() {
    let script = Script::new(&[("live", &[0])]);
    let mut live = probe("live", 10, 3);
    live.initial_delay_seconds = Some(15);
    let (probes, _rx) = spawn(&container(None, Some(live), None), &script);
    probes.container_running(0, Instant::now());
    advance(35).await;
    assert_eq!(script.times("live"), vec![20, 30]);
}

#[tokio::test(start_paused = true)]
async fn a_probe_slower_than_its_timeout_counts_as_a_failure() {
    let script = Script::new(&[("ready", &[-1])]);
    let mut ready = probe("ready", 10, 1);
    ready.timeout_seconds = Some(2);
    let (probes, mut rx) = spawn(&container(Some(ready), None, None), &script);
    probes.container_running(0, Instant::now());
    advance(3).await;
    let events = events(&mut rx);
    assert_eq!(events[0].message, "Readiness probe failed: command \"ready\" timed out");
    assert!(!probes.status().ready);
}

#[tokio::test(start_paused = true)]
async fn an_exited_container_is_neither_started_nor_ready() {
    let script = Script::new(&[("ready", &[0])]);
    let (probes, _rx) = spawn(&container(Some(probe("ready", 10, 3)), None, None), &script);
    probes.container_running(0, Instant::now());
    until(&probes, &script, |s| s.ready).await;
    probes.container_exited(0);
    let status = probes.status();
    assert_eq!((status.started, status.ready), (false, false));
    advance(11).await;
    assert_eq!(
        probes.status().readiness,
        Some(ProbeResult::Failure),
        "the worker marks it failed"
    );
    assert!(script.times("ready").iter().all(|t| *t == 0), "and does not probe it");
}

#[tokio::test(start_paused = true)]
async fn stopping_liveness_and_startup_for_termination_leaves_readiness_alone() {
    let script = Script::new(&[("start", &[1]), ("live", &[1]), ("ready", &[0])]);
    let c = container(
        Some(probe("ready", 10, 3)),
        Some(probe("live", 10, 1)),
        Some(probe("start", 10, 100)),
    );
    let (mut probes, _rx) = spawn(&c, &script);
    probes.container_running(0, Instant::now());
    advance(15).await;
    assert!(!probes.status().started);
    probes.stop_liveness_and_startup();
    // With its startup probe gone the container counts as started, so readiness runs now.
    assert_eq!(until(&probes, &script, |s| s.ready).await, 15);
    advance(60).await;
    assert_eq!(probes.status().restart, None, "no restart while the pod terminates");
    assert!(script.times("live").is_empty());
}

#[tokio::test(start_paused = true)]
async fn dropping_the_probes_stops_the_workers() {
    let script = Script::new(&[("ready", &[0])]);
    let (probes, _rx) = spawn(&container(Some(probe("ready", 1, 3)), None, None), &script);
    probes.container_running(0, Instant::now());
    advance(3).await;
    let before = script.times("ready").len();
    drop(probes);
    advance(30).await;
    assert_eq!(script.times("ready").len(), before);
}

#[test]
fn status_rules_follow_the_kubelet() {
    let t0 = Instant::now();
    let running = ContainerView::Running {
        instance: 2,
        started_at: t0,
    };
    let mut shared = Shared {
        view: running,
        results: [None; 3],
        workers: [true, true, true],
    };
    // A startup worker without a result for this run: not started.
    assert!(!shared.status().started);
    shared.results[ProbeKind::Startup.index()] = Some((1, ProbeResult::Success));
    assert!(!shared.status().started, "a result for an earlier run does not count");
    shared.results[ProbeKind::Startup.index()] = Some((2, ProbeResult::Success));
    assert!(shared.status().started && !shared.status().ready);
    shared.results[ProbeKind::Readiness.index()] = Some((2, ProbeResult::Success));
    assert!(shared.status().ready);
    shared.results[ProbeKind::Liveness.index()] = Some((2, ProbeResult::Failure));
    shared.results[ProbeKind::Startup.index()] = Some((2, ProbeResult::Failure));
    assert_eq!(
        shared.status().restart,
        Some(ProbeKind::Liveness),
        "liveness is checked first"
    );
    shared.view = ContainerView::Exited { instance: 2 };
    assert_eq!(shared.status().restart, None, "an exited container is not killed");
}
