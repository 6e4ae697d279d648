//! Whether a request goes to a canary: ingress-nginx's order, the header first, then the cookie,
//! then the weight.

use rand::Rng;

use super::annotations::Canary;
use crate::decision::{cookie, RequestView};

/// True: this request goes to the canary's backend.
pub fn wants(rule: &Canary, request: &RequestView<'_>) -> bool {
    if let Some(name) = &rule.header {
        if let Some(v) = request.headers.get(name.as_str()).and_then(|v| v.to_str().ok()) {
            match &rule.header_value {
                Some(want) if v == want => return true,
                Some(_) => {}
                None if v == "always" => return true,
                None if v == "never" => return false,
                None => {}
            }
        }
    }
    if let Some(name) = &rule.cookie {
        match cookie(request.headers, name) {
            Some("always") => return true,
            Some("never") => return false,
            _ => {}
        }
    }
    rule.weight > 0 && rand::rng().random_range(0..rule.weight_total) < rule.weight
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    fn rule(weight: u32) -> Canary {
        Canary {
            header: Some("x-canary".into()),
            header_value: None,
            cookie: Some("canary".into()),
            weight,
            weight_total: 100,
        }
    }

    fn ask(rule: &Canary, headers: &[(&'static str, &'static str)]) -> bool {
        let mut map = HeaderMap::new();
        for (k, v) in headers {
            map.append(*k, v.parse().unwrap());
        }
        wants(
            rule,
            &RequestView {
                host: "h",
                path: "/",
                query: None,
                method: "GET",
                headers: &map,
                client_ip: std::net::Ipv4Addr::LOCALHOST.into(),
                tls: false,
            },
        )
    }

    #[test]
    fn the_header_decides_before_the_cookie_and_the_weight() {
        assert!(ask(&rule(0), &[("x-canary", "always")]));
        assert!(!ask(&rule(100), &[("x-canary", "never")]));
        assert!(ask(&rule(0), &[("cookie", "a=1; canary=always")]));
        assert!(!ask(&rule(100), &[("cookie", "canary=never")]));
    }

    #[test]
    fn a_header_value_sends_only_that_value_to_the_canary() {
        let mut r = rule(0);
        r.header_value = Some("beta-users".into());
        assert!(ask(&r, &[("x-canary", "beta-users")]));
        assert!(!ask(&r, &[("x-canary", "always")]));
    }

    #[test]
    fn weights_of_zero_and_all_are_never_and_always() {
        assert!((0..200).all(|_| !ask(&rule(0), &[])));
        assert!((0..200).all(|_| ask(&rule(100), &[])));
    }
}
