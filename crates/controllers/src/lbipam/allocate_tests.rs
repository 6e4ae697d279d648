use super::*;
use crate::lbipam::pool::{IpRange, Pool};

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn pools(spec: &[(&str, &str, bool)]) -> Pools {
    Pools {
        pools: spec
            .iter()
            .map(|(name, range, auto)| Pool {
                auto_assign: *auto,
                ..Pool::new(name, vec![range.parse::<IpRange>().unwrap()])
            })
            .collect(),
    }
}

/// A Cluster-policy Service on TCP/80 asking for any address.
fn claim(key: &str) -> Claim {
    Claim {
        key: format!("default/{key}"),
        current: vec![],
        requested: Requested::Any,
        pool: None,
        sharing_key: String::new(),
        backend_key: String::new(),
        ports: vec![tcp(80)],
    }
}

fn tcp(port: i32) -> Port {
    Port {
        protocol: "TCP".into(),
        port,
    }
}

fn showing(mut c: Claim, addr: &str) -> Claim {
    c.current = vec![ip(addr)];
    c
}

fn asking(mut c: Claim, addr: &str) -> Claim {
    c.requested = Requested::Ip(ip(addr));
    c
}

fn sharing(mut c: Claim, key: &str, port: i32) -> Claim {
    c.sharing_key = key.into();
    c.ports = vec![tcp(port)];
    c
}

fn in_pool(mut c: Claim, pool: &str) -> Claim {
    c.pool = Some(pool.into());
    c
}

/// What each claim ends up with: its address, or the reason and message of its last note.
fn outcome(d: &Decision) -> String {
    match (d.ip, d.notes.last()) {
        (Some(ip), _) => ip.to_string(),
        (None, Some(n)) => format!("{}: {}", n.reason, n.message),
        (None, None) => "pending without a word".into(),
    }
}

