//! The backend on loopback: service addresses in 127.0.0.0/8 are local already, so no address
//! is added ([`NoAddresses`]) and no root is needed. Each test uses addresses of its own.

use super::*;
use crate::model::{Endpoint, ServicePort, ServiceRef, TrafficPolicy};
use std::io::ErrorKind;
use std::net::SocketAddrV4;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};

fn port(name: &str, protocol: Protocol, vip: Ipv4Addr, endpoints: &[SocketAddrV4]) -> ServicePort {
    ServicePort {
        name: ServicePortName {
            service: ServiceRef::new("default", name),
            port_name: String::new(),
            protocol,
        },
        cluster_ips: vec![vip],
        port: 18080,
        node_port: None,
        load_balancer_ips: vec![],
        external_ips: vec![],
        affinity_timeout: None,
        external_policy: TrafficPolicy::Cluster,
        internal_policy: TrafficPolicy::Cluster,
        health_check_node_port: None,
        endpoints: endpoints
            .iter()
            .map(|a| Endpoint {
                ip: *a.ip(),
                port: a.port(),
                ready: true,
                serving: true,
                terminating: false,
                node_name: Some("node".into()),
                is_local: true,
            })
            .collect(),
    }
}

fn backend() -> UserspaceBackend {
    let config = UserspaceConfig::new(vec![], "10.244.0.0/16".parse().unwrap());
    UserspaceBackend::with_addresses(config, Box::new(NoAddresses))
}

fn table(ports: Vec<ServicePort>) -> ServiceTable {
    let mut t = ServiceTable::new();
    for p in ports {
        let svc = p.name.service.clone();
        let mut all = t.service(&svc).into_iter().cloned().collect::<Vec<_>>();
        all.push(p);
        t.replace_service(&svc, all);
    }
    t
}

fn change(before: &ServiceTable, after: &ServiceTable, name: &str) -> ServiceChange {
    let svc = ServiceRef::new("default", name);
    ServiceChange {
        service: svc.clone(),
        previous: before.service(&svc).into_iter().cloned().collect(),
        current: after.service(&svc).into_iter().cloned().collect(),
    }
}

/// A TCP endpoint that answers each connection with its name, then echoes until EOF.
async fn endpoint(name: &'static str) -> SocketAddrV4 {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let SocketAddr::V4(addr) = l.local_addr().unwrap() else {
        unreachable!()
    };
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            tokio::spawn(async move {
                s.write_all(name.as_bytes()).await?;
                let mut buf = [0u8; 1024];
                loop {
                    let n = s.read(&mut buf).await?;
                    if n == 0 {
                        return Ok::<_, std::io::Error>(());
                    }
                    s.write_all(&buf[..n]).await?;
                }
            });
        }
    });
    addr
}

async fn hello(addr: SocketAddrV4) -> std::io::Result<(TcpStream, String)> {
    let mut s = TcpStream::connect(addr).await?;
    let mut buf = [0u8; 3];
    s.read_exact(&mut buf).await?;
    Ok((s, String::from_utf8_lossy(&buf).into_owned()))
}

use std::net::SocketAddr;

#[tokio::test]
async fn a_cluster_ip_forwards_connections_to_its_endpoints_in_turn() {
    let (a, b) = (endpoint("epa").await, endpoint("epb").await);
    let vip = Ipv4Addr::new(127, 71, 0, 1);
    let mut be = backend();
    be.sync_full(&table(vec![port("web", Protocol::Tcp, vip, &[a, b])]))
        .await
        .unwrap();
    let svc = SocketAddrV4::new(vip, 18080);
    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(hello(svc).await.unwrap().1);
    }
    assert_eq!(seen, ["epa", "epb", "epa", "epb"]);
    be.cleanup().await.unwrap();
    let err = TcpStream::connect(svc).await.unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::ConnectionRefused,
        "cleanup closes every listener"
    );
}

#[tokio::test]
async fn losing_every_endpoint_closes_the_listener_so_clients_are_refused_and_established_ones_keep_going() {
    let a = endpoint("epa").await;
    let vip = Ipv4Addr::new(127, 71, 0, 2);
    let svc = SocketAddrV4::new(vip, 18080);
    let mut be = backend();
    let before = table(vec![port("web", Protocol::Tcp, vip, &[a])]);
    be.sync_full(&before).await.unwrap();
    let (mut open, who) = hello(svc).await.unwrap();
    assert_eq!(who, "epa");

    let after = table(vec![port("web", Protocol::Tcp, vip, &[])]);
    be.sync_changes(&after, &[change(&before, &after, "web")])
        .await
        .unwrap();
    assert!(be.listening().is_empty());
    let err = TcpStream::connect(svc).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused);

    open.write_all(b"still").await.unwrap();
    let mut buf = [0u8; 5];
    open.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"still", "the established connection outlives its listener");
}

