//! The built-in images: their command lines and what they answer. Each answers like the real
//! image (text, status, headers that matter, logs); the sources are named on each variant.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;
use std::time::Duration;

use super::flags::{self, Flag, FlagError};
use super::http::{Request, Response};

const GO_TEXT: &str = "text/plain; charset=utf-8";

/// Which image, with its settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kind {
    /// sysnet4admin/echo-hname: nginx answering `$hostname\n` on port 80.
    EchoHname,
    /// sysnet4admin/echo-ip: nginx answering `request_method : GET | ip_dest: $server_addr\n`.
    EchoIp,
    /// traefik/whoami: host and request information (port 80, `--port`, `WHOAMI_PORT_NUMBER`).
    Whoami { name: Option<String>, verbose: bool },
    /// hashicorp/http-echo: `-text` (or `ECHO_TEXT`) on `-listen` (`:5678`), `-status-code`.
    HttpEcho { text: String, status: u16 },
    /// registry.k8s.io/echoserver: the request as nginx/lua sees it, port 8080. `legacy` is the
    /// format of 1.4 and before (`CLIENT VALUES:`…).
    Echoserver {
        legacy: bool,
        pod_info: Vec<(&'static str, Option<String>)>,
    },
    /// kicbase/echo-server (jmalloc/echo-server): `Request served by <hostname>` and the
    /// request; `PORT` (8080).
    EchoServer {
        send_hostname: bool,
        send_headers: Vec<(String, String)>,
    },
    /// Google's hello-app: `Hello, world!`, its version, the hostname; `PORT` (8080).
    HelloApp { version: &'static str },
}

/// A configured built-in image, ready to serve.
#[derive(Debug)]
pub(crate) struct App {
    pub kind: Kind,
    pub listen: SocketAddr,
    pub hostname: String,
    pub ips: Vec<IpAddr>,
    /// whoami's `/health` status, changed by POSTing a number.
    health: Mutex<u16>,
}

/// What the command line asks for.
#[derive(Debug)]
pub(crate) enum Start {
    /// Serve.
    Serve(App),
    /// Print and exit without serving (`-version`, a bad flag, a missing `-text`).
    Exit { code: i32, stdout: String, stderr: String },
}

/// Where the process is: hostname and addresses (taken once at start).
pub(crate) struct Host {
    pub hostname: String,
    pub ips: Vec<IpAddr>,
}

fn exit(code: i32, stderr: impl Into<String>) -> Start {
    Start::Exit {
        code,
        stdout: String::new(),
        stderr: stderr.into(),
    }
}

fn flag_exit(program: &str, error: FlagError, usage: &str) -> Start {
    match error {
        FlagError::Help => exit(0, format!("Usage of {program}:\n{usage}")),
        e => exit(2, format!("{e}\nUsage of {program}:\n{usage}")),
    }
}

fn any_addr(port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)
}

/// Go's `":port"`, `"host:port"` listen addresses.
fn parse_listen(value: &str) -> Option<SocketAddr> {
    let (host, port) = value.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let ip = match host.trim_start_matches('[').trim_end_matches(']') {
        "" | "0.0.0.0" => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
        literal => literal.parse().ok()?,
    };
    Some(SocketAddr::new(ip, port))
}