#[test]
fn each_case_gives_every_claim_the_expected_address_or_reason() {
    let two = pools(&[("default", "10.0.0.1-10.0.0.2", true)]);
    let with_lab = pools(&[
        ("default", "10.0.0.1-10.0.0.2", true),
        ("lab", "10.9.0.1-10.9.0.1", false),
    ]);
    let none = Pools::default();
    let cases: Vec<(&str, &Pools, Vec<Claim>, Vec<&str>)> = vec![
        (
            "new services get the lowest free addresses in order",
            &two,
            vec![claim("a"), claim("b")],
            vec!["10.0.0.1", "10.0.0.2"],
        ),
        (
            "an exhausted pool leaves the last service pending with MetalLB's reason",
            &two,
            vec![claim("a"), claim("b"), claim("c")],
            vec![
                "10.0.0.1",
                "10.0.0.2",
                "AllocationFailed: Failed to allocate IP for \"default/c\": no available IPs",
            ],
        ),
        (
            "an address already shown is kept, so a newer service takes the next one",
            &two,
            vec![claim("new"), showing(claim("old"), "10.0.0.1")],
            vec!["10.0.0.2", "10.0.0.1"],
        ),
        (
            "a requested address is honoured",
            &two,
            vec![asking(claim("a"), "10.0.0.2"), claim("b")],
            vec!["10.0.0.2", "10.0.0.1"],
        ),
        (
            "a requested address outside every pool is refused",
            &two,
            vec![asking(claim("a"), "192.0.2.1")],
            vec!["AllocationFailed: Failed to allocate IP for \"default/a\": \"192.0.2.1\" is not allowed in config"],
        ),
        (
            "a requested address another service holds is refused",
            &two,
            vec![showing(claim("a"), "10.0.0.1"), asking(claim("b"), "10.0.0.1")],
            vec![
                "10.0.0.1",
                "AllocationFailed: Failed to allocate IP for \"default/b\": can't change sharing key for \"default/b\", address also in use by default/a",
            ],
        ),
        (
            "services with one sharing key and distinct ports share an address",
            &two,
            vec![sharing(claim("a"), "k", 80), sharing(claim("b"), "k", 443)],
            vec!["10.0.0.1", "10.0.0.1"],
        ),
        (
            "services with one sharing key but the same port do not share",
            &two,
            vec![sharing(claim("a"), "k", 80), asking(sharing(claim("b"), "k", 80), "10.0.0.1")],
            vec![
                "10.0.0.1",
                "AllocationFailed: Failed to allocate IP for \"default/b\": port TCP/80 is already in use on \"10.0.0.1\"",
            ],
        ),
        (
            "services with different sharing keys do not share",
            &two,
            vec![sharing(claim("a"), "k", 80), sharing(claim("b"), "other", 443)],
            vec!["10.0.0.1", "10.0.0.2"],
        ),
        (
            "local services with one sharing key but different selectors do not share",
            &two,
            vec![
                Claim {
                    backend_key: "app=a".into(),
                    ..sharing(claim("a"), "k", 80)
                },
                Claim {
                    backend_key: "app=b".into(),
                    ..asking(sharing(claim("b"), "k", 443), "10.0.0.1")
                },
            ],
            vec![
                "10.0.0.1",
                "AllocationFailed: Failed to allocate IP for \"default/b\": can't change sharing key for \"default/b\", address also in use by default/a",
            ],
        ),
        (
            "a pool without autoAssign serves only services that name it",
            &with_lab,
            vec![claim("a"), claim("b"), claim("c"), in_pool(claim("d"), "lab")],
            vec![
                "10.0.0.1",
                "10.0.0.2",
                "AllocationFailed: Failed to allocate IP for \"default/c\": no available IPs",
                "10.9.0.1",
            ],
        ),
        (
            "a full named pool and an unknown pool are both reported by name",
            &with_lab,
            vec![in_pool(claim("a"), "lab"), in_pool(claim("b"), "lab"), in_pool(claim("c"), "nope")],
            vec![
                "10.9.0.1",
                "AllocationFailed: Failed to allocate IP for \"default/b\": no available IPs in pool \"lab\"",
                "AllocationFailed: Failed to allocate IP for \"default/c\": unknown pool \"nope\"",
            ],
        ),
        (
            "a requested address in another pool than the one named is refused",
            &with_lab,
            vec![in_pool(asking(claim("a"), "10.0.0.1"), "lab")],
            vec!["AllocationFailed: Failed to allocate IP for \"default/a\": requested loadBalancer IP(s) [\"10.0.0.1\"] is not compatible with requested address pool lab"],
        ),
        (
            "an invalid request is reported and gets no address",
            &two,
            vec![Claim {
                requested: Requested::Invalid("invalid spec.loadBalancerIP \"ten\"".into()),
                ..claim("a")
            }],
            vec!["AllocationFailed: Failed to allocate IP for \"default/a\": invalid spec.loadBalancerIP \"ten\""],
        ),
        (
            "with no pools at all every service is pending with a reason",
            &none,
            vec![claim("a")],
            vec!["AllocationFailed: Failed to allocate IP for \"default/a\": no available IPs"],
        ),
    ];
    for (name, pools, claims, want) in cases {
        let got: Vec<String> = plan(pools, &claims).iter().map(outcome).collect();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn replanning_from_the_written_statuses_changes_nothing_so_a_restart_keeps_every_address() {
    let pools = pools(&[("default", "10.0.0.1-10.0.0.3", true)]);
    let claims = vec![
        asking(claim("pinned"), "10.0.0.3"),
        claim("a"),
        sharing(claim("b"), "k", 80),
        sharing(claim("c"), "k", 443),
    ];
    let first = plan(&pools, &claims);
    let shown: Vec<Claim> = claims
        .iter()
        .zip(&first)
        .map(|(c, d)| Claim {
            current: d.ip.into_iter().collect(),
            ..c.clone()
        })
        .collect();
    // Another order too: a restarted controller may list the Services differently.
    let mut reordered = shown.clone();
    reordered.reverse();
    for claims in [shown, reordered] {
        for (c, d) in claims.iter().zip(plan(&pools, &claims)) {
            assert_eq!(d.ip, c.current.first().copied(), "{}", c.key);
            assert!(d.notes.is_empty(), "a kept address makes no event: {:?}", d.notes);
        }
    }
}

#[test]
fn a_new_address_is_announced_with_an_ip_allocated_event() {
    let d = &plan(&pools(&[("default", "10.0.0.1-10.0.0.1", true)]), &[claim("a")])[0];
    assert_eq!(d.pool.as_deref(), Some("default"));
    assert_eq!(
        d.notes,
        vec![Note {
            warning: false,
            reason: IP_ALLOCATED,
            message: "Assigned IP [\"10.0.0.1\"]".into()
        }]
    );
}

#[test]
fn an_address_outside_the_pools_is_cleared_with_an_event_and_replaced() {
    let d = &plan(
        &pools(&[("default", "10.0.0.1-10.0.0.1", true)]),
        &[showing(claim("a"), "10.7.7.7")],
    )[0];
    assert_eq!(d.ip, Some(ip("10.0.0.1")));
    assert_eq!(d.notes[0].reason, CLEAR_ASSIGNMENT);
    assert_eq!(
        d.notes[0].message,
        "current IP for \"default/a\" not allowed by config, will attempt for new IP assignment: \"10.7.7.7\" is not allowed in config"
    );
    assert_eq!(d.notes[1].reason, IP_ALLOCATED);
}

#[test]
fn of_two_services_showing_one_address_the_first_keeps_it_and_the_second_moves() {
    let claims = [showing(claim("old"), "10.0.0.1"), showing(claim("copy"), "10.0.0.1")];
    let d = plan(&pools(&[("default", "10.0.0.1-10.0.0.2", true)]), &claims);
    assert_eq!(d[0].ip, Some(ip("10.0.0.1")));
    assert_eq!(d[1].ip, Some(ip("10.0.0.2")));
    assert_eq!(d[1].notes[0].reason, CLEAR_ASSIGNMENT);
}

#[test]
fn changing_the_requested_address_or_pool_moves_the_service_without_a_clear_event() {
    let pools = pools(&[
        ("default", "10.0.0.1-10.0.0.2", true),
        ("lab", "10.9.0.1-10.9.0.2", true),
    ]);
    let claims = [
        asking(showing(claim("a"), "10.0.0.1"), "10.0.0.2"),
        in_pool(showing(claim("b"), "10.0.0.1"), "lab"),
    ];
    let d = plan(&pools, &claims);
    assert_eq!(d[0].ip, Some(ip("10.0.0.2")));
    assert_eq!(d[1].ip, Some(ip("10.9.0.1")));
    for d in &d {
        assert_eq!(d.notes.iter().map(|n| n.reason).collect::<Vec<_>>(), [IP_ALLOCATED]);
    }
}

#[test]
fn an_unreadable_request_keeps_the_current_address_and_warns() {
    let c = Claim {
        requested: Requested::Invalid("invalid spec.loadBalancerIP \"ten\"".into()),
        ..showing(claim("a"), "10.0.0.1")
    };
    let d = &plan(&pools(&[("default", "10.0.0.1-10.0.0.2", true)]), &[c])[0];
    assert_eq!(d.ip, Some(ip("10.0.0.1")));
    assert_eq!(d.notes[0].reason, LOAD_BALANCER_FAILED);
    assert!(d.notes[0].warning);
}

#[test]
fn a_freed_address_goes_to_the_pending_service() {
    let pools = pools(&[("default", "10.0.0.1-10.0.0.1", true)]);
    let before = plan(&pools, &[showing(claim("a"), "10.0.0.1"), claim("b")]);
    assert_eq!(before[1].ip, None);
    // `a` is deleted: its address is no longer claimed by anyone.
    let after = plan(&pools, &[claim("b")]);
    assert_eq!(after[0].ip, Some(ip("10.0.0.1")));
}
