//! The `serve` daemon's lifecycle (spec §10.2–§10.6): open and sweep the store, probe a worker,
//! bind, print the ready line, serve, and shut down in order.

use std::io::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use protocol::StopCause;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use crate::config::ServeConfig;
use crate::error::DaemonError;
use crate::metrics::Metrics;
use crate::model::Timestamp;
use crate::pool::WorkerPool;
use crate::service::Service;
use crate::store::Store;
use crate::worker_handle::{Launcher, SpawnConfig, start_worker};

/// How long running executions and starts may go on after a shutdown signal (spec §10.6).
const DRAIN: Duration = Duration::from_secs(10);

/// Runs the daemon until a shutdown signal; returns after the store is closed.
pub(crate) async fn serve(config: ServeConfig) -> Result<(), DaemonError> {
    raise_open_file_limit();
    let store = Store::open(&config.db).await.map_err(DaemonError::Store)?;
    let swept = store
        .sweep_after_restart(Timestamp::now())
        .await
        .map_err(DaemonError::Store)?;
    if swept.sessions_crashed + swept.executions_failed > 0 {
        tracing::info!(
            sessions = swept.sessions_crashed,
            executions = swept.executions_failed,
            "swept state of the previous run"
        );
    }

    let spawn = SpawnConfig {
        worker_bin: config.worker_bin.clone(),
        ..SpawnConfig::default()
    };
    // The fork server reports the engine; without one, a probe worker does.
    let launcher = Launcher::new(spawn.clone());
    let engine = match launcher.prepare().await {
        Some(info) => {
            tracing::info!(engine = %info.engine, version = %info.engine_version, pid = info.pid, "fork server answered");
            info.engine
        }
        None => {
            let probe = start_worker(&spawn).await.map_err(DaemonError::Probe)?;
            let engine = probe.engine().to_string();
            tracing::info!(engine = %engine, version = probe.engine_version(), pid = probe.pid(), "probe worker answered");
            probe.stop(true).await;
            engine
        }
    };

    std::fs::create_dir_all(&config.library_dir).map_err(|source| DaemonError::LibraryDir {
        path: config.library_dir.clone(),
        source,
    })?;
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| DaemonError::Bind {
            addr: config.listen.to_string(),
            source,
        })?;
    let addr = listener.local_addr().map_err(DaemonError::Serve)?;

    let pool = WorkerPool::new(launcher, config.pool_size);
    let service = Service::new(
        store.clone(),
        pool.clone(),
        Metrics::default(),
        engine,
        config.library_dir.clone(),
    );
    let app = crate::api::router(service.clone(), config.token.clone());

    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "vm-system listening on http://{addr}");
        let _ = out.flush();
    }
    pool.start_refill();

    let (second_tx, second_rx) = tokio::sync::watch::channel(false);
    let shutdown = service.shutdown.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutting down");
        shutdown.cancel();
        wait_for_signal().await;
        tracing::info!("second signal: skipping grace periods");
        let _ = second_tx.send(true);
    });

    // Connections are served until the drain is over, so that a request on a connection opened
    // before the signal gets its `503 SHUTTING_DOWN` (spec §10.6 step 1) rather than a closed
    // socket; the listener stops accepting at the signal.
    let drained = CancellationToken::new();
    let listener = ClosingListener {
        addr,
        inner: Some(listener),
        shutdown: service.shutdown.clone(),
    };
    let server = tokio::spawn(serve_http(listener, app, drained.clone()));

    service.shutdown.cancelled().await;
    drain(&service, second_rx).await;
    drained.cancel();
    if tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .is_err()
    {
        tracing::warn!("http connections still open at exit");
    }
    if let Err(err) = store.close().await {
        tracing::warn!(error = %err, "failed to close the store cleanly");
    }
    Ok(())
}

