use super::*;
use k8s_openapi::api::apps::v1::{
    DeploymentSpec, DeploymentStrategy, ReplicaSetSpec, ReplicaSetStatus, RollingUpdateDeployment,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

fn deploy(replicas: i32, surge: IntOrString, unavailable: IntOrString) -> Deployment {
    Deployment {
        spec: Some(DeploymentSpec {
            replicas: Some(replicas),
            strategy: Some(DeploymentStrategy {
                type_: Some("RollingUpdate".into()),
                rolling_update: Some(RollingUpdateDeployment {
                    max_surge: Some(surge),
                    max_unavailable: Some(unavailable),
                }),
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn rs(name: &str, age_secs: i64, replicas: i32, available: i32) -> ReplicaSet {
    let mut r = ReplicaSet {
        spec: Some(ReplicaSetSpec {
            replicas: Some(replicas),
            ..Default::default()
        }),
        status: Some(ReplicaSetStatus {
            replicas,
            available_replicas: Some(available),
            ..Default::default()
        }),
        ..Default::default()
    };
    r.metadata.name = Some(name.into());
    r.metadata.creation_timestamp = Some(Time(jiff::Timestamp::from_second(1_000_000 - age_secs).unwrap()));
    r
}

fn int(i: i32) -> IntOrString {
    IntOrString::Int(i)
}

fn pct(s: &str) -> IntOrString {
    IntOrString::String(s.into())
}

#[test]
fn percentages_round_up_for_surge_and_down_for_unavailable() {
    assert_eq!(scaled_value(&pct("25%"), 10, true), 3);
    assert_eq!(scaled_value(&pct("25%"), 10, false), 2);
    assert_eq!(scaled_value(&int(4), 10, false), 4);
    assert_eq!(resolve_fenceposts(None, None, 3), (1, 0));
    assert_eq!(resolve_fenceposts(Some(&int(0)), Some(&int(0)), 3), (0, 1));
}

#[test]
fn max_unavailable_is_capped_by_replicas_and_zero_for_recreate() {
    assert_eq!(max_unavailable(&deploy(2, int(1), int(5))), 2);
    let mut d = deploy(2, int(1), int(1));
    d.spec.as_mut().unwrap().strategy = Some(DeploymentStrategy {
        type_: Some("Recreate".into()),
        rolling_update: None,
    });
    assert_eq!(max_unavailable(&d), 0);
    assert_eq!(max_surge(&d), 0);
}

#[test]
fn the_new_replica_set_grows_only_up_to_replicas_plus_surge() {
    let d = deploy(3, int(1), int(0));
    let old = rs("old", 100, 3, 3);
    let new = rs("new", 1, 0, 0);
    assert_eq!(new_rs_new_replicas(&d, &[&old, &new], &new), 1);
    let grown = rs("new", 1, 1, 0);
    assert_eq!(new_rs_new_replicas(&d, &[&old, &grown], &grown), 1);
}

#[test]
fn old_replica_sets_shrink_only_as_far_as_availability_allows() {
    let d = deploy(3, int(1), int(0));
    let old = rs("old", 100, 3, 3);
    let new = rs("new", 1, 1, 1);
    assert_eq!(
        old_replica_sets_plan(&d, &[&old], Some(&new)),
        vec![("old".to_string(), 2)]
    );
    let unready_new = rs("new", 1, 1, 0);
    assert!(old_replica_sets_plan(&d, &[&old], Some(&unready_new)).is_empty());
}

#[test]
fn unhealthy_old_replicas_are_removed_before_healthy_ones() {
    let d = deploy(3, int(1), int(1));
    let old = rs("old", 100, 3, 1);
    let new = rs("new", 1, 1, 0);
    // all=4, minAvailable=2, new unavailable=1: up to 1 may go, and it is an unhealthy one.
    assert_eq!(
        old_replica_sets_plan(&d, &[&old], Some(&new)),
        vec![("old".to_string(), 2)]
    );
}

#[test]
fn scaling_with_one_active_replica_set_resizes_just_it() {
    let d = deploy(5, pct("25%"), pct("25%"));
    let new = rs("new", 1, 3, 3);
    let old = rs("old", 100, 0, 0);
    assert_eq!(scale_plan(&d, Some(&new), &[&old]), vec![("new".to_string(), 5)]);
}

#[test]
fn scaling_mid_rollout_spreads_the_change_proportionally() {
    let d = deploy(20, pct("25%"), pct("25%"));
    let mut old = rs("old", 100, 5, 5);
    let mut new = rs("new", 1, 5, 0);
    for r in [&mut old, &mut new] {
        r.metadata.annotations = Some([(MAX_REPLICAS_ANNOTATION.to_string(), "13".to_string())].into());
    }
    let mut plan = scale_plan(&d, Some(&new), &[&old]);
    plan.sort();
    assert_eq!(plan, vec![("new".to_string(), 15), ("old".to_string(), 10)]);
}

#[test]
fn a_saturated_new_replica_set_scales_old_ones_to_zero() {
    let d = deploy(2, int(1), int(0));
    let mut new = rs("new", 1, 2, 2);
    new.metadata.annotations = Some([(DESIRED_REPLICAS_ANNOTATION.to_string(), "2".to_string())].into());
    let old1 = rs("old1", 100, 1, 1);
    let old2 = rs("old2", 50, 1, 1);
    let mut plan = scale_plan(&d, Some(&new), &[&old1, &old2]);
    plan.sort();
    assert_eq!(plan, vec![("old1".to_string(), 0), ("old2".to_string(), 0)]);
}
