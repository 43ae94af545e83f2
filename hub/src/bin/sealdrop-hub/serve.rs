//! `serve` and `check-config`: resolve the settings, check them, and serve.

use std::io::Write as _;

use sealdrop_hub::check_config;
use sealdrop_hub::config::ServeSettings;
use sealdrop_hub::{Hub, HubConfig, ServeOptions};
use sealdrop_proto::clock::{TEST_CLOCK_ENV, clock_from_env};
use sealdrop_proto::error_code::ErrorCode;

use crate::args::ServeArgs;
use crate::{Failure, init_logging, messages};

/// `check-config`: resolve and check everything, print the effective settings.
pub(crate) fn check_config(args: &ServeArgs) -> Result<(), Vec<Failure>> {
    let resolved = args.resolve().map_err(messages)?;
    let report = check_config::check(&resolved.settings, clock_from_env().now())
        .map_err(|problems| problems.into_iter().map(Failure::from).collect::<Vec<_>>())?;
    print!("{}", resolved.describe());
    println!(
        "# the configuration is usable; the hub's log verifier key is {}; its database is {}; ciphertexts are kept {}",
        report.log_verifier, report.database, report.blobs
    );
    Ok(())
}

pub(crate) fn serve(args: &ServeArgs) -> Result<(), Vec<Failure>> {
    let settings = args.resolve().map_err(messages)?.settings;
    let filter =
        tracing_subscriber::EnvFilter::try_new(&settings.log_filter).map_err(|e| vec![Failure::from(e.to_string())])?;
    init_logging(settings.log_format, filter);
    serve_settings(settings)
}

fn serve_settings(settings: ServeSettings) -> Result<(), Vec<Failure>> {
    if std::env::var_os(TEST_CLOCK_ENV).is_some_and(|v| !v.is_empty()) {
        tracing::warn!("{TEST_CLOCK_ENV} is set: the hub reads the time from a test clock file, not the system clock");
    }
    // A test hook (see `sealdrop_hub::failpoint`): said loudly, and a point that does not exist stops the start.
    if let Some(armed) = sealdrop_hub::failpoint::armed().map_err(|e| vec![Failure::from(e)])? {
        let env = sealdrop_hub::failpoint::ENV;
        tracing::warn!(point = armed.point, hit = armed.on_hit, "{env} is set: the hub aborts at this test fail point");
    }
    let clock = clock_from_env();
    // Checked before anything else, as check-config checks them, so a
    // certificate clients would refuse stops the start.
    let problems = check_config::tls_problems(&settings, clock.now());
    if !problems.is_empty() {
        return Err(problems.into_iter().map(Failure::from).collect());
    }
    let tls = match &settings.tls {
        Some(files) => Some(
            sealdrop_hub::tls::server_config(&files.cert, &files.key)
                .map_err(|e| vec![Failure::coded(e.code(), format!("TLS: {e}"))])?,
        ),
        None => None,
    };
    // One serve per data directory, and the listeners bound, before any
    // start-up work touches the directory (cleanup, the catch-up sweep): a
    // second serve by mistake stops here having changed nothing.
    let _lock = sealdrop_hub::data_lock::lock(&settings.data).map_err(|e| vec![Failure::coded(e.code(), &e)])?;
    let listen = settings.listen;
    let listener = std::net::TcpListener::bind(listen).map_err(|e| {
        vec![Failure::coded(
            ErrorCode::ListenFailed,
            format!("cannot listen on {listen}: {e} (is another hub running?)"),
        )]
    })?;
    let metrics = match settings.metrics_listen {
        Some(addr) => Some(std::net::TcpListener::bind(addr).map_err(|e| {
            vec![Failure::coded(ErrorCode::ListenFailed, format!("cannot listen for metrics on {addr}: {e}"))]
        })?),
        None => None,
    };
    // Enough file descriptors for every connection the cap admits, and the files.
    let open_files =
        sealdrop_hub::connections::raise_open_file_limit(settings.connections).map_err(|e| vec![Failure::from(e)])?;
    tracing::debug!(open_files, "the open-file limit");
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| vec![Failure::from(format!("cannot start the async runtime: {e}"))])?;
    let served: Result<(), String> = runtime.block_on(async move {
        let config = HubConfig {
            max_upload_bytes: settings.max_upload_bytes,
            max_single_request_bytes: settings.max_single_request_bytes,
            sweep_interval: settings.sweep_interval,
            rate_limits: settings.rate_limits,
            body_idle_timeout: settings.body_idle_timeout,
            upload_resume_window: settings.upload_resume_window,
            log_access: settings.log_access,
            quotas: settings.quotas,
            max_inbox_waiters: settings.max_inbox_waiters,
            ..HubConfig::default()
        };
        // On this runtime: the database's connections belong to it.
        let hub = Hub::open_with(&settings.data, clock, &settings.backends)
            .await
            .map_err(|e| e.to_string())?
            .with_config(config)
            .with_trusted_proxies(settings.trusted_proxies.clone());
        let tokio_listener = |listener: std::net::TcpListener| {
            listener
                .set_nonblocking(true)
                .and_then(|()| tokio::net::TcpListener::from_std(listener))
                .map_err(|e| format!("cannot use the listening socket: {e}"))
        };
        let listener = tokio_listener(listener)?;
        let metrics = metrics.map(tokio_listener).transpose()?;
        let mut bound = vec![listener.local_addr()];
        bound.extend(metrics.as_ref().map(tokio::net::TcpListener::local_addr));
        let mut stdout = std::io::stdout();
        for addr in bound {
            let addr = addr.map_err(|e| format!("cannot read the bound address: {e}"))?;
            writeln!(stdout, "{addr}").map_err(|e| format!("cannot write to stdout: {e}"))?;
        }
        stdout.flush().map_err(|e| format!("cannot write to stdout: {e}"))?;
        let options = ServeOptions {
            tls,
            metrics,
            shutdown_grace: settings.shutdown_grace,
            header_read_timeout: settings.header_read_timeout,
            connections: settings.connections,
        };
        sealdrop_hub::serve_with(listener, hub, options, shutdown_signal())
            .await
            .map_err(|e| format!("serving failed: {e}"))
    });
    served.map_err(|e| vec![Failure::from(e)])
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = interrupt => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; stop the hub with SIGINT");
                let _ = interrupt.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("received a stop signal");
}
