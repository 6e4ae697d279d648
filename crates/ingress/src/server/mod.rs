//! The HTTP(S) server on a node's ports 80 and 443: HTTP/1.1 and HTTP/2 (by ALPN on TLS, by the
//! connection preface on plain HTTP), each request routed by the current table and carried out
//! as it decides, on one event loop per core. A new table is swapped in atomically: requests in
//! flight keep the table they started with, connections stay open, nothing reloads.

mod headers;
mod proxy;
mod tls;
mod upstream;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;

use crate::decision::Router;

/// The routing table the server consults; cloned handles share it.
#[derive(Clone)]
pub struct RouterHandle(Arc<ArcSwap<Arc<dyn Router>>>);

impl std::fmt::Debug for RouterHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RouterHandle")
    }
}

impl RouterHandle {
    /// A handle serving `router`.
    pub fn new(router: Arc<dyn Router>) -> RouterHandle {
        RouterHandle(Arc::new(ArcSwap::from_pointee(router)))
    }

    /// Serve `router` from now on.
    pub fn store(&self, router: Arc<dyn Router>) {
        self.0.store(Arc::new(router));
    }

    /// The table now.
    pub fn load(&self) -> Arc<dyn Router> {
        self.0.load().as_ref().clone()
    }
}

/// Serve plain HTTP on `http` and TLS on `https` until `shutdown`; then the ports close and
/// open connections finish the requests they have (at most 5 s) and close.
///
/// Like nginx's workers, the server runs one single-threaded event loop per core, each
/// accepting from the same listening sockets with a connection pool of its own: a request, its
/// upstream exchange and its answer stay on one thread, with no hand-offs between threads.
pub async fn serve(
    http: TcpListener,
    https: TcpListener,
    handle: RouterHandle,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls::server_config(handle.clone())?));
    let (http, https) = (http.into_std()?, https.into_std()?);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut threads = Vec::new();
    for i in 0..workers {
        let (http, https) = (http.try_clone()?, https.try_clone()?);
        let (acceptor, handle, mut stopped) = (acceptor.clone(), handle.clone(), stopped.clone());
        let thread =
            std::thread::Builder::new()
                .name(format!("ingress-{i}"))
                .spawn(move || -> anyhow::Result<()> {
                    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
                    rt.block_on(async move {
                        let (http, https) = (TcpListener::from_std(http)?, TcpListener::from_std(https)?);
                        let until = async move {
                            let _ = stopped.wait_for(|s| *s).await;
                        };
                        accept_loop(http, https, acceptor, handle, until).await;
                        anyhow::Ok(())
                    })
                })?;
        threads.push(thread);
    }
    // Only the event loops hold the listening sockets, so the port closes when they stop.
    drop((http, https));
    shutdown.await;
    let _ = stop.send(true);
    tokio::task::spawn_blocking(move || {
        for t in threads {
            match t.join() {
                Ok(Err(e)) => tracing::warn!("an Ingress server thread failed: {e:#}"),
                Err(_) => tracing::warn!("an Ingress server thread panicked"),
                Ok(Ok(())) => {}
            }
        }
    })
    .await?;
    Ok(())
}

/// How long connections may finish their requests after shutdown (nginx's
/// `worker_shutdown_timeout` is unset by default: it waits for them all; a node agent stopping
/// cannot wait that long).
const DRAIN_FOR: std::time::Duration = std::time::Duration::from_secs(5);

/// One event loop: accept on both listeners until `until`, each connection a local task; then
/// stop listening, tell the connections to finish (hyper answers requests in flight, then
/// closes) and wait for them, at most [`DRAIN_FOR`].
async fn accept_loop(
    http: TcpListener,
    https: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    handle: RouterHandle,
    until: impl Future<Output = ()>,
) {
    let proxy = Arc::new(proxy::Proxy::new(handle));
    // Tokio wakes its own event loop (an eventfd write, then an epoll_wait that returns at
    // once) whenever a timer is set earlier than every pending one, or with none pending,
    // which per-request timeouts did about every third request. A timer always due within a
    // quarter second makes every request's (seconds away) later than it.
    let sentinel = tokio::spawn(async {
        loop {
            tokio::time::sleep(std::time::Duration::from_millis(250)).await;
        }
    });
    let (drain, draining) = tokio::sync::watch::channel(false);
    // Every connection task holds a sender: when recv sees none left, all have ended.
    let (open, mut all_closed) = tokio::sync::mpsc::channel::<()>(1);
    tokio::pin!(until);
    loop {
        tokio::select! {
            _ = &mut until => break,
            accepted = http.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        accept_failed(e).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let conn = serve_connection(stream, peer, None, proxy.clone(), draining.clone());
                let open = open.clone();
                tokio::spawn(async move {
                    conn.await;
                    drop(open);
                });
            }
            accepted = https.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        accept_failed(e).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let (acceptor, proxy, draining, open) = (acceptor.clone(), proxy.clone(), draining.clone(), open.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(stream).await else { return };
                    let sni = tls.get_ref().1.server_name().map(str::to_ascii_lowercase).unwrap_or_default();
                    serve_connection(tls, peer, Some(sni), proxy, draining).await;
                    drop(open);
                });
            }
        }
    }
    drop((http, https));
    let _ = drain.send(true);
    drop(open);
    let _ = tokio::time::timeout(DRAIN_FOR, all_closed.recv()).await;
    sentinel.abort();
}

/// After a failed accept: a client that gave up first is nothing; anything else (out of file
/// descriptors or memory) would fail again at once, so the loop pauses a moment instead of
/// spinning, as nginx stops accepting for a while.
async fn accept_failed(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionReset, Interrupted, WouldBlock};
    if !matches!(e.kind(), ConnectionAborted | ConnectionReset | Interrupted | WouldBlock) {
        tracing::warn!("the Ingress server cannot accept connections: {e}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// One client connection; `sni` is Some on TLS connections. When `draining` turns true the
/// connection finishes the requests it has and closes.
async fn serve_connection<I>(
    io: I,
    peer: SocketAddr,
    sni: Option<String>,
    proxy: Arc<proxy::Proxy>,
    mut draining: tokio::sync::watch::Receiver<bool>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let sni: Arc<Option<String>> = Arc::new(sni);
    let service = service_fn(move |req: Request<Incoming>| {
        let (proxy, sni) = (proxy.clone(), sni.clone());
        // Boxed at once: hyper moves the future a few times on its way into a task (HTTP/2 spawns
        // one per stream), and a pointer moves cheaper than the whole state machine.
        Box::pin(async move { Ok::<_, Infallible>(proxy.handle(req, peer, sni.as_ref().as_deref()).await) })
    });
    let builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = draining.wait_for(|d| *d) => {}
    }
    conn.as_mut().graceful_shutdown();
    let _ = conn.await;
}
