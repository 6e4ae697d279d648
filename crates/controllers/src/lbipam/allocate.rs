//! Which address each LoadBalancer Service gets (pure): every claim and every pool in, one
//! decision per claim out, as MetalLB's allocator decides it.
//!
//! The plan is recomputed from scratch on every sync, so the Services' statuses are the only
//! state: an address a Service already shows is kept while it stays valid (in a pool, in the
//! pool and at the address the Service asks for, and compatible with the Services kept before
//! it), which is what makes a restart keep every address. Then the Services without one get
//! one, oldest first. Claims are taken in the order given; the caller sorts them by creation
//! time so that of two Services fighting over one address the older one keeps it.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::net::Ipv4Addr;

use super::pool::Pools;

/// `reason` of the Warning Event when a Service gets no address (MetalLB's name).
pub const ALLOCATION_FAILED: &str = "AllocationFailed";
/// `reason` of the Normal Event when a Service gets an address (MetalLB's name).
pub const IP_ALLOCATED: &str = "IPAllocated";
/// `reason` of the Normal Event when a Service's address is taken back (MetalLB's name).
pub const CLEAR_ASSIGNMENT: &str = "ClearAssignment";
/// `reason` of the Warning Event when a Service keeps its address but asks for one in a way
/// that cannot be read (MetalLB's name).
pub const LOAD_BALANCER_FAILED: &str = "LoadBalancerFailed";

/// One Service port as address sharing sees it: two Services on one address may not both
/// use the same protocol and port.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Port {
    /// `TCP`, `UDP` or `SCTP`.
    pub protocol: String,
    /// `spec.ports[].port`.
    pub port: i32,
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.protocol, self.port)
    }
}

/// The address a Service asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requested {
    /// Any address (from the `address-pool` pool if it names one).
    Any,
    /// This address (`spec.loadBalancerIP` or the `loadBalancerIPs` annotation).
    Ip(Ipv4Addr),
    /// A request that cannot be read; the text says why.
    Invalid(String),
}

/// What one LoadBalancer Service this controller manages needs, as plain data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    /// `namespace/name`, how messages name the Service.
    pub key: String,
    /// The addresses its status shows now (`status.loadBalancer.ingress[].ip`).
    pub current: Vec<Ipv4Addr>,
    /// The address it asks for.
    pub requested: Requested,
    /// The pool it asks for (`metallb.universe.tf/address-pool`).
    pub pool: Option<String>,
    /// Its sharing key (`metallb.universe.tf/allow-shared-ip`); empty: it shares with nobody.
    pub sharing_key: String,
    /// Who serves it: the selector when `externalTrafficPolicy` is `Local` (Services sharing
    /// an address must then select the same pods, since one node answers for the address),
    /// empty otherwise.
    pub backend_key: String,
    /// Its ports.
    pub ports: Vec<Port>,
}

/// An Event the caller records on the Service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// Warning (the user must act) or Normal.
    pub warning: bool,
    /// One of the reason constants of this module.
    pub reason: &'static str,
    /// The message.
    pub message: String,
}

/// What one Service's status must show, and what to tell its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The address `status.loadBalancer.ingress` must hold; `None`: none, the Service is
    /// pending (and `notes` says why).
    pub ip: Option<Ipv4Addr>,
    /// The pool the address comes from.
    pub pool: Option<String>,
    /// Events to record, in order.
    pub notes: Vec<Note>,
}

/// Who uses one address so far in the plan.
struct Use {
    sharing_key: String,
    backend_key: String,
    /// Service keys.
    users: BTreeSet<String>,
    /// Port → Service key.
    ports: HashMap<Port, String>,
}

/// The addresses handed out so far in the plan.
#[derive(Default)]
struct Ledger {
    by_ip: HashMap<Ipv4Addr, Use>,
}

impl Ledger {
    /// Whether `claim` may use `ip` next to its current users (MetalLB's sharing rules):
    /// every user has the same non-empty sharing key and backend key, and no port is used
    /// twice. The error says why not, in MetalLB's words.
    fn check(&self, claim: &Claim, ip: Ipv4Addr) -> Result<(), String> {
        let Some(u) = self.by_ip.get(&ip) else {
            return Ok(());
        };
        let shares =
            !u.sharing_key.is_empty() && u.sharing_key == claim.sharing_key && u.backend_key == claim.backend_key;
        if !shares {
            let others: Vec<&str> = u
                .users
                .iter()
                .filter(|k| **k != claim.key)
                .map(String::as_str)
                .collect();
            if !others.is_empty() {
                return Err(format!(
                    "can't change sharing key for {:?}, address also in use by {}",
                    claim.key,
                    others.join(",")
                ));
            }
        }
        for p in &claim.ports {
            if u.ports.get(p).is_some_and(|k| *k != claim.key) {
                return Err(format!("port {p} is already in use on {:?}", ip.to_string()));
            }
        }
        Ok(())
    }

    fn take(&mut self, claim: &Claim, ip: Ipv4Addr) {
        let u = self.by_ip.entry(ip).or_insert_with(|| Use {
            sharing_key: claim.sharing_key.clone(),
            backend_key: claim.backend_key.clone(),
            users: BTreeSet::new(),
            ports: HashMap::new(),
        });
        u.users.insert(claim.key.clone());
        for p in &claim.ports {
            u.ports.insert(p.clone(), claim.key.clone());
        }
    }
}

