//! Pod rows, each derived from a `printPod` rule (expected cells worked out by hand).

use serde_json::{json, Value};

use super::*;

fn now() -> Timestamp {
    "2024-05-01T12:00:00Z".parse().unwrap()
}

/// A scheduled pod created 90 s before `now`, with `status` merged in.
fn pod(status: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-92f05ee0f9-bbxr4", "namespace": "default", "creationTimestamp": "2024-05-01T11:58:30Z"},
        "spec": {"nodeName": "node-1", "containers": [{"name": "nginx", "image": "nginx:1.25"}]},
        "status": status,
    })
}

fn running(name: &str) -> Value {
    json!({"name": name, "ready": true, "started": true, "restartCount": 0,
           "state": {"running": {"startedAt": "2024-05-01T11:58:40Z"}}})
}

fn strs(cells: &[Value]) -> Vec<String> {
    cells
        .iter()
        .map(|c| c.as_str().map_or_else(|| c.to_string(), str::to_string))
        .collect()
}

#[test]
fn running_pod_matches_the_recorded_wide_row() {
    let p = pod(json!({
        "phase": "Running", "podIP": "10.244.0.190", "podIPs": [{"ip": "10.244.0.190"}],
        "conditions": [{"type": "Ready", "status": "True"}],
        "containerStatuses": [running("nginx")],
    }));
    assert_eq!(
        strs(&cells(&p, now())),
        [
            "web-92f05ee0f9-bbxr4",
            "1/1",
            "Running",
            "0",
            "90s",
            "10.244.0.190",
            "node-1",
            "<none>",
            "<none>"
        ]
    );
}

#[test]
fn unscheduled_pod_shows_pending_and_none_placeholders() {
    let mut p = pod(json!({"phase": "Pending"}));
    p["spec"].as_object_mut().unwrap().remove("nodeName");
    let c = strs(&cells(&p, now()));
    assert_eq!(c[1..4], ["0/1", "Pending", "0"]);
    assert_eq!(c[5..], ["<none>", "<none>", "<none>", "<none>"]);
}

#[test]
fn waiting_reason_of_a_container_becomes_the_status() {
    let p = pod(json!({"phase": "Pending", "containerStatuses": [
        {"name": "nginx", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}
    ]}));
    assert_eq!(strs(&cells(&p, now()))[1..3], ["0/1", "ContainerCreating"]);
}

#[test]
fn crash_looping_container_shows_restarts_with_time_since_last_exit() {
    let p = pod(json!({"phase": "Running", "containerStatuses": [{
        "name": "nginx", "ready": false, "restartCount": 5,
        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 5m0s"}},
        "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": "2024-05-01T11:55:00Z"}}
    }]}));
    assert_eq!(strs(&cells(&p, now()))[1..4], ["0/1", "CrashLoopBackOff", "5 (5m ago)"]);
}

#[test]
fn restarts_without_a_finish_time_print_the_bare_count() {
    let p = pod(json!({"phase": "Running", "containerStatuses": [{
        "name": "nginx", "ready": true, "restartCount": 2, "state": {"running": {}},
        "lastState": {"terminated": {"exitCode": 137}}
    }]}));
    assert_eq!(strs(&cells(&p, now()))[3], "2");
}

#[test]
fn latest_exit_across_containers_dates_the_restarts() {
    let mut p = pod(json!({"phase": "Running", "containerStatuses": [
        {"name": "a", "ready": true, "restartCount": 1, "state": {"running": {}},
         "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T10:00:00Z"}}},
        {"name": "b", "ready": true, "restartCount": 2, "state": {"running": {}},
         "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T11:59:00Z"}}}
    ]}));
    p["spec"]["containers"] = json!([{"name": "a"}, {"name": "b"}]);
    assert_eq!(strs(&cells(&p, now()))[1..4], ["2/2", "Running", "3 (60s ago)"]);
}

#[test]
fn terminated_container_shows_reason_or_exit_code_or_signal() {
    let term = |t: Value| {
        pod(json!({"phase": "Failed", "containerStatuses": [
            {"name": "nginx", "ready": false, "restartCount": 0, "state": {"terminated": t}}
        ]}))
    };
    assert_eq!(
        strs(&cells(&term(json!({"exitCode": 0, "reason": "Completed"})), now()))[2],
        "Completed"
    );
    assert_eq!(
        strs(&cells(&term(json!({"exitCode": 2, "reason": "Error"})), now()))[2],
        "Error"
    );
    assert_eq!(strs(&cells(&term(json!({"exitCode": 3})), now()))[2], "ExitCode:3");
    assert_eq!(
        strs(&cells(&term(json!({"exitCode": 137, "signal": 9})), now()))[2],
        "Signal:9"
    );
}

#[test]
fn first_container_decides_the_status_because_statuses_are_walked_backwards() {
    let mut p = pod(json!({"phase": "Running", "containerStatuses": [
        {"name": "a", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ImagePullBackOff"}}},
        {"name": "b", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "ErrImagePull"}}}
    ]}));
    p["spec"]["containers"] = json!([{"name": "a"}, {"name": "b"}]);
    assert_eq!(strs(&cells(&p, now()))[2], "ImagePullBackOff");
}

