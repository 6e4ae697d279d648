//! Ingresses carry real traffic through the controller built into every node: port 80 and 443
//! of a node's IP answer from the host, routed by host and path to the right pods, with TLS by
//! SNI, the nginx annotations users rely on, Events for what cannot be served, and
//! configuration changes applied live without a failed request. Every request goes to a node IP
//! on a podway bridge (checked before sending) with the real curl.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::net::{assert_stays_on_machine, get_raw, nodes, ready_pods};
use common::seeds::OLD_INGRESS;
use common::{eventually, text, Cluster, Layout};

/// A one-node cluster and its node's IP, checked to stay on this machine.
fn start() -> (Cluster, Layout, String) {
    let (c, layout) = Cluster::start_nodes(1);
    let (_, ip) = nodes(&c, &layout, 1).remove(0);
    assert_stays_on_machine(&ip);
    (c, layout, ip)
}

/// A Deployment of traefik/whoami (it echoes the request line and headers) named `name`, with
/// a ClusterIP Service of the same name on port 80; waits for its pod.
fn whoami(c: &Cluster, name: &str) -> String {
    c.ok(&["create", "deployment", name, "--image=traefik/whoami"]);
    c.ok(&["expose", "deployment", name, "--port=80"]);
    ready_pods(c, &format!("app={name}"), 1).remove(0)
}

/// An answer of curl: status code, headers and body.
struct Answer {
    status: u16,
    headers: String,
    body: String,
}

/// curl with `args` (plus -sS and the output format): the answer, or None when curl fails.
fn curl(args: &[&str]) -> Option<Answer> {
    let dir = tempfile::tempdir().unwrap();
    let headers = dir.path().join("headers");
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5", "-o", "-", "-D"])
        .arg(&headers)
        .args(["-w", "\n%{http_code}"])
        .args(args)
        .output()
        .expect("curl");
    if !out.status.success() {
        return None;
    }
    let all = text(&out.stdout);
    let (body, code) = all.rsplit_once('\n')?;
    Some(Answer {
        status: code.trim().parse().ok()?,
        headers: std::fs::read_to_string(&headers).unwrap_or_default(),
        body: body.to_string(),
    })
}

/// GET `url` until the answer satisfies `want`.
fn answers(what: &str, args: &[&str], want: impl Fn(&Answer) -> bool) -> Answer {
    eventually(30, what, || curl(args).filter(|a| want(a)))
}

/// `kubectl describe ingress NAME`, once it mentions `needle`.
fn described_with(c: &Cluster, name: &str, needle: &str) -> String {
    eventually(30, &format!("describe ingress {name} shows {needle:?}"), || {
        let d = c.ok(&["describe", "ingress", name]);
        d.contains(needle).then_some(d)
    })
}

/// A self-signed certificate for `host` (openssl), as cert and key files in `dir`.
fn self_signed(dir: &Path, host: &str) -> (String, String) {
    let cert = dir.join(format!("{host}.crt")).display().to_string();
    let key = dir.join(format!("{host}.key")).display().to_string();
    let out = Command::new("openssl")
        .args([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", &key, "-out", &cert,
        ])
        .args([
            "-subj",
            &format!("/CN={host}"),
            "-addext",
            &format!("subjectAltName=DNS:{host}"),
        ])
        .output()
        .expect("openssl");
    assert!(out.status.success(), "openssl: {}", text(&out.stderr));
    (cert, key)
}