/// Configure the built-in image `name` from its arguments and environment.
pub(crate) fn configure(
    name: &str,
    args: &[String],
    env: &dyn Fn(&str) -> Option<String>,
    host: Host,
) -> Result<Start, String> {
    let env_port = |default: u16| -> Result<u16, Start> {
        match env("PORT").filter(|p| !p.is_empty()) {
            None => Ok(default),
            Some(p) => p
                .parse()
                .map_err(|_| exit(1, format!("listen tcp: address {p}: invalid port"))),
        }
    };
    let (kind, listen) = match name {
        // nginx-based: the arguments are nginx's (`-g 'daemon off;'`), which mean nothing here.
        "echo-hname" => (Kind::EchoHname, any_addr(80)),
        "echo-ip" => (Kind::EchoIp, any_addr(80)),
        "echoserver" | "echoserver-1.4" => {
            let pod_info = ["NODE_NAME", "POD_NAME", "POD_NAMESPACE", "POD_IP"]
                .map(|k| (k, env(k)))
                .to_vec();
            (
                Kind::Echoserver {
                    legacy: name == "echoserver-1.4",
                    pod_info,
                },
                any_addr(8080),
            )
        }
        "whoami" => {
            const FLAGS: &[Flag] = &[
                Flag {
                    name: "verbose",
                    is_bool: true,
                },
                Flag {
                    name: "cert",
                    is_bool: false,
                },
                Flag {
                    name: "key",
                    is_bool: false,
                },
                Flag {
                    name: "cacert",
                    is_bool: false,
                },
                Flag {
                    name: "port",
                    is_bool: false,
                },
                Flag {
                    name: "name",
                    is_bool: false,
                },
            ];
            const USAGE: &str = "  -cacert string\n    \tgive me a CA chain, enforces mutual TLS\n  -cert string\n    \tgive me a certificate\n  -key string\n    \tgive me a key\n  -name string\n    \tgive me a name\n  -port string\n    \tgive me a port number (default \"80\")\n  -verbose\n    \tEnable verbose logging\n";
            let (set, _) = match flags::parse(FLAGS, args) {
                Ok(parsed) => parsed,
                Err(e) => return Ok(flag_exit("/whoami", e, USAGE)),
            };
            if set.contains_key("cert") || set.contains_key("key") {
                return Ok(exit(
                    1,
                    "podway's built-in traefik/whoami serves plain HTTP only; map traefik/whoami in the image \
                     catalog to run the real one for TLS",
                ));
            }
            let port = set
                .get("port")
                .cloned()
                .or_else(|| env("WHOAMI_PORT_NUMBER").filter(|p| !p.is_empty()));
            let port = port.unwrap_or_else(|| "80".to_string());
            let Ok(port) = port.parse::<u16>() else {
                return Ok(exit(1, format!("listen tcp: address {port}: invalid port")));
            };
            let name = set
                .get("name")
                .cloned()
                .or_else(|| env("WHOAMI_NAME"))
                .filter(|n| !n.is_empty());
            let verbose = set.get("verbose").is_some_and(|v| v == "true");
            (Kind::Whoami { name, verbose }, any_addr(port))
        }
        "http-echo" => {
            const FLAGS: &[Flag] = &[
                Flag {
                    name: "listen",
                    is_bool: false,
                },
                Flag {
                    name: "text",
                    is_bool: false,
                },
                Flag {
                    name: "version",
                    is_bool: true,
                },
                Flag {
                    name: "status-code",
                    is_bool: false,
                },
            ];
            const USAGE: &str = "  -listen string\n    \taddress and port to listen (default \":5678\")\n  -status-code int\n    \thttp response code, e.g.: 200 (default 200)\n  -text string\n    \ttext to put on the webpage\n  -version\n    \tdisplay version information\n";
            let (set, rest) = match flags::parse(FLAGS, args) {
                Ok(parsed) => parsed,
                Err(e) => return Ok(flag_exit("/http-echo", e, USAGE)),
            };
            if set.get("version").is_some_and(|v| v == "true") {
                return Ok(Start::Exit {
                    code: 0,
                    stdout: "http-echo v1.0.0 (podway built-in)\n".into(),
                    stderr: String::new(),
                });
            }
            let status = match set.get("status-code").map(|s| s.parse::<u16>()) {
                None => 200,
                Some(Ok(code)) if (100..=999).contains(&code) => code,
                Some(_) => {
                    let value = &set["status-code"];
                    return Ok(flag_exit(
                        "/http-echo",
                        FlagError::Undefined(format!("status-code: invalid value {value:?}")),
                        USAGE,
                    ));
                }
            };
            let text = set
                .get("text")
                .cloned()
                .filter(|t| !t.is_empty())
                .or_else(|| env("ECHO_TEXT"));
            let Some(text) = text.filter(|t| !t.is_empty()) else {
                return Ok(exit(127, "Missing -text option or ECHO_TEXT env var!"));
            };
            if !rest.is_empty() {
                return Ok(exit(127, "Too many arguments!"));
            }
            let listen = set.get("listen").map_or(":5678", String::as_str);
            let Some(addr) = parse_listen(listen) else {
                return Ok(exit(
                    1,
                    format!("[ERR] server exited with: listen tcp: address {listen}: invalid address"),
                ));
            };
            (Kind::HttpEcho { text, status }, addr)
        }
        "echo-server" => {
            let send_hostname = !env("SEND_SERVER_HOSTNAME").is_some_and(|v| v.eq_ignore_ascii_case("false"));
            let send_headers = std::env::vars()
                .filter_map(|(k, v)| Some((k.strip_prefix("SEND_HEADER_")?.replace('_', "-"), v)))
                .collect();
            match env_port(8080) {
                Ok(port) => (
                    Kind::EchoServer {
                        send_hostname,
                        send_headers,
                    },
                    any_addr(port),
                ),
                Err(start) => return Ok(start),
            }
        }
        "hello-app-1.0.0" | "hello-app-2.0.0" => {
            let version = if name == "hello-app-1.0.0" { "1.0.0" } else { "2.0.0" };
            match env_port(8080) {
                Ok(port) => (Kind::HelloApp { version }, any_addr(port)),
                Err(start) => return Ok(start),
            }
        }
        other => return Err(format!("unknown built-in image {other:?}")),
    };
    Ok(Start::Serve(App {
        kind,
        listen,
        hostname: host.hostname,
        ips: host.ips,
        health: Mutex::new(200),
    }))
}