/// How long a client may take to send a request's headers, counted from the connection's
/// start or, on a kept-alive connection, from the end of the previous response: a connection
/// that sends nothing (or a header a byte at a time) is closed instead of holding a descriptor
/// and a task for ever.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves HTTP/1.1 connections from `listener` until `done`, then ends every connection
/// gracefully (a request in progress is answered first) and returns when all are closed.
async fn serve_http(mut listener: ClosingListener, app: axum::Router, done: CancellationToken) {
    use axum::serve::Listener as _;
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    loop {
        let stream = tokio::select! {
            () = done.cancelled() => break,
            (stream, _) = listener.accept() => stream,
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let connection = http.serve_connection(hyper_util::rt::TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "http connection ended with an error");
            }
        });
    }
    graceful.shutdown().await;
}

/// The daemon's listening socket: accepts connections until shutdown begins, then closes the
/// socket (new connections are refused) and accepts nothing more, while the server goes on serving
/// the connections already open.
struct ClosingListener {
    addr: SocketAddr,
    inner: Option<TcpListener>,
    shutdown: CancellationToken,
}

impl axum::serve::Listener for ClosingListener {
    type Io = TcpStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (TcpStream, SocketAddr) {
        if let Some(listener) = self.inner.as_mut() {
            tokio::select! {
                biased;
                () = self.shutdown.cancelled() => {}
                // Retries and backs off on accept errors itself.
                accepted = axum::serve::Listener::accept(listener) => return accepted,
            }
        }
        self.inner = None;
        std::future::pending().await
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.addr)
    }
}

/// Raises the soft limit on open files to the hard limit. Every live session holds two of the
/// daemon's descriptors (its frame socket and its stderr pipe), so the common default soft limit
/// of 1,024 would make worker starts and `accept` fail with EMFILE near 500 sessions. Workers set
/// their own, lower limit (§10.4). A failure only costs capacity: it is logged, not fatal.
fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid out pointer for the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        let err = std::io::Error::last_os_error();
        tracing::warn!(error = %err, "cannot read the open file limit");
        return;
    }
    if limit.rlim_cur >= limit.rlim_max {
        return;
    }
    let raised = libc::rlimit {
        rlim_cur: limit.rlim_max,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: `raised` is a valid rlimit; only this process's soft limit changes.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
        tracing::debug!(
            from = limit.rlim_cur,
            to = limit.rlim_max,
            "raised the open file limit"
        );
    } else {
        let err = std::io::Error::last_os_error();
        tracing::warn!(error = %err, soft = limit.rlim_cur, hard = limit.rlim_max, "cannot raise the open file limit");
    }
}

/// Spec §10.6 steps 2–3.
async fn drain(service: &Service, mut second: tokio::sync::watch::Receiver<bool>) {
    service.tasks.close();
    if !*second.borrow() {
        tokio::select! {
            () = service.tasks.wait() => {}
            () = tokio::time::sleep(DRAIN) => {}
            _ = second.wait_for(|fast| *fast) => {}
        }
    }
    service.stopping.cancel();
    for control in service.registry.executions() {
        let _ = control.stop.send(StopCause::DaemonShutdown);
    }
    // Cancelled executions end within the stop grace (or their worker is killed).
    if !*second.borrow() {
        tokio::select! {
            () = service.tasks.wait() => {}
            () = tokio::time::sleep(Duration::from_secs(3)) => {}
            _ = second.wait_for(|fast| *fast) => {}
        }
    }
    // A second signal while the workers' grace periods run turns every stop into SIGKILL.
    let mut stops = Vec::new();
    for live in service.registry.all() {
        let (worker, loading) = {
            let mut state = live.state();
            (state.worker.clone(), state.loading.take())
        };
        if let Some(loading) = loading {
            let _ = loading.send(StopCause::DaemonShutdown);
        }
        if let Some(worker) = worker {
            let fast = second.clone();
            stops.push(tokio::spawn(
                async move { worker.stop_hastened(fast).await },
            ));
        }
    }
    for stop in stops {
        let _ = stop.await;
    }
    service.pool.shutdown_hastened(second).await;
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        std::future::pending::<()>().await;
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
