//! The garbage collector against a real podway API server.

mod common;

use common::{eventually, Cluster};
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{DeleteParams, ListParams, PostParams};
use kube::Api;

fn web(name: &str) -> Deployment {
    serde_json::from_value(serde_json::json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
        }
    }))
    .unwrap()
}

async fn counts(client: &kube::Client, app: &str) -> (usize, usize) {
    let lp = ListParams::default().labels(&format!("app={app}"));
    let rs = Api::<ReplicaSet>::namespaced(client.clone(), "default")
        .list(&lp)
        .await
        .map(|l| l.items.len())
        .unwrap_or(99);
    let pods = Api::<Pod>::namespaced(client.clone(), "default")
        .list(&lp)
        .await
        .map(|l| l.items.len())
        .unwrap_or(99);
    (rs, pods)
}

#[tokio::test]
async fn deleting_a_deployment_in_the_background_collects_its_replica_sets_and_pods() {
    let cluster = Cluster::start().await;
    let client = cluster.client.clone();
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deploys.create(&PostParams::default(), &web("bg")).await.unwrap();
    eventually(30, "pods created", || async {
        (counts(&client, "bg").await == (1, 2)).then_some(())
    })
    .await;
    deploys.delete("bg", &DeleteParams::background()).await.unwrap();
    eventually(30, "dependents collected", || async {
        (counts(&client, "bg").await == (0, 0)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_foreground_deletion_removes_dependents_before_the_owner() {
    let cluster = Cluster::start().await;
    let client = cluster.client.clone();
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deploys.create(&PostParams::default(), &web("fg")).await.unwrap();
    eventually(30, "pods created", || async {
        (counts(&client, "fg").await == (1, 2)).then_some(())
    })
    .await;
    deploys.delete("fg", &DeleteParams::foreground()).await.unwrap();
    eventually(30, "owner and dependents gone", || async {
        let gone = deploys.get_opt("fg").await.ok()?.is_none();
        (gone && counts(&client, "fg").await == (0, 0)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn an_orphaning_deletion_keeps_dependents_and_strips_their_owner_reference() {
    let cluster = Cluster::start().await;
    let client = cluster.client.clone();
    let deploys: Api<Deployment> = Api::namespaced(client.clone(), "default");
    deploys.create(&PostParams::default(), &web("or")).await.unwrap();
    eventually(30, "pods created", || async {
        (counts(&client, "or").await == (1, 2)).then_some(())
    })
    .await;
    deploys.delete("or", &DeleteParams::orphan()).await.unwrap();
    let rss: Api<ReplicaSet> = Api::namespaced(client.clone(), "default");
    eventually(30, "owner gone, replica set orphaned", || async {
        let gone = deploys.get_opt("or").await.ok()?.is_none();
        let rs = rss.list(&ListParams::default().labels("app=or")).await.ok()?.items;
        let orphaned = rs.len() == 1 && rs[0].metadata.owner_references.as_ref().is_none_or(|r| r.is_empty());
        (gone && orphaned).then_some(())
    })
    .await;
    assert_eq!(counts(&client, "or").await.1, 2);
}

#[tokio::test]
async fn any_kind_with_a_missing_owner_is_collected() {
    let cluster = Cluster::start().await;
    let client = cluster.client.clone();
    let cms: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    let owner = cms
        .create(
            &PostParams::default(),
            &serde_json::from_value(serde_json::json!({"metadata": {"name": "owner"}})).unwrap(),
        )
        .await
        .unwrap();
    let dep: ConfigMap = serde_json::from_value(
        serde_json::json!({"metadata": {"name": "dependent", "ownerReferences": [
            {"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid.clone().unwrap()}
        ]}}),
    )
    .unwrap();
    cms.create(&PostParams::default(), &dep).await.unwrap();
    let ghost: ConfigMap = serde_json::from_value(serde_json::json!({"metadata": {"name": "ghost-child", "ownerReferences": [
        {"apiVersion": "v1", "kind": "ConfigMap", "name": "never-was", "uid": "00000000-0000-0000-0000-000000000000"}
    ]}}))
    .unwrap();
    cms.create(&PostParams::default(), &ghost).await.unwrap();
    eventually(30, "dependent of a missing owner collected", || async {
        cms.get_opt("ghost-child").await.ok()?.is_none().then_some(())
    })
    .await;
    assert!(
        cms.get_opt("dependent").await.unwrap().is_some(),
        "a dependent of a live owner must stay"
    );
    cms.delete("owner", &DeleteParams::default()).await.unwrap();
    eventually(30, "dependent collected", || async {
        cms.get_opt("dependent").await.ok()?.is_none().then_some(())
    })
    .await;
}
