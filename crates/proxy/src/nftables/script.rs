//! `nft -f` scripts: the full table, an update for changed Services, and the table's removal.
//!
//! Each script is one transaction: `nft -f` applies all of it or nothing.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use super::names::*;
use super::service::{port_rules, Element, PortRules, RenderConfig};
use crate::model::tracker::ServiceChange;
use crate::model::{ServicePort, ServiceTable};

/// The base of the table: maps, dispatch chains and the hooks. Hook priorities follow
/// kube-proxy: DNAT at `dstnat` (-100) in prerouting and output, masquerade at `srcnat` (100)
/// in postrouting, refusals at `filter - 10` in input, forward and output (reject is only
/// allowed there on older kernels).
fn base(script: &mut String) {
    let t = format!("{FAMILY} {TABLE}");
    let maps = [
        (SERVICE_IPS, "ipv4_addr . inet_proto . inet_service"),
        (SERVICE_NODEPORTS, "inet_proto . inet_service"),
        (NO_ENDPOINT_SERVICES, "ipv4_addr . inet_proto . inet_service"),
        (NO_ENDPOINT_NODEPORTS, "inet_proto . inet_service"),
    ];
    for (map, key) in maps {
        let _ = writeln!(script, "add map {t} {map} {{ type {key} : verdict ; }}");
    }
    for set in [ENDPOINT_CONNECTIONS, ENDPOINT_BYTES] {
        let _ = writeln!(script, "add set {t} {set} {{ type mark ; counter ; }}");
    }
    // Every packet of a flow an endpoint chain marked adds to the counter of that endpoint's
    // element in the bytes set (a lookup that matches updates it). Each packet passes exactly
    // one of input, forward and output, so it is counted once (a node process reaching a
    // host-network endpoint on its own node passes two).
    let count_bytes = format!("ct mark != 0 ct mark @{ENDPOINT_BYTES}");
    let chains: [(&str, Option<&str>, &[String]); 12] = [
        (
            MARK_FOR_MASQUERADE,
            None,
            &[format!("meta mark set meta mark or {MASQUERADE_MARK:#x}")],
        ),
        (
            MASQUERADING,
            None,
            &[
                format!("meta mark & {MASQUERADE_MARK:#x} == 0 return"),
                // Clear the bit so a packet that loops through again is judged afresh.
                format!("meta mark set meta mark xor {MASQUERADE_MARK:#x}"),
                "masquerade fully-random".to_string(),
            ],
        ),
        (
            REJECT,
            None,
            &[
                "meta l4proto tcp reject with tcp reset".to_string(),
                "reject".to_string(),
            ],
        ),
        (
            SERVICES,
            None,
            &[
                format!("ip daddr . meta l4proto . th dport vmap @{SERVICE_IPS}"),
                format!(
                    "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @{SERVICE_NODEPORTS}"
                ),
            ],
        ),
        (
            SERVICE_ENDPOINTS_CHECK,
            None,
            &[format!(
                "ip daddr . meta l4proto . th dport vmap @{NO_ENDPOINT_SERVICES}"
            )],
        ),
        (
            NODEPORT_ENDPOINTS_CHECK,
            None,
            &[format!(
                "fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @{NO_ENDPOINT_NODEPORTS}"
            )],
        ),
        (
            "nat-prerouting",
            Some("type nat hook prerouting priority -100"),
            &[format!("jump {SERVICES}")],
        ),
        (
            "nat-output",
            Some("type nat hook output priority -100"),
            &[format!("jump {SERVICES}")],
        ),
        (
            "nat-postrouting",
            Some("type nat hook postrouting priority 100"),
            &[format!("jump {MASQUERADING}")],
        ),
        (
            "filter-input",
            Some("type filter hook input priority -10"),
            &[
                count_bytes.clone(),
                format!("ct state new jump {NODEPORT_ENDPOINTS_CHECK}"),
                format!("ct state new jump {SERVICE_ENDPOINTS_CHECK}"),
            ],
        ),
        (
            "filter-forward",
            Some("type filter hook forward priority -10"),
            &[
                count_bytes.clone(),
                format!("ct state new jump {SERVICE_ENDPOINTS_CHECK}"),
            ],
        ),
        (
            "filter-output",
            Some("type filter hook output priority -10"),
            &[count_bytes, format!("ct state new jump {SERVICE_ENDPOINTS_CHECK}")],
        ),
    ];
    for (chain, hook, rules) in chains {
        match hook {
            Some(hook) => {
                let _ = writeln!(script, "add chain {t} {chain} {{ {hook} ; policy accept ; }}");
            }
            None => {
                let _ = writeln!(script, "add chain {t} {chain}");
            }
        }
        for rule in rules {
            let _ = writeln!(script, "add rule {t} {chain} {rule}");
        }
    }
}

