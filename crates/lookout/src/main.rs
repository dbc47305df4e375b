//! `lookout`: CloudWatch Logs (and, as they land, ECS, EventBridge and SNS) as one self-hosted
//! binary. `lookout serve` runs the server; `lookout logs ...` talks to a running one.

/// jemalloc instead of glibc's malloc. Under 10 minutes of steady mixed load (`bench/soak.py`) the
/// live heap stayed near 100 MB (heaptrack) while glibc's per-thread arenas kept what was freed
/// (memtable buffers, decoded blocks, request bodies — often freed on another thread than the one
/// that allocated them): RSS 72 → 255 MB, +25 MB/min over the second half. With jemalloc: 101 →
/// 174 MB (at most 192), +4.7 MB/min, a sawtooth; mimalloc: 142 → 241 MB (at most 262), +6.5 MB/min.
/// Its defaults are set where it is built (`.cargo/config.toml`): a background thread gives freed
/// pages back after 1 s instead of 10 (W1's peak RSS: ~450 MB against ~500).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod api;
#[cfg(test)]
mod api_tests;
mod app;
mod auth;
mod blocking;
mod cli_events;
mod cli_logs;
mod cli_tasks;
mod client;
mod config;
mod console;
mod decode_pool;
mod metrics;
mod server;
mod time_util;
mod tls;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use clap::{Parser, Subcommand};
use lookout_logs::{Identity, LogsService};
use lookout_logstore::{EmbeddedStore, StoreConfig};

#[derive(Debug, Parser)]
#[command(
    name = "lookout",
    version,
    about = "Logs, tasks and alerts for containerized batch jobs, wire-compatible with AWS"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server: every API on one port, all state in one data directory.
    Serve(Box<config::ServeArgs>),
    /// Read logs from a running lookout: list groups and streams, tail a group.
    Logs(cli_logs::LogsArgs),
    /// Run, list, stop and read the logs of ECS tasks on a running lookout.
    Tasks(cli_tasks::TasksArgs),
    /// Explain why an event matches a rule or not; list event deliveries and dead letters.
    Events(cli_events::EventsArgs),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(*args).map(|()| std::process::ExitCode::SUCCESS),
        Command::Logs(args) => cli_logs::run(args).map(|()| std::process::ExitCode::SUCCESS),
        Command::Tasks(args) => cli_tasks::run(args),
        Command::Events(args) => cli_events::run(args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lookout: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn serve(args: config::ServeArgs) -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("LOOKOUT_LOG").unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let config = config::ServeConfig::resolve(args)?;
    // Before the store opens, so that a bad certificate stops lookout before it touches any data.
    let tls = tls::setup(&config.tls, &config.data_dir, config.listen)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async move {
        // The container engine can take a second to answer: ask it while the store opens.
        let container_runtime = {
            let config = config.clone();
            tokio::spawn(async move { container_runtime(&config).await })
        };
        let mut store_config = StoreConfig::new(config.data_dir.join("logs"));
        store_config.flush_interval = config.flush_interval;
        store_config.flush_bytes = config.flush_bytes;
        store_config.max_unflushed_bytes = config.max_unflushed_bytes;
        store_config.compact_at_rest_after = config.compact_at_rest_after;
        let data_dir = config.data_dir.clone();
        let store = tokio::task::spawn_blocking(move || EmbeddedStore::open(store_config))
            .await?
            .with_context(|| format!("cannot open the data directory {}", data_dir.display()))?;
        let store = Arc::new(store);
        let identity = Identity { account_id: config.account_id.clone(), region: config.region.clone() };
        let logs = LogsService::new(store.clone(), identity.clone());
        let runtime = container_runtime.await??;
        let tasks = tasks_service(&identity, &config.data_dir, logs.clone(), runtime)?;
        let notify = notify_service(&identity, &config).await?;
        let events =
            events_service(&identity, &config.data_dir, logs.clone(), tasks.clone(), config.delivery_retry_base)?;
        // Task state changes flow into the default bus from the first one (resume's included).
        events.set_topic_publisher(Arc::new(SnsTopics(notify.clone())));
        // A change committed just before a crash may not have reached the bus: put it now, once.
        lookout_events::task_events::catch_up(&events, &tasks).await;
        tasks.add_event_sink(Arc::new(lookout_events::task_events::TaskEventsToBus::start(events.clone())));
        tasks.resume().await;
        tasks.spawn_janitor(config.stopped_task_retention);
        let ingest = console::IngestHistory::start(logs.clone());
        let console = console::ConsoleState::new(ingest);
        let decode = decode_pool::DecodePool::start().context("cannot start the PutLogEvents decoding threads")?;
        let app = app::App {
            logs,
            tasks,
            notify,
            events,
            identity,
            console,
            auth: config.auth.clone(),
            metrics: Default::default(),
            decode,
        };
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {} (is another lookout running?)", config.listen))?;
        match &tls {
            Some(t) => tracing::info!(
                tls_cert = %t.cert_path.display(),
                tls_fingerprint = %t.fingerprint,
                "TLS on the same port as plain HTTP{}",
                match (t.self_signed, t.generated_now) {
                    (true, true) => " (self-signed certificate generated now)",
                    (true, false) => " (self-signed certificate generated on an earlier start)",
                    (false, _) => "",
                }
            ),
            None => tracing::info!("TLS is off (--no-tls): plain HTTP only"),
        }
        let loopback = config.listen.ip().is_loopback();
        match (&config.auth, config.default_key) {
            (auth::AuthMode::Open, _) if !loopback => tracing::warn!(
                listen = %config.listen,
                "AUTHENTICATION IS OFF (--no-auth) ON A NON-LOOPBACK ADDRESS: anyone who reaches this port can read \
                 every log, start containers and change rules"
            ),
            (auth::AuthMode::Open, _) => {
                tracing::warn!("authentication is off (--no-auth): every request is accepted unsigned")
            }
            (auth::AuthMode::SigV4(_), true) if !loopback => tracing::warn!(
                listen = %config.listen,
                "ONLY THE DEFAULT ACCESS KEY test/test IS CONFIGURED ON A NON-LOOPBACK ADDRESS: anyone who knows it \
                 can do anything; configure access_keys in lookout.toml or LOOKOUT_ACCESS_KEYS"
            ),
            (auth::AuthMode::SigV4(_), true) => tracing::info!(
                "SigV4 signatures are verified; no key is configured, so the default key test / test (full access) is accepted"
            ),
            (auth::AuthMode::SigV4(keys), false) => {
                tracing::info!(keys = keys.len(), "SigV4 signatures are verified against the configured access keys")
            }
        }
        tracing::info!(
            listen = %config.listen,
            data_dir = %config.data_dir.display(),
            account_id = %config.account_id,
            region = %config.region,
            tls = tls.is_some(),
            "lookout is ready"
        );
        tls::serve(listener, server::router(app), tls.map(|t| t.acceptor), config.connections, async {
            shutdown_signal().await;
            SHUTTING_DOWN.store(true, Ordering::SeqCst);
        })
        .await;
        tracing::info!("shutting down: flushing recent events");
        tokio::task::spawn_blocking(move || store.shutdown()).await?;
        Ok(())
    })
}