/// Go's `log` prefix: local date and time.
fn go_log_time() -> String {
    jiff::Zoned::now().strftime("%Y/%m/%d %H:%M:%S").to_string()
}

impl App {
    /// What the image prints when it starts: (stdout, stderr).
    pub fn startup_log(&self) -> (String, String) {
        let port = self.listen.port();
        match &self.kind {
            Kind::EchoHname | Kind::EchoIp => (
                "/docker-entrypoint.sh: Configuration complete; ready for start up\n".into(),
                String::new(),
            ),
            Kind::Echoserver { .. } => (String::new(), String::new()),
            Kind::Whoami { .. } => (String::new(), format!("{} Starting up on port {port}\n", go_log_time())),
            Kind::HttpEcho { .. } => {
                let listen = if self.listen.ip().is_unspecified() {
                    format!(":{port}")
                } else {
                    self.listen.to_string()
                };
                (
                    String::new(),
                    format!("{} [INFO] server is listening on {listen}\n", go_log_time()),
                )
            }
            Kind::EchoServer { .. } => (format!("Echo server listening on port {port}.\n"), String::new()),
            Kind::HelloApp { .. } => (
                String::new(),
                format!("{} Server listening on port {port}\n", go_log_time()),
            ),
        }
    }

    /// The line the image logs for a request: (to stdout?, line).
    pub fn access_log(&self, req: &Request, resp: &Response) -> Option<(bool, String)> {
        let ua = req.header("user-agent").unwrap_or("");
        match &self.kind {
            Kind::EchoHname | Kind::EchoIp | Kind::Echoserver { .. } => {
                let time = jiff::Zoned::now().strftime("%d/%b/%Y:%H:%M:%S %z").to_string();
                let dash = |v: &str| if v.is_empty() { "-".to_string() } else { v.to_string() };
                Some((
                    true,
                    format!(
                        "{} - - [{time}] \"{} {} {}\" {} {} \"{}\" \"{}\"\n",
                        req.remote.ip().to_canonical(),
                        req.method,
                        req.target,
                        req.version,
                        resp.status,
                        resp.body.len(),
                        dash(req.header("referer").unwrap_or("")),
                        dash(ua)
                    ),
                ))
            }
            Kind::Whoami { verbose: true, .. } => {
                let time = jiff::Zoned::now().strftime("%d/%b/%Y:%H:%M:%S %z").to_string();
                Some((
                    false,
                    format!(
                        "{} {} - - [{time}] \"{} {} {}\" - -\n",
                        go_log_time(),
                        req.remote,
                        req.method,
                        req.path(),
                        req.version
                    ),
                ))
            }
            Kind::Whoami { .. } => None,
            Kind::HttpEcho { .. } if req.path() == "/health" => None,
            Kind::HttpEcho { .. } => Some((
                true,
                format!(
                    "{} {} {} \"{} {} {}\" {} {} \"{ua}\" 0s\n",
                    go_log_time(),
                    req.header("host").unwrap_or(""),
                    req.remote,
                    req.method,
                    req.path(),
                    req.version,
                    resp.status,
                    resp.body.len()
                ),
            )),
            Kind::EchoServer { .. } => Some((true, format!("{} | {} {}\n", req.remote, req.method, req.target))),
            Kind::HelloApp { .. } => Some((false, format!("{} Serving request: {}\n", go_log_time(), req.path()))),
        }
    }