/// The decision for every claim, in the claims' order.
pub fn plan(pools: &Pools, claims: &[Claim]) -> Vec<Decision> {
    let mut ledger = Ledger::default();
    let mut decisions: Vec<Option<Decision>> = vec![None; claims.len()];
    let mut cleared: Vec<Option<Note>> = vec![None; claims.len()];

    // First every address already shown that is still valid, oldest Service first.
    for (i, claim) in claims.iter().enumerate() {
        match keep(pools, &ledger, claim) {
            Keep::Yes { ip, pool, notes } => {
                ledger.take(claim, ip);
                decisions[i] = Some(Decision {
                    ip: Some(ip),
                    pool: Some(pool),
                    notes,
                });
            }
            Keep::No(note) => cleared[i] = note,
        }
    }
    // Then a new address for the others.
    for (i, claim) in claims.iter().enumerate() {
        if decisions[i].is_some() {
            continue;
        }
        let mut notes: Vec<Note> = cleared[i].take().into_iter().collect();
        let decision = match allocate(pools, &ledger, claim) {
            Ok((ip, pool)) => {
                ledger.take(claim, ip);
                notes.push(Note {
                    warning: false,
                    reason: IP_ALLOCATED,
                    message: format!("Assigned IP [{:?}]", ip.to_string()),
                });
                Decision {
                    ip: Some(ip),
                    pool: Some(pool),
                    notes,
                }
            }
            Err(why) => {
                notes.push(Note {
                    warning: true,
                    reason: ALLOCATION_FAILED,
                    message: format!("Failed to allocate IP for {:?}: {why}", claim.key),
                });
                Decision {
                    ip: None,
                    pool: None,
                    notes,
                }
            }
        };
        decisions[i] = Some(decision);
    }
    decisions.into_iter().map(|d| d.expect("every claim decided")).collect()
}

enum Keep {
    Yes {
        ip: Ipv4Addr,
        pool: String,
        notes: Vec<Note>,
    },
    /// Not kept; the note (if any) tells the user why.
    No(Option<Note>),
}

/// Whether `claim` keeps the address its status shows.
fn keep(pools: &Pools, ledger: &Ledger, claim: &Claim) -> Keep {
    // podway's Services are single-stack IPv4: one address.
    let [ip] = claim.current[..] else {
        return Keep::No(None);
    };
    let clear = |why: String| {
        Keep::No(Some(Note {
            warning: false,
            reason: CLEAR_ASSIGNMENT,
            message: format!(
                "current IP for {:?} not allowed by config, will attempt for new IP assignment: {why}",
                claim.key
            ),
        }))
    };
    let Some(pool) = pools.pool_for(ip) else {
        return clear(format!("{:?} is not allowed in config", ip.to_string()));
    };
    if let Err(why) = ledger.check(claim, ip) {
        return clear(why);
    }
    // The user asked for another pool or address: move without a word, as MetalLB does.
    if claim.pool.as_ref().is_some_and(|p| *p != pool.name) {
        return Keep::No(None);
    }
    let mut notes = Vec::new();
    match &claim.requested {
        Requested::Ip(want) if *want != ip => return Keep::No(None),
        Requested::Invalid(why) => notes.push(Note {
            warning: true,
            reason: LOAD_BALANCER_FAILED,
            message: format!("invalid requested loadbalancer IPs: {why}"),
        }),
        _ => {}
    }
    Keep::Yes {
        ip,
        pool: pool.name.clone(),
        notes,
    }
}

/// A new address for `claim`, or why there is none.
fn allocate(pools: &Pools, ledger: &Ledger, claim: &Claim) -> Result<(Ipv4Addr, String), String> {
    match &claim.requested {
        Requested::Invalid(why) => Err(why.clone()),
        Requested::Ip(ip) => {
            let Some(pool) = pools.pool_for(*ip) else {
                return Err(format!("{:?} is not allowed in config", ip.to_string()));
            };
            ledger.check(claim, *ip)?;
            if let Some(want) = claim.pool.as_ref().filter(|p| **p != pool.name) {
                return Err(format!(
                    "requested loadBalancer IP(s) [{:?}] is not compatible with requested address pool {want}",
                    ip.to_string()
                ));
            }
            Ok((*ip, pool.name.clone()))
        }
        Requested::Any => match &claim.pool {
            Some(name) => {
                let pool = pools.get(name).ok_or_else(|| format!("unknown pool {name:?}"))?;
                let ip = pool.addresses().find(|ip| ledger.check(claim, *ip).is_ok());
                ip.map(|ip| (ip, pool.name.clone()))
                    .ok_or_else(|| format!("no available IPs in pool {name:?}"))
            }
            None => pools
                .pools
                .iter()
                .filter(|p| p.auto_assign)
                .find_map(|p| {
                    let ip = p.addresses().find(|ip| ledger.check(claim, *ip).is_ok())?;
                    Some((ip, p.name.clone()))
                })
                .ok_or_else(|| "no available IPs".to_string()),
        },
    }
}

#[cfg(test)]
#[path = "allocate_tests.rs"]
mod tests;