/// The task service over its store in `<data-dir>/tasks/`, writing container output into `logs`.
pub(crate) fn tasks_service(
    identity: &Identity,
    data_dir: &std::path::Path,
    logs: LogsService,
    runtime: Arc<dyn lookout_tasks::runtime::ContainerRuntime>,
) -> anyhow::Result<lookout_tasks::TasksService> {
    let store = lookout_tasks::store::RedbTaskStore::open(&data_dir.join("tasks"))
        .with_context(|| format!("cannot open the task store in {}", data_dir.display()))?;
    let tasks = lookout_tasks::TasksService::open(
        lookout_tasks::Identity { account_id: identity.account_id.clone(), region: identity.region.clone() },
        Arc::new(store),
        runtime,
        Arc::new(lookout_tasks::logsink::LogsServiceSink::new(logs)),
    )?;
    Ok(tasks)
}

/// The event bus over its store in `<data-dir>/events/`; starts its delivery workers and scheduler
/// (call on the async runtime).
pub(crate) fn events_service(
    identity: &Identity,
    data_dir: &std::path::Path,
    logs: LogsService,
    tasks: lookout_tasks::TasksService,
    retry_base: std::time::Duration,
) -> anyhow::Result<lookout_events::EventsService> {
    let store = lookout_events::store::RedbEventStore::open(&data_dir.join("events"))
        .with_context(|| format!("cannot open the event store in {}", data_dir.display()))?;
    let mut delivery = lookout_events::service::default_delivery_config();
    delivery.retry_base = retry_base;
    Ok(lookout_events::EventsService::start(
        lookout_events::Identity { account_id: identity.account_id.clone(), region: identity.region.clone() },
        Arc::new(store),
        logs,
        tasks,
        delivery,
    )?)
}

/// EventBridge's SNS targets publish through the notification service.
pub(crate) struct SnsTopics(pub lookout_notify::NotifyService);