    /// The answer to a request.
    pub fn respond(&self, req: &Request) -> Response {
        let h = &self.hostname;
        match &self.kind {
            Kind::EchoHname => nginx_text(format!("{h}\n")),
            Kind::EchoIp => nginx_text(format!(
                "request_method : {} | ip_dest: {}\n",
                req.method,
                req.local.ip().to_canonical()
            )),
            Kind::HelloApp { version } => Response::new(
                200,
                GO_TEXT,
                format!("Hello, world!\nVersion: {version}\nHostname: {h}\n"),
            ),
            Kind::HttpEcho { .. } if req.path() == "/health" => {
                http_echo_headers(Response::new(200, GO_TEXT, "{\"status\":\"ok\"}\n"))
            }
            Kind::HttpEcho { text, status } => http_echo_headers(Response::new(*status, GO_TEXT, format!("{text}\n"))),
            Kind::EchoServer {
                send_hostname,
                send_headers,
            } => {
                let send = match req.header("x-send-server-hostname").filter(|v| !v.is_empty()) {
                    Some(v) => !v.eq_ignore_ascii_case("false"),
                    None => *send_hostname,
                };
                let mut resp = Response::new(
                    200,
                    "text/plain",
                    super::bodies::echo_server(req, send.then_some(h.as_str())),
                );
                for (name, value) in send_headers {
                    resp = resp.with_header(&super::bodies::canonical_header(name), value);
                }
                resp
            }
            Kind::Echoserver { legacy: true, .. } => {
                Response::new(200, "text/plain", super::bodies::echoserver_legacy(req))
                    .with_header("Server", "nginx/1.10.0")
            }
            Kind::Echoserver {
                legacy: false,
                pod_info,
            } => Response::new(200, "text/plain", super::bodies::echoserver(req, h, pod_info))
                .with_header("Server", "echoserver"),
            Kind::Whoami { name, .. } => self.whoami(req, name.as_deref()),
        }
    }

    fn whoami(&self, req: &Request, name: Option<&str>) -> Response {
        use super::bodies;
        let env = req
            .query_param("env")
            .is_some_and(|v| matches!(v, "1" | "t" | "T" | "true" | "TRUE" | "True"));
        match req.path() {
            "/health" => {
                let mut status = self.health.lock().unwrap_or_else(|e| e.into_inner());
                if req.method == "POST" {
                    match std::str::from_utf8(&req.body)
                        .ok()
                        .and_then(|b| b.trim().parse::<u16>().ok())
                    {
                        Some(code) if (100..=999).contains(&code) => {
                            println!("Update health check status code [{code}]");
                            *status = code;
                            Response::new(200, GO_TEXT, "")
                        }
                        _ => Response::new(400, GO_TEXT, "invalid status code\n"),
                    }
                } else {
                    Response::new(*status, GO_TEXT, "")
                }
            }
            "/bench" => Response::new(200, "text/plain", "1").with_header("Connection", "keep-alive"),
            "/api" => Response::new(
                200,
                "application/json",
                bodies::whoami_api(req, &self.hostname, &self.ips, name, env),
            ),
            "/data" => {
                let mut size: u64 = req.query_param("size").and_then(|s| s.parse().ok()).unwrap_or(1);
                size = size.saturating_mul(match req.query_param("unit").map(str::to_ascii_lowercase).as_deref() {
                    Some("kb") => 1 << 10,
                    Some("mb") => 1 << 20,
                    Some("gb") => 1 << 30,
                    Some("tb") => 1 << 40,
                    _ => 1,
                });
                // A pod's memory is precious: cap what one answer may hold.
                Response::new(200, GO_TEXT, bodies::whoami_data(size.min(64 << 20) as usize))
            }
            _ => {
                let mut resp = Response::new(200, GO_TEXT, bodies::whoami(req, &self.hostname, &self.ips, name, env));
                resp.delay = req.query_param("wait").and_then(parse_go_duration);
                resp
            }
        }
    }
}