#[test]
fn seed_001_ingress_routes_each_path_to_its_deployment_through_port_80() {
    let (c, _layout, ip) = start();
    c.ok(&[
        "create",
        "deployment",
        "in-hname-pod",
        "--image=sysnet4admin/echo-hname",
    ]);
    c.ok(&["create", "deployment", "in-ip-pod", "--image=sysnet4admin/echo-ip"]);
    c.ok(&[
        "expose",
        "deployment",
        "in-hname-pod",
        "--name=hname-svc-default",
        "--port=80,443",
    ]);
    c.ok(&["expose", "deployment", "in-ip-pod", "--name=ip-svc", "--port=80,443"]);
    let applied = c.kubectl_stdin(&["apply", "-f", "-"], Some(OLD_INGRESS));
    assert!(applied.status.success(), "{}", text(&applied.stderr));
    let hname = ready_pods(&c, "app=in-hname-pod", 1).remove(0);
    ready_pods(&c, "app=in-ip-pod", 1);

    // kubectl get ingress shows the node's address, the one the host reaches.
    eventually(30, "the Ingress shows the node's address", || {
        let addr = c.ok(&[
            "get",
            "ingress",
            "ingress-nginx",
            "-o",
            "jsonpath={.status.loadBalancer.ingress[0].ip}",
        ]);
        (addr == ip).then_some(())
    });
    let root = answers("/ answers from in-hname-pod", &[&format!("http://{ip}/")], |a| {
        a.status == 200
    });
    assert_eq!(root.body.trim(), hname, "echo-hname answers its pod's name");
    let ip_page = answers("/ip answers from in-ip-pod", &[&format!("http://{ip}/ip")], |a| {
        a.status == 200
    });
    assert!(ip_page.body.contains("ip_dest:"), "{}", ip_page.body);
    assert!(!ip_page.body.contains(&hname), "{}", ip_page.body);

    // your-svc does not exist: the path answers 503 and the Ingress says why.
    let missing = curl(&[&format!("http://{ip}/your-directory")]).expect("curl /your-directory");
    assert_eq!(missing.status, 503, "{}", missing.body);
    let described = described_with(&c, "ingress-nginx", "your-svc");
    assert!(described.contains("Warning"), "{described}");
    // A path no rule matches belongs to `/`; an unknown host too (the rule has no host).
    let deep = curl(&[&format!("http://{ip}/anything/else")]).expect("curl");
    assert_eq!((deep.status, deep.body.trim()), (200, hname.as_str()));
}

#[test]
fn hosts_route_by_name_and_wildcard_and_rewrite_is_scoped_to_its_ingress() {
    let (c, _layout, ip) = start();
    let (_a, _b) = (whoami(&c, "alpha"), whoami(&c, "beta"));
    c.apply(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: hosts
spec:
  rules:
  - host: alpha.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: alpha, port: {number: 80}}}}
      - {path: /plain, pathType: Prefix, backend: {service: {name: beta, port: {number: 80}}}}
  - host: "*.wild.example.com"
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: beta, port: {number: 80}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: rewrite
  annotations:
    nginx.ingress.kubernetes.io/use-regex: "true"
    nginx.ingress.kubernetes.io/rewrite-target: /$2
spec:
  rules:
  - host: alpha.example.com
    http:
      paths:
      - {path: /something(/|$)(.*), pathType: ImplementationSpecific, backend: {service: {name: beta, port: {number: 80}}}}