#[async_trait::async_trait]
impl lookout_events::TopicPublisher for SnsTopics {
    async fn publish(
        &self,
        topic_arn: &str,
        subject: Option<&str>,
        message: &str,
    ) -> Result<String, lookout_events::model::DeliveryError> {
        use lookout_events::model::DeliveryError;
        self.0.publish(topic_arn, subject, message, false).await.map_err(|e| match e {
            lookout_notify::NotifyError::NotFound(m) => DeliveryError::fatal("NotFound", m),
            lookout_notify::NotifyError::InvalidParameter(m) => DeliveryError::fatal("InvalidParameter", m),
            lookout_notify::NotifyError::Internal(m) => DeliveryError::retryable("InternalError", m),
        })
    }
}

/// The notification service (SNS) over `<data-dir>/notify/`, its delivery worker started (it
/// resumes the deliveries an earlier run left pending). Call on the async runtime.
pub(crate) async fn notify_service(
    identity: &Identity,
    config: &config::ServeConfig,
) -> anyhow::Result<lookout_notify::NotifyService> {
    let mut settings = lookout_notify::NotifyConfig::new(
        lookout_notify::Identity { account_id: identity.account_id.clone(), region: identity.region.clone() },
        &config.public_url,
    );
    settings.smtp_url = config.sns.smtp_url.clone();
    settings.smtp_from = config.sns.smtp_from.clone();
    settings.http_retry = config.sns.http_retry;
    settings.email_retry = config.sns.email_retry;
    let dir = config.data_dir.join("notify");
    let (notify, generated) = {
        let dir = dir.clone();
        tokio::task::spawn_blocking(move || lookout_notify::NotifyService::open(&dir, settings))
    }
    .await?
    .with_context(|| format!("cannot open the notification store in {}", dir.display()))?;
    if generated {
        tracing::info!(dir = %dir.display(), "SNS message signing key and certificate generated");
    }
    match notify.email_relay() {
        Some(relay) => {
            tracing::info!(smtp = relay, from = %config.sns.smtp_from, "SNS email goes through the SMTP relay")
        }
        None => {
            tracing::warn!("SNS email is off (no --smtp-url): email subscriptions are accepted, their deliveries fail")
        }
    }
    tracing::info!(public_url = %config.public_url, "SNS links (confirm, unsubscribe, signing certificate) point here");
    notify.start();
    Ok(notify)
}

/// The container runtime `--runtime` asks for; `auto` prefers a container engine that answers.
async fn container_runtime(
    config: &config::ServeConfig,
) -> anyhow::Result<Arc<dyn lookout_tasks::runtime::ContainerRuntime>> {
    use lookout_tasks::runtime::{docker, process::ProcessRuntime};
    let process = || -> anyhow::Result<Arc<dyn lookout_tasks::runtime::ContainerRuntime>> {
        let dir = config.data_dir.join("tasks").join("processes");
        Ok(Arc::new(ProcessRuntime::new(dir.clone()).with_context(|| format!("cannot create {}", dir.display()))?))
    };
    if config.runtime == config::RuntimeChoice::Process {
        tracing::info!("tasks run as local processes (--runtime process)");
        return process();
    }
    let env = std::env::var("DOCKER_HOST").ok();
    let host = docker::resolve_docker_host(config.docker_host.as_deref(), env.as_deref(), |p| p.exists());
    let connected = match host {
        Ok(host) => docker::DockerRuntime::connect(host).await.map_err(|e| e.to_string()),
        Err(e) => Err(e),
    };
    match (connected, config.runtime) {
        (Ok(rt), _) => {
            tracing::info!(engine = ?rt.host(), api_version = rt.api_version(), "tasks run in containers through the Docker Engine API");
            Ok(Arc::new(rt))
        }
        (Err(e), config::RuntimeChoice::Docker) => anyhow::bail!("--runtime docker: {e}"),
        (Err(e), _) => {
            tracing::warn!(reason = %e, "no container engine answers: tasks run as local processes (set --runtime docker to require one)");
            process()
        }
    }
}

/// Set once a shutdown signal arrives: `/ready` then answers 503 while requests drain.
static SHUTTING_DOWN: AtomicBool = AtomicBool::new(false);

/// `GET /ready`: 200 once the store is open and the listener serves (the only way to reach this
/// handler), 503 once shutdown has begun. `/health` (liveness) answers 200 regardless.
pub async fn ready() -> Response {
    let (status, body) = if SHUTTING_DOWN.load(Ordering::SeqCst) {
        (StatusCode::SERVICE_UNAVAILABLE, r#"{"status":"shutting down"}"#)
    } else {
        (StatusCode::OK, r#"{"status":"ready"}"#)
    };
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
