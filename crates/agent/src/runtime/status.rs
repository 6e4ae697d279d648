//! A pod's status as kubelet reports it, computed from what the runtime knows: the sandbox's
//! IP and each container's instances (from the shim), waiting reasons and probe results.
//! Pure, so every rule (phase, conditions, restart counts, termination reasons) is unit-tested.

use serde_json::{json, Value};

/// How one container instance ended.
#[derive(Debug, Clone, PartialEq)]
pub struct Ended {
    /// Exit code (128 + signal when killed by one).
    pub code: i32,
    /// The signal, if one killed it.
    pub signal: Option<i32>,
    /// RFC 3339.
    pub finished_at: String,
}

/// One run of a container.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    /// `podway://<hex>`.
    pub container_id: String,
    /// RFC 3339.
    pub started_at: String,
    /// Set once it ended.
    pub ended: Option<Ended>,
}

/// The runtime's view of one container of the pod.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ContainerView {
    /// Name.
    pub name: String,
    /// Image as written in the spec.
    pub image: String,
    /// Its runs in the current sandbox, oldest first.
    pub instances: Vec<Instance>,
    /// Restarts counted in earlier sandboxes.
    pub base_restarts: i32,
    /// Why it is not running, when it is not: (reason, message).
    pub waiting: Option<(String, String)>,
    /// Readiness (probe result, or running without a readiness probe).
    pub ready: bool,
    /// Startup probe passed (or none) while running.
    pub started: bool,
}

impl ContainerView {
    /// Restarts so far, as `restartCount` shows them.
    pub fn restart_count(&self) -> i32 {
        self.base_restarts + (self.instances.len() as i32 - 1).max(0)
    }

    /// The latest run, if any.
    pub fn latest(&self) -> Option<&Instance> {
        self.instances.last()
    }

    /// Whether the latest run is still going.
    pub fn running(&self) -> bool {
        self.latest().is_some_and(|i| i.ended.is_none())
    }

    /// Whether the latest run ended with exit code 0.
    pub fn succeeded(&self) -> bool {
        self.latest()
            .and_then(|i| i.ended.as_ref())
            .is_some_and(|e| e.code == 0)
    }
}

fn terminated(i: &Instance) -> Option<Value> {
    let e = i.ended.as_ref()?;
    let mut t = json!({
        "exitCode": e.code,
        "reason": if e.code == 0 { "Completed" } else { "Error" },
        "startedAt": i.started_at,
        "finishedAt": e.finished_at,
        "containerID": i.container_id,
    });
    if let Some(s) = e.signal {
        t["signal"] = json!(s);
    }
    Some(t)
}

/// One entry of `containerStatuses` / `initContainerStatuses`.
pub fn container_status(c: &ContainerView, image_id: &str) -> Value {
    let n = c.instances.len();
    let latest = c.latest();
    let previous = if n >= 2 { Some(&c.instances[n - 2]) } else { None };
    let (state, last) = match (latest, &c.waiting) {
        (Some(i), _) if i.ended.is_none() => (
            json!({"running": {"startedAt": i.started_at}}),
            previous.and_then(terminated),
        ),
        (Some(i), Some((reason, message))) => (waiting(reason, message), terminated(i)),
        (Some(i), None) => (json!({"terminated": terminated(i)}), previous.and_then(terminated)),
        (None, Some((reason, message))) => (waiting(reason, message), None),
        (None, None) => (waiting("ContainerCreating", ""), None),
    };
    let running = c.running();
    let mut s = json!({
        "name": c.name,
        "state": state,
        "lastState": last.map(|t| json!({"terminated": t})).unwrap_or(json!({})),
        "ready": running && c.ready,
        "restartCount": c.restart_count(),
        "image": c.image,
        "imageID": if latest.is_some() { image_id } else { "" },
        "started": running && c.started,
    });
    if let Some(i) = latest {
        s["containerID"] = json!(i.container_id);
    }
    s
}

fn waiting(reason: &str, message: &str) -> Value {
    let mut w = json!({"reason": reason});
    if !message.is_empty() {
        w["message"] = json!(message);
    }
    json!({ "waiting": w })
}

