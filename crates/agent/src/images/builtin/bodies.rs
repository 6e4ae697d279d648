//! The response bodies of the request-echoing images: pure functions of the request.

use std::net::IpAddr;

use super::http::Request;

/// Go's canonical header key (`x-forwarded-for` → `X-Forwarded-For`); keys with characters
/// outside a token are left alone, as Go does.
pub(crate) fn canonical_header(name: &str) -> String {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if !name.bytes().all(token) {
        return name.to_string();
    }
    let mut upper = true;
    name.chars()
        .map(|c| {
            let out = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            out
        })
        .collect()
}

/// The request's headers as Go's server keeps them: canonical keys, sorted by key (values of
/// one key in arrival order), without Host (it becomes `r.Host`) and Transfer-Encoding.
fn go_headers(req: &Request) -> Vec<(String, &str)> {
    let mut headers: Vec<(String, &str)> = req
        .headers
        .iter()
        .map(|(k, v)| (canonical_header(k), v.as_str()))
        .filter(|(k, _)| k != "Host" && k != "Transfer-Encoding")
        .collect();
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    headers
}

fn host_header(req: &Request) -> &str {
    req.header("host").unwrap_or("")
}

/// kicbase/echo-server (jmalloc/echo-server 0.3): `Request served by`, the request line as
/// `HTTP/1.1 GET /`, Host, the headers, the body after a blank line.
pub(crate) fn echo_server(req: &Request, hostname: Option<&str>) -> String {
    let mut s = String::new();
    if let Some(h) = hostname {
        s.push_str(&format!("Request served by {h}\n\n"));
    }
    s.push_str(&format!("{} {} {}\n\n", req.version, req.method, req.target));
    s.push_str(&format!("Host: {}\n", host_header(req)));
    for (k, v) in go_headers(req) {
        s.push_str(&format!("{k}: {v}\n"));
    }
    if !req.body.is_empty() {
        s.push('\n');
        s.push_str(&String::from_utf8_lossy(&req.body));
    }
    s
}

/// nginx's `$host`: the Host header without its port, lower case.
fn nginx_host(req: &Request) -> String {
    let host = host_header(req);
    let host = if host.starts_with('[') {
        host.split_once(']').map_or(host.to_string(), |(h, _)| format!("{h}]"))
    } else {
        host.split(':').next().unwrap_or("").to_string()
    };
    if host.is_empty() {
        req.local.ip().to_canonical().to_string()
    } else {
        host.to_ascii_lowercase()
    }
}

/// The headers as ngx.req.get_headers() gives them: lower-case names, sorted.
fn lua_headers(req: &Request) -> Vec<(String, &str)> {
    let mut headers: Vec<(String, &str)> = req
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str()))
        .collect();
    headers.sort_by(|a, b| a.0.cmp(&b.0));
    headers
}

fn request_uri(req: &Request) -> String {
    format!("http://{}:{}{}", nginx_host(req), req.local.port(), req.target)
}

fn http_version(req: &Request) -> &str {
    req.version.strip_prefix("HTTP/").unwrap_or(&req.version)
}

/// registry.k8s.io/echoserver up to 1.4.
pub(crate) fn echoserver_legacy(req: &Request) -> String {
    let mut s = format!(
        "CLIENT VALUES:\nclient_address={}\ncommand={}\nreal path={}\nquery={}\nrequest_version={}\nrequest_uri={}\n\n\
         SERVER VALUES:\nserver_version=nginx: 1.10.0 - lua: 10001\n\nHEADERS RECEIVED:\n",
        req.remote.ip().to_canonical(),
        req.method,
        req.path(),
        req.query().unwrap_or("nil"),
        http_version(req),
        request_uri(req),
    );
    for (k, v) in lua_headers(req) {
        s.push_str(&format!("{k}={v}\n"));
    }
    s.push_str("BODY:\n");
    if req.body.is_empty() {
        s.push_str("-no body in request-");
    } else {
        s.push_str(&String::from_utf8_lossy(&req.body));
    }
    s
}