"#,
    );
    let resolve = |host: &str| format!("{host}:80:{ip}");
    let get = |host: &str, path: &str| {
        let url = format!("http://{host}{path}");
        answers(&format!("{url} answers"), &["--resolve", &resolve(host), &url], |a| {
            a.status != 503
        })
    };

    let a = get("alpha.example.com", "/index.html");
    assert_eq!(a.status, 200);
    assert!(a.body.contains("GET /index.html HTTP/1.1"), "{}", a.body);
    assert!(a.body.contains("Hostname: alpha-"), "{}", a.body);
    assert!(a.body.contains("X-Forwarded-For:"), "{}", a.body);
    assert!(a.body.contains("X-Forwarded-Proto: http"), "{}", a.body);
    assert!(a.body.contains("X-Request-Id:"), "{}", a.body);

    // The regex Ingress rewrites as ingress-nginx documents.
    for (path, upstream) in [
        ("/something", "GET / HTTP/1.1"),
        ("/something/", "GET / HTTP/1.1"),
        ("/something/new", "GET /new HTTP/1.1"),
    ] {
        let r = get("alpha.example.com", path);
        assert!(r.body.contains(upstream), "{path}: {}", r.body);
        assert!(r.body.contains("Hostname: beta-"), "{path}: {}", r.body);
    }
    // The plain Prefix Ingress on the same host keeps prefix semantics: no regex, no rewrite.
    let plain = get("alpha.example.com", "/plain/x");
    assert!(plain.body.contains("GET /plain/x HTTP/1.1"), "{}", plain.body);
    let not_prefix = get("alpha.example.com", "/plainer");
    assert!(not_prefix.body.contains("Hostname: alpha-"), "{}", not_prefix.body);

    // One label under the wildcard matches; the bare domain and two labels do not.
    let w = get("a.wild.example.com", "/");
    assert!(w.body.contains("Hostname: beta-"), "{}", w.body);
    for host in ["wild.example.com", "a.b.wild.example.com", "other.example.com"] {
        let url = format!("http://{host}/");
        let r = curl(&["--resolve", &resolve(host), &url]).expect("curl");
        assert_eq!(r.status, 404, "{host}: {}", r.body);
    }
}

#[test]
fn tls_picks_the_certificate_by_sni_and_plain_http_is_redirected_with_308() {
    let (c, _layout, ip) = start();
    whoami(&c, "alpha");
    let dir = tempfile::tempdir().unwrap();
    let mut certs = Vec::new();
    for host in ["one.example.com", "two.example.com"] {
        let (cert, key) = self_signed(dir.path(), host);
        let secret = host.replace('.', "-");
        c.ok(&[
            "create",
            "secret",
            "tls",
            &secret,
            &format!("--cert={cert}"),
            &format!("--key={key}"),
        ]);
        certs.push((host, secret, cert));
    }
    let mut manifest =
        String::from("apiVersion: networking.k8s.io/v1\nkind: Ingress\nmetadata:\n  name: secure\nspec:\n  tls:\n");
    for (host, secret, _) in &certs {
        manifest += &format!("  - hosts: [{host}]\n    secretName: {secret}\n");
    }
    manifest += "  rules:\n";
    for (host, _, _) in &certs {
        manifest += &format!(
            "  - host: {host}\n    http:\n      paths:\n      - {{path: /, pathType: Prefix, backend: {{service: {{name: alpha, port: {{number: 80}}}}}}}}\n"
        );
    }
    c.apply(&manifest);

    for (host, _, cert) in &certs {
        let url = format!("https://{host}/hello");
        let resolve = format!("{host}:443:{ip}");
        let a = answers(
            &format!("{url} answers over TLS"),
            &["--cacert", cert, "--resolve", &resolve, &url],
            |a| a.status == 200,
        );
        assert!(a.body.contains("GET /hello HTTP/1.1"), "{}", a.body);
        assert!(a.body.contains("X-Forwarded-Proto: https"), "{}", a.body);
        // HTTP/2 is offered by ALPN.
        let h2 = Command::new("curl")
            .args([
                "-sS",
                "--http2",
                "--max-time",
                "5",
                "-o",
                "/dev/null",
                "-w",
                "%{http_version}",
            ])
            .args(["--cacert", cert, "--resolve", &resolve, &url])
            .output()
            .expect("curl");
        assert_eq!(text(&h2.stdout), "2", "{host} speaks HTTP/2: {}", text(&h2.stderr));
        // The plain-HTTP port sends the client to https with 308 (ssl-redirect).
        let plain = curl(&["--resolve", &format!("{host}:80:{ip}"), &format!("http://{host}/hello")]).expect("curl");
        assert_eq!(plain.status, 308, "{}", plain.headers);
        assert!(
            plain
                .headers
                .to_lowercase()
                .contains(&format!("location: https://{host}/hello")),
            "{}",
            plain.headers
        );
    }
    // Each certificate is trusted for its own name only: SNI picked the right one.
    let wrong = curl(&[
        "--cacert",
        &certs[0].2,
        "--resolve",
        &format!("two.example.com:443:{ip}"),
        "https://two.example.com/",
    ]);
    assert!(
        wrong.is_none(),
        "one.example.com's CA must not verify two.example.com's certificate"
    );
}