/// The pod's phase by kubelet's rules (`getPhase`): Pending until every init container
/// succeeded and some container ran; Running while any runs or will be restarted; Succeeded
/// or Failed once all ended for good.
pub fn phase(init: &[ContainerView], containers: &[ContainerView], restart_policy: &str) -> &'static str {
    let init_failed_for_good = init
        .iter()
        .any(|c| !c.running() && c.latest().and_then(|i| i.ended.as_ref()).is_some_and(|e| e.code != 0))
        && restart_policy == "Never";
    if init_failed_for_good {
        return "Failed";
    }
    if init.iter().any(|c| !c.succeeded()) {
        return "Pending";
    }
    let (mut running, mut waiting, mut stopped, mut succeeded) = (0, 0, 0, 0);
    for c in containers {
        if c.running() {
            running += 1;
        } else if c.latest().is_some_and(|i| i.ended.is_some()) {
            stopped += 1;
            if c.succeeded() {
                succeeded += 1;
            }
        } else {
            waiting += 1;
        }
    }
    if waiting > 0 {
        return "Pending";
    }
    if running > 0 {
        return "Running";
    }
    if stopped > 0 {
        return match restart_policy {
            "Always" => "Running",
            _ if stopped == succeeded => "Succeeded",
            "Never" => "Failed",
            _ => "Running",
        };
    }
    "Pending"
}

/// A condition, keeping `lastTransitionTime` from `old` when the status did not change.
fn condition(old: &Value, kind: &str, ok: bool, reason: Option<&str>, message: Option<String>, now: &str) -> Value {
    let status = if ok { "True" } else { "False" };
    let previous = old
        .get("conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == kind));
    let since = previous
        .filter(|c| c["status"] == status)
        .and_then(|c| c.get("lastTransitionTime").cloned())
        .unwrap_or(json!(now));
    let mut c = json!({"type": kind, "status": status, "lastProbeTime": null, "lastTransitionTime": since});
    if !ok {
        if let Some(r) = reason {
            c["reason"] = json!(r);
        }
        if let Some(m) = message {
            c["message"] = json!(m);
        }
    }
    c
}

/// Everything [`pod_status`] needs beyond the containers.
#[derive(Debug, Clone)]
pub struct PodFacts<'a> {
    /// The status currently stored (conditions keep their transition times; PodScheduled is
    /// the scheduler's).
    pub old: &'a Value,
    /// `spec.restartPolicy`.
    pub restart_policy: &'a str,
    /// The node's IP.
    pub host_ip: &'a str,
    /// The pod's IP, empty before the sandbox has one.
    pub pod_ip: &'a str,
    /// Whether the sandbox exists with its network.
    pub sandbox_ready: bool,
    /// RFC 3339 now.
    pub now: &'a str,
    /// `status.startTime` to keep, or now.
    pub start_time: &'a str,
}