/// registry.k8s.io/echoserver 1.5 and later (1.10 is the one tutorials use). The pod
/// information comes from the downward-API variables a manifest may set.
pub(crate) fn echoserver(req: &Request, hostname: &str, pod_info: &[(&str, Option<String>)]) -> String {
    let mut s = format!("\n\nHostname: {hostname}\n\nPod Information:\n");
    if pod_info.iter().any(|(_, v)| v.is_some()) {
        let value = |key: &str| {
            pod_info
                .iter()
                .find(|(k, _)| *k == key)
                .and_then(|(_, v)| v.clone())
                .unwrap_or_else(|| "N/A".into())
        };
        s.push_str(&format!(
            "\tnode name:\t{}\n\tpod name:\t{}\n\tpod namespace:\t{}\n\tpod IP:\t{}\n",
            value("NODE_NAME"),
            value("POD_NAME"),
            value("POD_NAMESPACE"),
            value("POD_IP")
        ));
    } else {
        s.push_str("\t-no pod information available-\n");
    }
    s.push_str(&format!(
        "\nServer values:\n\tserver_version=nginx: 1.13.3 - lua: 10008\n\nRequest Information:\n\tclient_address={}\n\
         \tmethod={}\n\treal path={}\n\tquery={}\n\trequest_version={}\n\trequest_scheme=http\n\trequest_uri={}\n\n\
         Request Headers:\n",
        req.remote.ip().to_canonical(),
        req.method,
        req.path(),
        req.query().unwrap_or(""),
        http_version(req),
        request_uri(req),
    ));
    for (k, v) in lua_headers(req) {
        s.push_str(&format!("\t{k}={v}\n"));
    }
    s.push_str("\nRequest Body:\n");
    if req.body.is_empty() {
        s.push_str("\t-no body in request-\n");
    } else {
        s.push('\t');
        s.push_str(&String::from_utf8_lossy(&req.body));
        s.push('\n');
    }
    s.push('\n');
    s
}