fn nginx_text(body: String) -> Response {
    Response::new(200, "text/html", body).with_header("Server", "nginx/1.26.0")
}

fn http_echo_headers(resp: Response) -> Response {
    resp.with_header("X-App-Name", "http-echo")
        .with_header("X-App-Version", "1.0.0")
}

/// Go's `time.ParseDuration` for the simple forms whoami's `?wait=` gets (`100ms`, `1s`, `1.5s`).
fn parse_go_duration(s: &str) -> Option<Duration> {
    let split = s.find(|c: char| c.is_ascii_alphabetic() || c == 'µ')?;
    let value: f64 = s[..split].parse().ok()?;
    let unit = match &s[split..] {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return None,
    };
    let seconds = value * unit;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds.min(3600.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> Host {
        Host {
            hostname: "pod-1".into(),
            ips: vec![],
        }
    }

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    fn start(name: &str, a: &[&str], env: &[(&str, &str)]) -> Start {
        let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let lookup = move |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        configure(name, &args(a), &lookup, host()).unwrap()
    }

    fn serving(s: Start) -> App {
        match s {
            Start::Serve(app) => app,
            Start::Exit { code, stderr, .. } => panic!("exited {code}: {stderr}"),
        }
    }

    #[test]
    fn ports_come_from_each_images_own_flag_or_environment() {
        assert_eq!(serving(start("whoami", &[], &[])).listen.port(), 80);
        assert_eq!(serving(start("whoami", &["--port", "2001"], &[])).listen.port(), 2001);
        assert_eq!(
            serving(start("whoami", &[], &[("WHOAMI_PORT_NUMBER", "9000")]))
                .listen
                .port(),
            9000
        );
        assert_eq!(
            serving(start("http-echo", &["-text=hi"], &[])).listen,
            "0.0.0.0:5678".parse().unwrap()
        );
        assert_eq!(
            serving(start("http-echo", &["-text=hi", "-listen=127.0.0.1:7000"], &[])).listen,
            "127.0.0.1:7000".parse().unwrap()
        );
        assert_eq!(
            serving(start("hello-app-1.0.0", &[], &[("PORT", "9090")]))
                .listen
                .port(),
            9090
        );
        assert_eq!(serving(start("echo-server", &[], &[])).listen.port(), 8080);
        assert_eq!(
            serving(start("echo-hname", &["-g", "daemon off;"], &[])).listen.port(),
            80
        );
        assert_eq!(serving(start("echoserver", &[], &[])).listen.port(), 8080);
    }

    #[test]
    fn http_echo_exits_like_the_real_one_without_text_or_with_extra_arguments() {
        let code = |s: Start| match s {
            Start::Exit { code, stderr, .. } => (code, stderr),
            Start::Serve(_) => (-1, String::new()),
        };
        assert_eq!(
            code(start("http-echo", &[], &[])),
            (127, "Missing -text option or ECHO_TEXT env var!".into())
        );
        assert_eq!(code(start("http-echo", &["-text=a", "b"], &[])).0, 127);
        assert_eq!(code(start("http-echo", &["-nope"], &[])).0, 2);
        assert_eq!(code(start("http-echo", &["-version"], &[])).0, 0);
        let app = serving(start("http-echo", &[], &[("ECHO_TEXT", "from env")]));
        assert_eq!(
            app.kind,
            Kind::HttpEcho {
                text: "from env".into(),
                status: 200
            }
        );
        let app = serving(start("http-echo", &["-text", "x", "-status-code=503"], &[]));
        assert_eq!(
            app.kind,
            Kind::HttpEcho {
                text: "x".into(),
                status: 503
            }
        );
    }

    #[test]
    fn unknown_builtins_are_refused() {
        assert!(configure("nope", &[], &|_| None, host()).is_err());
        for name in crate::images::BUILTIN_NAMES {
            assert!(
                configure(name, &args(&["-text=x"]), &|_| None, host()).is_ok(),
                "{name}"
            );
        }
    }

    #[test]
    fn go_durations_parse() {
        assert_eq!(parse_go_duration("100ms"), Some(Duration::from_millis(100)));
        assert_eq!(parse_go_duration("1.5s"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_go_duration("soon"), None);
    }
}