#[test]
fn completed_container_beside_a_running_one_reads_running_or_not_ready() {
    let status = |ready_condition: &str| {
        let mut p = pod(json!({"phase": "Running",
        "conditions": [{"type": "Ready", "status": ready_condition}],
        "containerStatuses": [
            running("a"),
            {"name": "b", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
        ]}));
        p["spec"]["containers"] = json!([{"name": "a"}, {"name": "b"}]);
        strs(&cells(&p, now()))[1..3].to_vec()
    };
    assert_eq!(status("True"), ["1/2", "Running"]);
    assert_eq!(status("False"), ["1/2", "NotReady"]);
}

fn with_init(status: Value) -> Value {
    let mut p = pod(status);
    p["spec"]["initContainers"] = json!([{"name": "migrate"}, {"name": "warm"}]);
    p
}

#[test]
fn running_init_container_shows_init_progress() {
    let p = with_init(json!({"phase": "Pending", "initContainerStatuses": [
        {"name": "migrate", "ready": true, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
        {"name": "warm", "ready": false, "restartCount": 0, "state": {"running": {}}}
    ], "containerStatuses": [
        {"name": "nginx", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}
    ]}));
    assert_eq!(strs(&cells(&p, now()))[1..4], ["0/1", "Init:1/2", "0"]);
}

#[test]
fn pod_initializing_wait_reason_is_shown_as_progress() {
    let p = with_init(json!({"phase": "Pending", "initContainerStatuses": [
        {"name": "migrate", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": "PodInitializing"}}}
    ]}));
    assert_eq!(strs(&cells(&p, now()))[2], "Init:0/2");
}

#[test]
fn failing_init_container_shows_init_reason_and_counts_its_restarts() {
    let p = with_init(json!({"phase": "Pending", "initContainerStatuses": [{
        "name": "migrate", "ready": false, "restartCount": 3,
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T11:59:30Z"}}
    }]}));
    assert_eq!(strs(&cells(&p, now()))[2..4], ["Init:CrashLoopBackOff", "3 (30s ago)"]);
}

#[test]
fn terminated_init_container_without_reason_shows_exit_code_or_signal() {
    let init = |t: Value| {
        with_init(json!({"phase": "Pending", "initContainerStatuses": [
            {"name": "migrate", "ready": false, "restartCount": 0, "state": {"terminated": t}}
        ]}))
    };
    assert_eq!(strs(&cells(&init(json!({"exitCode": 4})), now()))[2], "Init:ExitCode:4");
    assert_eq!(
        strs(&cells(&init(json!({"exitCode": 143, "signal": 15})), now()))[2],
        "Init:Signal:15"
    );
    assert_eq!(
        strs(&cells(&init(json!({"exitCode": 1, "reason": "Error"})), now()))[2],
        "Init:Error"
    );
}

#[test]
fn started_sidecar_counts_toward_ready_and_total() {
    let mut p = pod(json!({"phase": "Running",
        "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}],
        "initContainerStatuses": [{"name": "proxy", "ready": true, "started": true, "restartCount": 1,
            "state": {"running": {}},
            "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2024-05-01T11:50:00Z"}}}],
        "containerStatuses": [running("nginx")]}));
    p["spec"]["initContainers"] = json!([{"name": "proxy", "restartPolicy": "Always"}]);
    assert_eq!(strs(&cells(&p, now()))[1..4], ["2/2", "Running", "1 (10m ago)"]);
}

#[test]
fn deleting_a_live_pod_shows_terminating_but_a_finished_one_keeps_its_status() {
    let mut p = pod(json!({"phase": "Running", "containerStatuses": [running("nginx")]}));
    p["metadata"]["deletionTimestamp"] = json!("2024-05-01T12:00:30Z");
    assert_eq!(strs(&cells(&p, now()))[2], "Terminating");
    let mut done = pod(json!({"phase": "Succeeded", "containerStatuses": [
        {"name": "nginx", "ready": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}
    ]}));
    done["metadata"]["deletionTimestamp"] = json!("2024-05-01T12:00:30Z");
    assert_eq!(strs(&cells(&done, now()))[2], "Completed");
}

#[test]
fn deleting_a_pod_on_a_lost_node_shows_unknown() {
    let mut p = pod(json!({"phase": "Running", "reason": "NodeLost"}));
    p["metadata"]["deletionTimestamp"] = json!("2024-05-01T12:00:30Z");
    assert_eq!(strs(&cells(&p, now()))[2], "Unknown");
}

#[test]
fn pod_level_reason_replaces_the_phase() {
    let p = pod(json!({"phase": "Failed", "reason": "Evicted", "message": "low on memory"}));
    assert_eq!(strs(&cells(&p, now()))[2], "Evicted");
}

#[test]
fn scheduling_gated_pod_says_so() {
    let p = pod(json!({"phase": "Pending",
        "conditions": [{"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"}]}));
    assert_eq!(strs(&cells(&p, now()))[2], "SchedulingGated");
}

#[test]
fn readiness_gates_count_true_conditions_of_each_gate() {
    let mut p = pod(json!({"phase": "Running", "nominatedNodeName": "node-2",
        "conditions": [
            {"type": "example.com/lb", "status": "True"},
            {"type": "example.com/dns", "status": "False"}
        ],
        "containerStatuses": [running("nginx")]}));
    p["spec"]["readinessGates"] =
        json!([{"conditionType": "example.com/lb"}, {"conditionType": "example.com/dns"}, {"conditionType": "x"}]);
    assert_eq!(strs(&cells(&p, now()))[7..], ["node-2", "1/3"]);
}

#[test]
fn pod_ip_falls_back_to_the_singular_field() {
    let p = pod(json!({"phase": "Running", "podIP": "10.244.0.7"}));
    assert_eq!(strs(&cells(&p, now()))[5], "10.244.0.7");
}

#[test]
fn restarts_cell_is_a_string_like_the_column_type() {
    let c = cells(&pod(json!({"phase": "Running"})), now());
    assert_eq!(c[3], json!("0"));
    assert_eq!(columns()[3].type_, "string");
    assert_eq!(columns().iter().filter(|c| c.priority == 1).count(), 4);
}