/// traefik/whoami's `/`: name, hostname, every interface address, the remote address, then the
/// request as Go's `Request.Write` prints it (CRLF lines, Host and User-Agent first).
pub(crate) fn whoami(req: &Request, hostname: &str, ips: &[IpAddr], name: Option<&str>, env: bool) -> String {
    let mut s = String::new();
    if let Some(name) = name {
        s.push_str(&format!("Name: {name}\n"));
    }
    s.push_str(&format!("Hostname: {hostname}\n"));
    for ip in ips {
        s.push_str(&format!("IP: {ip}\n"));
    }
    s.push_str(&format!("RemoteAddr: {}\n", remote_addr(req)));
    s.push_str(&format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\n",
        req.method,
        req.target,
        host_header(req)
    ));
    s.push_str(&format!(
        "User-Agent: {}\r\n",
        req.header("user-agent").unwrap_or("Go-http-client/1.1")
    ));
    if !req.body.is_empty() {
        s.push_str(&format!("Content-Length: {}\r\n", req.body.len()));
    }
    for (k, v) in go_headers(req) {
        if k != "User-Agent" && k != "Content-Length" && k != "Trailer" {
            s.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    s.push_str("\r\n");
    s.push_str(&String::from_utf8_lossy(&req.body));
    if env {
        for (k, v) in std::env::vars() {
            s.push_str(&format!("{k}={v}\n"));
        }
    }
    s
}

/// Go's `RemoteAddr`: `ip:port`, IPv4-mapped IPv6 shown as IPv4.
fn remote_addr(req: &Request) -> String {
    std::net::SocketAddr::new(req.remote.ip().to_canonical(), req.remote.port()).to_string()
}

/// traefik/whoami's `/api`: the same information as JSON.
pub(crate) fn whoami_api(req: &Request, hostname: &str, ips: &[IpAddr], name: Option<&str>, env: bool) -> String {
    use serde_json::{Map, Value};
    let mut headers: Map<String, Value> = Map::new();
    for (k, v) in go_headers(req) {
        let entry = headers.entry(k).or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(values) = entry {
            values.push(Value::String(v.to_string()));
        }
    }
    let mut data = Map::new();
    data.insert("hostname".into(), hostname.into());
    if !ips.is_empty() {
        data.insert(
            "ip".into(),
            ips.iter().map(|ip| Value::String(ip.to_string())).collect(),
        );
    }
    if !headers.is_empty() {
        data.insert("headers".into(), Value::Object(headers));
    }
    data.insert("url".into(), req.target.clone().into());
    data.insert("host".into(), host_header(req).into());
    data.insert("method".into(), req.method.clone().into());
    if let Some(name) = name {
        data.insert("name".into(), name.into());
    }
    data.insert("remoteAddr".into(), remote_addr(req).into());
    if env {
        let mut vars: Vec<(String, String)> = std::env::vars().collect();
        vars.sort();
        data.insert(
            "environ".into(),
            Value::Object(vars.into_iter().map(|(k, v)| (k, Value::String(v))).collect()),
        );
    }
    format!("{}\n", Value::Object(data))
}

/// traefik/whoami's `/data?size=N`: `|` then a repeating `-ABC…Z` pattern, ending in `|`.
pub(crate) fn whoami_data(size: usize) -> Vec<u8> {
    const CHARSET: &[u8] = b"-ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    if size < 2 {
        return Vec::new();
    }
    let mut out: Vec<u8> = (0..size).map(|i| CHARSET[i % CHARSET.len()]).collect();
    out[0] = b'|';
    out[size - 1] = b'|';
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(headers: &[(&str, &str)], body: &str) -> Request {
        Request {
            method: "GET".into(),
            target: "/hello?x=1".into(),
            version: "HTTP/1.1".into(),
            headers: headers.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            body: body.as_bytes().to_vec(),
            remote: "10.244.0.1:51234".parse().unwrap(),
            local: "10.244.1.5:8080".parse().unwrap(),
        }
    }

    const CURL: &[(&str, &str)] = &[
        ("Host", "192.168.49.2:32749"),
        ("User-Agent", "curl/8.5.0"),
        ("Accept", "*/*"),
    ];

    #[test]
    fn echo_server_prints_like_minikubes_hello_minikube() {
        assert_eq!(
            echo_server(&request(CURL, ""), Some("hello-minikube-1")),
            "Request served by hello-minikube-1\n\nHTTP/1.1 GET /hello?x=1\n\nHost: 192.168.49.2:32749\n\
             Accept: */*\nUser-Agent: curl/8.5.0\n"
        );
        assert_eq!(
            echo_server(&request(&[("host", "h")], "data"), None),
            "HTTP/1.1 GET /hello?x=1\n\nHost: h\n\ndata"
        );
    }

    #[test]
    fn echoserver_1_10_prints_hostname_request_and_headers() {
        let body = echoserver(&request(CURL, ""), "hello-7df785b6bb-kjtnt", &[("POD_NAME", None)]);
        let expected = "\n\nHostname: hello-7df785b6bb-kjtnt\n\nPod Information:\n\t-no pod information available-\n\n\
            Server values:\n\tserver_version=nginx: 1.13.3 - lua: 10008\n\nRequest Information:\n\t\
            client_address=10.244.0.1\n\tmethod=GET\n\treal path=/hello\n\tquery=x=1\n\trequest_version=1.1\n\t\
            request_scheme=http\n\trequest_uri=http://192.168.49.2:8080/hello?x=1\n\nRequest Headers:\n\t\
            accept=*/*\n\thost=192.168.49.2:32749\n\tuser-agent=curl/8.5.0\n\nRequest Body:\n\t-no body in request-\n\n";
        assert_eq!(body, expected);
        let with_pod = echoserver(
            &request(CURL, ""),
            "h",
            &[("POD_NAME", Some("p".into())), ("NODE_NAME", None)],
        );
        assert!(with_pod.contains("\tnode name:\tN/A\n\tpod name:\tp\n"), "{with_pod}");
    }

    #[test]
    fn echoserver_1_4_prints_client_server_headers_and_body() {
        let body = echoserver_legacy(&request(CURL, "payload"));
        assert!(
            body.starts_with("CLIENT VALUES:\nclient_address=10.244.0.1\ncommand=GET\nreal path=/hello\nquery=x=1\n")
        );
        assert!(body.contains(
            "\nSERVER VALUES:\nserver_version=nginx: 1.10.0 - lua: 10001\n\nHEADERS RECEIVED:\naccept=*/*\n"
        ));
        assert!(body.ends_with("user-agent=curl/8.5.0\nBODY:\npayload"), "{body}");
        let mut no_query = request(CURL, "");
        no_query.target = "/".into();
        assert!(echoserver_legacy(&no_query).contains("query=nil\n"));
        assert!(echoserver_legacy(&no_query).ends_with("BODY:\n-no body in request-"));
    }

    #[test]
    fn whoami_prints_host_information_then_the_request_as_go_writes_it() {
        let ips: Vec<IpAddr> = vec!["127.0.0.1".parse().unwrap(), "10.244.1.5".parse().unwrap()];
        let req = request(
            &[
                ("Host", "whoami.local"),
                ("x-forwarded-for", "1.2.3.4"),
                ("Accept", "*/*"),
            ],
            "",
        );
        assert_eq!(
            whoami(&req, "whoami-6d9d", &ips, Some("iamfoo"), false),
            "Name: iamfoo\nHostname: whoami-6d9d\nIP: 127.0.0.1\nIP: 10.244.1.5\nRemoteAddr: 10.244.0.1:51234\n\
             GET /hello?x=1 HTTP/1.1\r\nHost: whoami.local\r\nUser-Agent: Go-http-client/1.1\r\nAccept: */*\r\n\
             X-Forwarded-For: 1.2.3.4\r\n\r\n"
        );
        let api = whoami_api(&req, "h", &ips, None, false);
        let v: serde_json::Value = serde_json::from_str(&api).unwrap();
        assert_eq!(v["headers"]["X-Forwarded-For"][0], "1.2.3.4");
        assert_eq!(v["remoteAddr"], "10.244.0.1:51234");
        assert_eq!(v["ip"][1], "10.244.1.5");
    }

    #[test]
    fn whoami_data_has_the_requested_size_and_frame() {
        assert_eq!(whoami_data(5), b"|ABC|");
        assert!(whoami_data(1).is_empty());
        assert_eq!(whoami_data(100).len(), 100);
    }

    #[test]
    fn header_keys_are_canonicalised_like_go() {
        assert_eq!(canonical_header("x-forwarded-for"), "X-Forwarded-For");
        assert_eq!(canonical_header("USER-AGENT"), "User-Agent");
        assert_eq!(canonical_header("bad key"), "bad key");
    }
}
