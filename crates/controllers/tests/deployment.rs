//! The Deployment and ReplicaSet controllers against a real podway API server.

mod common;

use common::{eventually, fake_agent, Cluster};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::Api;

fn web(replicas: i32, image: &str) -> Deployment {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": "default", "labels": {"app": "web"}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "web", "image": image, "ports": [{"containerPort": 80}]}]}
            }
        }
    }))
    .unwrap()
}

fn rollout_done(d: &Deployment) -> bool {
    let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let s = d.status.clone().unwrap_or_default();
    d.metadata.generation <= s.observed_generation
        && s.updated_replicas.unwrap_or(0) >= want
        && s.replicas.unwrap_or(0) <= s.updated_replicas.unwrap_or(0)
        && s.available_replicas.unwrap_or(0) >= s.updated_replicas.unwrap_or(0)
}

async fn wait_rolled_out(deploys: &Api<Deployment>) -> Deployment {
    eventually(60, "deployment rolled out", || async {
        let d = deploys.get("web").await.ok()?;
        rollout_done(&d).then_some(d)
    })
    .await
}

fn revision(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> String {
    meta.annotations
        .as_ref()
        .and_then(|a| a.get("deployment.kubernetes.io/revision"))
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn a_deployment_rolls_out_updates_and_undoes_like_kubectl_expects() {
    let cluster = Cluster::start().await;
    let client = cluster.client.clone();
    let agent = fake_agent(client.clone(), "default");
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");

    deploys
        .create(&PostParams::default(), &web(3, "nginx:1.25"))
        .await
        .unwrap();
    let d = wait_rolled_out(&deploys).await;
    assert_eq!(revision(&d.metadata), "1");
    let s = d.status.clone().unwrap();
    assert_eq!(
        (s.replicas, s.ready_replicas, s.available_replicas),
        (Some(3), Some(3), Some(3))
    );
    let conds = s.conditions.unwrap();
    let reasons: Vec<_> = conds
        .iter()
        .map(|c| (c.type_.clone(), c.reason.clone().unwrap_or_default()))
        .collect();
    assert!(
        reasons.contains(&("Available".into(), "MinimumReplicasAvailable".into())),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&("Progressing".into(), "NewReplicaSetAvailable".into())),
        "{reasons:?}"
    );

    let list = rss.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(list.len(), 1);
    let first = list[0].clone();
    let first_name = first.metadata.name.clone().unwrap();
    let hash = first.metadata.labels.as_ref().unwrap()["pod-template-hash"].clone();
    assert_eq!(first_name, format!("web-{hash}"));
    let owner = &first.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.controller, owner.block_owner_deletion),
        ("Deployment", Some(true), Some(true))
    );
    assert_eq!(
        first.metadata.annotations.as_ref().unwrap()["deployment.kubernetes.io/desired-replicas"],
        "3"
    );
    let pod_list = pods.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(pod_list.len(), 3);
    for p in &pod_list {
        let name = p.metadata.name.clone().unwrap();
        assert!(
            name.starts_with(&format!("{first_name}-")) && name.len() == first_name.len() + 6,
            "{name}"
        );
    }

    // An image change rolls out a second ReplicaSet and scales the first to zero.
    let patch =
        serde_json::json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.26"}]}}}});
    deploys
        .patch("web", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .unwrap();
    let d = eventually(60, "second rollout", || async {
        let d = deploys.get("web").await.ok()?;
        (rollout_done(&d) && revision(&d.metadata) == "2").then_some(d)
    })
    .await;
    assert_eq!(d.status.unwrap().updated_replicas, Some(3));
    let old = eventually(30, "old replica set drained", || async {
        let rs = rss.get(&first_name).await.ok()?;
        (rs.spec.as_ref()?.replicas == Some(0) && rs.status.as_ref()?.replicas == 0).then_some(rs)
    })
    .await;
    assert_eq!(revision(&old.metadata), "1");
    eventually(30, "only new pods remain", || async {
        let ps = pods.list(&ListParams::default()).await.ok()?.items;
        (ps.len() == 3
            && ps
                .iter()
                .all(|p| !p.metadata.name.as_ref().unwrap().starts_with(&first_name)))
        .then_some(())
    })
    .await;

    // Undo: the template goes back, and the first ReplicaSet is reused as revision 3.
    let patch =
        serde_json::json!({"spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.25"}]}}}});
    deploys
        .patch("web", &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .unwrap();
    eventually(60, "undo rolled out", || async {
        let d = deploys.get("web").await.ok()?;
        (rollout_done(&d) && revision(&d.metadata) == "3").then_some(d)
    })
    .await;
    let reused = rss.get(&first_name).await.unwrap();
    assert_eq!(revision(&reused.metadata), "3");
    assert_eq!(reused.spec.unwrap().replicas, Some(3));
    assert_eq!(rss.list(&ListParams::default()).await.unwrap().items.len(), 2);

    // Scale down.
    deploys
        .patch(
            "web",
            &PatchParams::default(),
            &Patch::Merge(serde_json::json!({"spec": {"replicas": 1}})),
        )
        .await
        .unwrap();
    eventually(30, "scaled to 1", || async {
        let d = deploys.get("web").await.ok()?;
        let n = pods
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .iter()
            .filter(|p| p.metadata.deletion_timestamp.is_none())
            .count();
        (rollout_done(&d) && d.status?.replicas == Some(1) && n == 1).then_some(())
    })
    .await;

    let events: Api<Event> = Api::namespaced(client.clone(), "default");
    let msgs: Vec<String> = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|e| e.message)
        .collect();
    assert!(
        msgs.contains(&format!("Scaled up replica set {first_name} from 0 to 3")),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.starts_with(&format!("Created pod: {first_name}-"))),
        "{msgs:?}"
    );
    assert!(
        msgs.iter()
            .any(|m| m.starts_with(&format!("Scaled down replica set {first_name} from 3 to 1"))),
        "{msgs:?}"
    );
    agent.abort();
}

#[tokio::test]
async fn a_recreate_deployment_replaces_all_pods_at_once_and_rollout_restart_makes_a_new_replica_set() {
    let cluster = Cluster::start().await;
    let client = cluster.client.clone();
    let agent = fake_agent(client.clone(), "default");
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    let mut d = web(2, "nginx");
    d.spec.as_mut().unwrap().strategy = Some(k8s_openapi::api::apps::v1::DeploymentStrategy {
        type_: Some("Recreate".into()),
        rolling_update: None,
    });
    deploys.create(&PostParams::default(), &d).await.unwrap();
    wait_rolled_out(&deploys).await;
    let restart = serde_json::json!({"spec": {"template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2026-01-01T00:00:00Z"}}}}});
    deploys
        .patch("web", &PatchParams::default(), &Patch::Strategic(&restart))
        .await
        .unwrap();
    eventually(60, "restart rolled out", || async {
        let d = deploys.get("web").await.ok()?;
        (rollout_done(&d) && revision(&d.metadata) == "2").then_some(())
    })
    .await;
    let list = rss.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(list.len(), 2);
    let sizes: Vec<_> = list
        .iter()
        .map(|rs| (revision(&rs.metadata), rs.spec.as_ref().unwrap().replicas))
        .collect();
    assert!(
        sizes.contains(&("1".into(), Some(0))) && sizes.contains(&("2".into(), Some(2))),
        "{sizes:?}"
    );
    agent.abort();
}