#[tokio::test]
async fn a_change_to_one_service_keeps_the_other_services_listeners_and_connections() {
    let (a, b) = (endpoint("epa").await, endpoint("epb").await);
    let (vip1, vip2) = (Ipv4Addr::new(127, 71, 0, 3), Ipv4Addr::new(127, 71, 0, 4));
    let mut be = backend();
    let before = table(vec![
        port("one", Protocol::Tcp, vip1, &[a]),
        port("two", Protocol::Tcp, vip2, &[a]),
    ]);
    be.sync_full(&before).await.unwrap();
    let (mut open, _) = hello(SocketAddrV4::new(vip1, 18080)).await.unwrap();
    let task_before = be.listeners[&be.listening()[0]].task.id();

    let after = table(vec![
        port("one", Protocol::Tcp, vip1, &[a, b]),
        port("two", Protocol::Tcp, vip2, &[b]),
    ]);
    be.sync_changes(&after, &[change(&before, &after, "two")])
        .await
        .unwrap();
    assert_eq!(
        be.listeners[&be.listening()[0]].task.id(),
        task_before,
        "one's listener is untouched"
    );
    assert_eq!(hello(SocketAddrV4::new(vip2, 18080)).await.unwrap().1, "epb");
    open.write_all(b"x").await.unwrap();
    let mut buf = [0u8; 1];
    open.read_exact(&mut buf).await.unwrap();
    assert_eq!(&buf, b"x");
}

#[tokio::test]
async fn an_address_taken_by_another_socket_fails_the_sync_naming_it_while_the_rest_listen() {
    let a = endpoint("epa").await;
    let (vip1, vip2) = (Ipv4Addr::new(127, 71, 0, 5), Ipv4Addr::new(127, 71, 0, 6));
    let _squatter = std::net::TcpListener::bind((vip1, 18080)).unwrap();
    let mut be = backend();
    let t = table(vec![
        port("one", Protocol::Tcp, vip1, &[a]),
        port("two", Protocol::Tcp, vip2, &[a]),
    ]);
    let err = be.sync_full(&t).await.unwrap_err().to_string();
    assert!(err.contains("tcp 127.71.0.5:18080"), "{err}");
    assert_eq!(hello(SocketAddrV4::new(vip2, 18080)).await.unwrap().1, "epa");
}

#[tokio::test]
async fn udp_replies_come_from_the_service_address_and_a_removed_endpoint_ends_its_session() {
    let ep_a = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let ep_b = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let (SocketAddr::V4(a), SocketAddr::V4(b)) = (ep_a.local_addr().unwrap(), ep_b.local_addr().unwrap()) else {
        unreachable!()
    };
    for (sock, name) in [(ep_a, "epa"), (ep_b, "epb")] {
        tokio::spawn(async move {
            let mut buf = [0u8; 64];
            while let Ok((_, peer)) = sock.recv_from(&mut buf).await {
                let _ = sock.send_to(name.as_bytes(), peer).await;
            }
        });
    }
    let vip = Ipv4Addr::new(127, 71, 0, 7);
    let svc = SocketAddrV4::new(vip, 18080);
    let mut be = backend();
    let before = table(vec![port("dns", Protocol::Udp, vip, &[a, b])]);
    be.sync_full(&before).await.unwrap();

    // A connected socket drops datagrams from any other source: an answer proves the source.
    let client = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    client.connect(svc).await.unwrap();
    let ask = || async {
        client.send(b"q").await.unwrap();
        let mut buf = [0u8; 8];
        let n = client.recv(&mut buf).await.unwrap();
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let first = ask().await;
    assert_eq!(ask().await, first, "one client address is one session");

    let (keep, name) = if first == "epa" { (b, "epb") } else { (a, "epa") };
    let after = table(vec![port("dns", Protocol::Udp, vip, &[keep])]);
    be.sync_changes(&after, &[change(&before, &after, "dns")])
        .await
        .unwrap();
    assert_eq!(ask().await, name, "the session to the removed endpoint is gone");
}