#[test]
fn a_backend_without_endpoints_answers_503_and_events_name_what_is_missing() {
    let (c, _layout, ip) = start();
    c.apply(
        r#"
apiVersion: v1
kind: Service
metadata:
  name: empty
spec:
  selector: {app: nothing-here}
  ports: [{port: 80}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: broken
  annotations:
    nginx.ingress.kubernetes.io/proxy-body-size: lots
    nginx.ingress.kubernetes.io/server-snippet: "return 200;"
spec:
  rules:
  - http:
      paths:
      - {path: /empty, pathType: Prefix, backend: {service: {name: empty, port: {number: 80}}}}
      - {path: /ghost, pathType: Prefix, backend: {service: {name: ghost, port: {number: 80}}}}
"#,
    );
    let empty = answers("/empty answers 503", &[&format!("http://{ip}/empty")], |a| {
        a.status == 503
    });
    assert!(empty.body.contains("503"), "{}", empty.body);
    let ghost = curl(&[&format!("http://{ip}/ghost")]).expect("curl /ghost");
    assert_eq!(ghost.status, 503);
    let nothing = curl(&[&format!("http://{ip}/elsewhere")]).expect("curl /elsewhere");
    assert_eq!(nothing.status, 404, "no rule and no default backend: 404");

    // Each problem is an Event on the Ingress: the Service without endpoints, the one that does
    // not exist, the annotation whose value does not parse, the one podway does not implement.
    let needles = ["empty", "ghost", "proxy-body-size", "server-snippet"];
    let d = eventually(30, "describe ingress broken names every problem", || {
        let d = c.ok(&["describe", "ingress", "broken"]);
        needles.iter().all(|n| d.contains(n)).then_some(d)
    });
    assert!(d.contains("Warning"), "{d}");
}

#[test]
fn a_hundred_ingress_updates_under_constant_requests_fail_none() {
    let (c, _layout, ip) = start();
    whoami(&c, "alpha");
    whoami(&c, "beta");
    c.apply(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: live
spec:
  rules:
  - http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: alpha, port: {number: 80}}}}
      - {path: /extra-0, pathType: Prefix, backend: {service: {name: beta, port: {number: 80}}}}
"#,
    );
    answers("the Ingress answers", &[&format!("http://{ip}/")], |a| a.status == 200);

    // A client sending requests back to back, new connection each, until the updates end
    // (bounded: at most 20,000 requests or 120 s).
    let done = Arc::new(AtomicBool::new(false));
    let client = {
        let (done, ip) = (done.clone(), ip.clone());
        std::thread::spawn(move || {
            let (mut sent, mut failed) = (0u32, Vec::new());
            let started = Instant::now();
            while !done.load(Ordering::Relaxed) && sent < 20_000 && started.elapsed() < Duration::from_secs(120) {
                sent += 1;
                match get_raw(&ip, 80, "/") {
                    Ok(a) if a.starts_with("HTTP/1.1 200") => {}
                    Ok(a) => failed.push(a.lines().next().unwrap_or("").to_string()),
                    Err(e) => failed.push(e.to_string()),
                }
            }
            (sent, failed)
        })
    };
    for i in 1..=100 {
        let patch = format!(r#"[{{"op":"replace","path":"/spec/rules/0/http/paths/1/path","value":"/extra-{i}"}}]"#);
        c.ok(&["patch", "ingress", "live", "--type=json", "-p", &patch]);
    }
    // The last update is live: /extra-100 goes to beta, /extra-99 falls back to `/` (alpha).
    answers(
        "/extra-100 is routed to beta",
        &[&format!("http://{ip}/extra-100")],
        |a| a.body.contains("Hostname: beta-"),
    );
    let old = curl(&[&format!("http://{ip}/extra-99")]).expect("curl /extra-99");
    assert!(old.body.contains("Hostname: alpha-"), "{}", old.body);
    done.store(true, Ordering::Relaxed);
    let (sent, failed) = client.join().unwrap();
    assert!(sent > 100, "the client kept sending during the updates ({sent})");
    assert!(
        failed.is_empty(),
        "{} of {sent} requests failed: {:?}",
        failed.len(),
        &failed[..failed.len().min(5)]
    );
}