/// The script that replaces whatever podway table exists with one realising `table`.
///
/// When two Service ports claim one map key (say two Services list the same externalIP and
/// port), the first by name wins, deterministically.
pub fn full(table: &ServiceTable, config: &RenderConfig) -> String {
    let mut script = removal();
    let t = format!("{FAMILY} {TABLE}");
    let _ = writeln!(script, "add table {t}");
    base(&mut script);
    let mut elements: BTreeMap<&'static str, Vec<Element>> = BTreeMap::new();
    let mut keys = BTreeSet::new();
    for port in table.ports() {
        let rules = port_rules(port, config);
        declare(&mut script, &rules);
        for chain in rules.chains.keys() {
            let _ = writeln!(script, "add chain {t} {chain}");
        }
        write_rules(&mut script, &rules);
        for e in rules.all_elements() {
            if keys.insert((e.map, e.key.clone())) {
                elements.entry(e.map).or_default().push(e);
            }
        }
    }
    for (map, elements) in elements {
        // One statement per map and chunk: nft parses large element lists far faster than
        // thousands of single statements.
        for chunk in elements.chunks(1000) {
            let list: Vec<String> = chunk.iter().map(Element::body).collect();
            let _ = writeln!(script, "add element {t} {map} {{ {} }}", list.join(", "));
        }
    }
    script
}

/// The script that moves the table from each change's previous ports to its current ones,
/// touching nothing else: stale elements are deleted, the Service's chains flushed and refilled,
/// vanished chains and sets deleted, new elements added. Empty when nothing changed.
///
/// Assumes the table holds exactly what the previous render put there; after a failed apply
/// the caller must render [`full`] instead.
pub fn incremental(changes: &[ServiceChange], config: &RenderConfig) -> String {
    let t = format!("{FAMILY} {TABLE}");
    let render = |ports: &[ServicePort]| {
        let mut all = PortRules::default();
        for port in ports {
            let r = port_rules(port, config);
            all.chains.extend(r.chains);
            all.sets.extend(r.sets);
            all.elements.extend(r.elements);
            all.endpoint_marks.extend(r.endpoint_marks);
        }
        all
    };
    let (mut deletes, mut flushes, mut set_deletes, mut chain_deletes) =
        (String::new(), String::new(), String::new(), String::new());
    let (mut body, mut adds) = (String::new(), String::new());
    for change in changes {
        let old = render(&change.previous);
        let new = render(&change.current);
        if old == new {
            continue;
        }
        let (old_elements, new_elements): (Vec<Element>, Vec<Element>) =
            (old.all_elements().collect(), new.all_elements().collect());
        for e in old_elements.iter().filter(|e| !new_elements.contains(e)) {
            let _ = writeln!(deletes, "delete element {t} {} {{ {} }}", e.map, e.key);
        }
        for e in new_elements.iter().filter(|e| !old_elements.contains(e)) {
            let _ = writeln!(adds, "add element {t} {} {{ {} }}", e.map, e.body());
        }
        for chain in old.chains.keys() {
            let _ = writeln!(flushes, "flush chain {t} {chain}");
            if !new.chains.contains_key(chain) {
                let _ = writeln!(chain_deletes, "delete chain {t} {chain}");
            }
        }
        // A set whose timeout changed is recreated: nft cannot change it in place. The chains
        // using it were flushed above, so nothing refers to it when it goes.
        for (set, timeout) in &old.sets {
            if new.sets.get(set) != Some(timeout) {
                let _ = writeln!(set_deletes, "delete set {t} {set}");
            }
        }
        for (set, timeout) in &new.sets {
            if old.sets.get(set) != Some(timeout) {
                declare_set(&mut body, set, *timeout);
            }
        }
        for chain in new.chains.keys().filter(|c| !old.chains.contains_key(*c)) {
            let _ = writeln!(body, "add chain {t} {chain}");
        }
        write_rules(&mut body, &new);
    }
    [deletes, flushes, set_deletes, body, chain_deletes, adds].concat()
}

/// The script that removes the podway table (and with it every rule podway installed). It
/// succeeds whether or not the table exists.
pub fn removal() -> String {
    format!("add table {FAMILY} {TABLE}\ndelete table {FAMILY} {TABLE}\n")
}

fn declare(script: &mut String, rules: &PortRules) {
    for (set, timeout) in &rules.sets {
        declare_set(script, set, *timeout);
    }
}

fn declare_set(script: &mut String, set: &str, timeout: u32) {
    let _ = writeln!(
        script,
        "add set {FAMILY} {TABLE} {set} {{ type ipv4_addr ; flags dynamic,timeout ; timeout {timeout}s ; }}"
    );
}

fn write_rules(script: &mut String, rules: &PortRules) {
    for (chain, lines) in &rules.chains {
        for rule in lines {
            let _ = writeln!(script, "add rule {FAMILY} {TABLE} {chain} {rule}");
        }
    }
}

#[cfg(test)]
#[path = "script_tests.rs"]
mod tests;