/// The pod's full `status`.
pub fn pod_status(
    facts: &PodFacts,
    init: &[ContainerView],
    containers: &[ContainerView],
    image_id: &dyn Fn(&str) -> String,
) -> Value {
    let names = |cs: &[ContainerView], pred: &dyn Fn(&ContainerView) -> bool| -> Vec<String> {
        cs.iter().filter(|c| pred(c)).map(|c| c.name.clone()).collect()
    };
    let incomplete = names(init, &|c| !c.succeeded());
    let unready = names(containers, &|c| !(c.running() && c.ready));
    let phase = phase(init, containers, facts.restart_policy);
    // A pod that ended for good has no ready containers, and is not ready.
    let all_ready = unready.is_empty() && phase == "Running";
    let unready_msg = (!unready.is_empty()).then(|| format!("containers with unready status: [{}]", unready.join(" ")));
    let mut conditions = vec![
        condition(
            facts.old,
            "PodReadyToStartContainers",
            facts.sandbox_ready,
            None,
            None,
            facts.now,
        ),
        condition(
            facts.old,
            "Initialized",
            incomplete.is_empty(),
            Some("ContainersNotInitialized"),
            Some(format!("containers with incomplete status: [{}]", incomplete.join(" "))),
            facts.now,
        ),
        condition(
            facts.old,
            "Ready",
            all_ready,
            Some(if phase == "Running" || phase == "Pending" {
                "ContainersNotReady"
            } else {
                "PodCompleted"
            }),
            unready_msg.clone(),
            facts.now,
        ),
        condition(
            facts.old,
            "ContainersReady",
            all_ready,
            Some(if phase == "Running" || phase == "Pending" {
                "ContainersNotReady"
            } else {
                "PodCompleted"
            }),
            unready_msg,
            facts.now,
        ),
    ];
    if let Some(scheduled) = facts
        .old
        .get("conditions")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["type"] == "PodScheduled"))
    {
        conditions.push(scheduled.clone());
    }
    let mut status = json!({
        "phase": phase,
        "conditions": conditions,
        "hostIP": facts.host_ip,
        "hostIPs": [{"ip": facts.host_ip}],
        "startTime": facts.start_time,
        "containerStatuses": containers.iter().map(|c| container_status(c, &image_id(&c.image))).collect::<Vec<_>>(),
    });
    if !init.is_empty() {
        status["initContainerStatuses"] = json!(init
            .iter()
            .map(|c| container_status(c, &image_id(&c.image)))
            .collect::<Vec<_>>());
    }
    if !facts.pod_ip.is_empty() {
        status["podIP"] = json!(facts.pod_ip);
        status["podIPs"] = json!([{"ip": facts.pod_ip}]);
    }
    if let Some(q) = facts.old.get("qosClass") {
        status["qosClass"] = q.clone();
    }
    status
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(id: &str, code: Option<i32>) -> Instance {
        Instance {
            container_id: format!("podway://{id}"),
            started_at: "2026-01-01T00:00:00Z".into(),
            ended: code.map(|code| Ended {
                code,
                signal: None,
                finished_at: "2026-01-01T00:00:05Z".into(),
            }),
        }
    }

    fn view(name: &str, instances: Vec<Instance>) -> ContainerView {
        ContainerView {
            name: name.into(),
            image: "nginx".into(),
            instances,
            ready: true,
            started: true,
            ..Default::default()
        }
    }

    #[test]
    fn a_running_container_after_two_crashes_shows_restart_count_and_last_state() {
        let c = view("web", vec![run("a", Some(1)), run("b", Some(2)), run("c", None)]);
        let s = container_status(&c, "id");
        assert_eq!(s["restartCount"], 2);
        assert_eq!(s["state"]["running"]["startedAt"], "2026-01-01T00:00:00Z");
        assert_eq!(s["lastState"]["terminated"]["exitCode"], 2);
        assert_eq!(s["lastState"]["terminated"]["reason"], "Error");
        assert_eq!(s["containerID"], "podway://c");
        assert_eq!(s["ready"], true);
    }

    #[test]
    fn a_crashed_container_in_back_off_waits_with_its_last_termination() {
        let mut c = view("web", vec![run("a", Some(1))]);
        c.waiting = Some((
            "CrashLoopBackOff".into(),
            "back-off 10s restarting failed container=web".into(),
        ));
        let s = container_status(&c, "id");
        assert_eq!(s["state"]["waiting"]["reason"], "CrashLoopBackOff");
        assert_eq!(s["lastState"]["terminated"]["exitCode"], 1);
        assert_eq!(s["ready"], false);
        assert_eq!(phase(&[], &[c], "Always"), "Running");
    }

    #[test]
    fn phases_follow_kubelet_rules() {
        let waiting = view("a", vec![]);
        assert_eq!(phase(&[], std::slice::from_ref(&waiting), "Always"), "Pending");
        let ok = view("a", vec![run("x", Some(0))]);
        let bad = view("b", vec![run("y", Some(3))]);
        assert_eq!(phase(&[], std::slice::from_ref(&ok), "Never"), "Succeeded");
        assert_eq!(phase(&[], &[ok.clone(), bad.clone()], "Never"), "Failed");
        assert_eq!(phase(&[], &[ok.clone(), bad.clone()], "OnFailure"), "Running");
        let running = view("c", vec![run("z", None)]);
        assert_eq!(
            phase(std::slice::from_ref(&bad), std::slice::from_ref(&running), "Never"),
            "Failed"
        );
        assert_eq!(
            phase(&[view("i", vec![run("q", None)])], &[waiting], "Always"),
            "Pending"
        );
        assert_eq!(phase(&[ok], &[running], "Always"), "Running");
    }

    #[test]
    fn conditions_keep_transition_times_and_name_unready_containers() {
        let old = json!({"conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": "T0"},
            {"type": "Initialized", "status": "True", "lastTransitionTime": "T1"}
        ]});
        let facts = PodFacts {
            old: &old,
            restart_policy: "Always",
            host_ip: "172.30.0.2",
            pod_ip: "10.244.0.4",
            sandbox_ready: true,
            now: "T9",
            start_time: "T0",
        };
        let mut c = view("web", vec![run("a", None)]);
        c.ready = false;
        let s = pod_status(&facts, &[], &[c], &|_| "img".into());
        let cond = |t: &str| {
            s["conditions"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["type"] == t)
                .unwrap()
                .clone()
        };
        assert_eq!(cond("Initialized")["lastTransitionTime"], "T1");
        assert_eq!(cond("Ready")["status"], "False");
        assert_eq!(cond("Ready")["message"], "containers with unready status: [web]");
        assert_eq!(cond("PodScheduled")["lastTransitionTime"], "T0");
        assert_eq!(s["podIPs"][0]["ip"], "10.244.0.4");
        assert_eq!(s["phase"], "Running");
    }
}