#[test]
fn canary_by_header_and_weight_and_cookie_affinity_route_as_ingress_nginx_does() {
    let (c, _layout, ip) = start();
    whoami(&c, "alpha");
    whoami(&c, "beta");
    c.ok(&["scale", "deployment", "alpha", "--replicas=2"]);
    let alphas = ready_pods(&c, "app=alpha", 2);
    c.apply(
        r#"
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: main
  annotations:
    nginx.ingress.kubernetes.io/affinity: cookie
spec:
  rules:
  - host: canary.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: alpha, port: {number: 80}}}}
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: canary
  annotations:
    nginx.ingress.kubernetes.io/canary: "true"
    nginx.ingress.kubernetes.io/canary-by-header: X-Canary
spec:
  rules:
  - host: canary.example.com
    http:
      paths:
      - {path: /, pathType: Prefix, backend: {service: {name: beta, port: {number: 80}}}}
"#,
    );
    let resolve = format!("canary.example.com:80:{ip}");
    let url = "http://canary.example.com/";
    let get = |extra: &[&str]| {
        let mut args = vec!["--resolve", resolve.as_str()];
        args.extend_from_slice(extra);
        args.push(url);
        curl(&args).expect("curl")
    };
    // Both Deployments' endpoints are in the table once the header reaches beta.
    answers(
        "the canary answers to its header",
        &["--resolve", &resolve, "-H", "X-Canary: always", url],
        |a| a.body.contains("Hostname: beta-"),
    );
    for _ in 0..10 {
        assert!(
            get(&[]).body.contains("Hostname: alpha-"),
            "no header, weight 0: the main backend"
        );
        assert!(get(&["-H", "X-Canary: never"]).body.contains("Hostname: alpha-"));
    }

    // The affinity cookie pins a client to one alpha pod.
    let first = get(&[]);
    let set_cookie = first
        .headers
        .lines()
        .find_map(|l| {
            l.strip_prefix("set-cookie: ")
                .or_else(|| l.strip_prefix("Set-Cookie: "))
        })
        .unwrap_or_else(|| panic!("no Set-Cookie in {}", first.headers))
        .to_string();
    assert!(
        set_cookie.starts_with("INGRESSCOOKIE=") && set_cookie.contains("Path=/"),
        "{set_cookie}"
    );
    let pair = set_cookie.split(';').next().unwrap().trim().to_string();
    let pinned: Vec<String> = (0..10)
        .map(|_| {
            let a = get(&["-H", &format!("Cookie: {pair}")]);
            a.body
                .lines()
                .find(|l| l.starts_with("Hostname: "))
                .unwrap_or("")
                .to_string()
        })
        .collect();
    assert!(pinned.iter().all(|h| h == &pinned[0]), "{pinned:?}");
    assert!(
        alphas.iter().any(|p| pinned[0].ends_with(p.as_str())),
        "{pinned:?} vs {alphas:?}"
    );

    // All the weight to the canary: every request without a header goes to beta.
    c.ok(&[
        "annotate",
        "ingress",
        "canary",
        "nginx.ingress.kubernetes.io/canary-weight=100",
    ]);
    answers(
        "weight 100 sends everything to the canary",
        &["--resolve", &resolve, url],
        |a| a.body.contains("Hostname: beta-"),
    );
    for _ in 0..10 {
        assert!(get(&[]).body.contains("Hostname: beta-"));
    }
}
