//! `cxlkafka`: the gateway binary.

#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use cxlkafka_gateway::admin::{self, AdminCommand};
use cxlkafka_gateway::bench;
use cxlkafka_gateway::broker_config::loggers::Loggers;
use cxlkafka_gateway::cluster::EXIT_REGION_LOST;
use cxlkafka_gateway::config::{
    with_config_file, BenchCommand, Cli, Command, LogFormat, ServeArgs,
};
use cxlkafka_gateway::{serve_with_loggers, telemetry, Stopped};
use tracing::{error, info};

fn main() -> ExitCode {
    let argv = match with_config_file(std::env::args_os().collect()) {
        Ok(argv) => argv,
        Err(error) => {
            eprintln!("cxlkafka serve: {error}");
            return ExitCode::from(2);
        }
    };
    let cli = Cli::parse_from(argv);
    match cli.command {
        Command::Serve(args) => run_serve(args),
        Command::Bench(command) => run_bench(command),
        Command::User(command) => run_user(command),
        Command::Topic(command) => run_admin(AdminCommand::Topic(command)),
        Command::Group(command) => run_admin(AdminCommand::Group(command)),
        Command::Cluster(command) => run_admin(AdminCommand::Cluster(command)),
        Command::Acl(command) => run_admin(AdminCommand::Acl(command)),
    }
}

/// Runs `topic`, `group`, `cluster` or `acl`: results on stdout, the error
/// (Kafka's name and what to do) on stderr with exit status 1.
fn run_admin(command: AdminCommand) -> ExitCode {
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| {
            admin::AdminError::Other(format!("cannot start the async runtime: {error}"))
        })
        .and_then(|runtime| runtime.block_on(admin::run(command)));
    match outcome {
        Ok(admin::Status::Done) => ExitCode::SUCCESS,
        Ok(admin::Status::Failed) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("cxlkafka: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run_user(command: cxlkafka_gateway::security::cli::UserCommand) -> ExitCode {
    let outcome = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| format!("cannot start the async runtime: {error}"))
        .and_then(|runtime| runtime.block_on(cxlkafka_gateway::security::cli::run(command)));
    match outcome {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("cxlkafka user: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run_bench(command: BenchCommand) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("cxlkafka bench: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let outcome = runtime.block_on(async move {
        match command {
            BenchCommand::Produce(args) => bench::produce(args).await.map(drop),
            BenchCommand::Consume(args) => bench::consume(args).await.map(drop),
            BenchCommand::Sink(args) => {
                let server = bench::sink::start(&args, shutdown_signal()).await?;
                server.stopped().await;
                Ok(())
            }
        }
    });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("cxlkafka bench: {error}");
            ExitCode::FAILURE
        }
    }
}

fn run_serve(args: ServeArgs) -> ExitCode {
    let filter = match args.log_filter() {
        Ok(filter) => filter,
        Err(error) => {
            eprintln!(
                "cxlkafka: invalid --log-level {:?}: {error}",
                args.log_level
            );
            return ExitCode::from(2);
        }
    };
    // The filter is reloadable: BROKER_LOGGER changes swap it at runtime.
    let loggers = match args.log_format {
        LogFormat::Text => {
            // Colour only for a person at a terminal: log files and
            // shippers get plain text (and NO_COLOR is honoured, as
            // everywhere).
            let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
            let builder = tracing_subscriber::fmt()
                .with_env_filter(filter)
                .with_ansi(colour)
                .with_filter_reloading();
            let handle = builder.reload_handle();
            builder.init();
            Loggers::reloadable(&args.log_level, move |filter| {
                handle.reload(filter).map_err(|error| error.to_string())
            })
        }
        LogFormat::Json => {
            let builder = tracing_subscriber::fmt()
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_env_filter(filter)
                .with_filter_reloading();
            let handle = builder.reload_handle();
            builder.init();
            Loggers::reloadable(&args.log_level, move |filter| {
                handle.reload(filter).map_err(|error| error.to_string())
            })
        }
    };
    let loggers = std::sync::Arc::new(loggers);

    // Nothing is bound or mapped for a configuration that cannot work.
    if let Err(error) = args.check() {
        error!(%error, "invalid configuration");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            error!(%error, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        if args.no_metrics {
            info!("metrics off (--no-metrics): no recorder, no /metrics endpoint");
        } else if let Err(error) = telemetry::install_prometheus(
            args.metrics_addr,
            std::time::Duration::from_millis(args.metrics_idle_timeout_ms),
        ) {
            error!(addr = %args.metrics_addr, %error, "cannot serve metrics");
            return ExitCode::FAILURE;
        }
        info!(
            region_path = %args.region_path().display(),
            region_size = %args.region_size,
            data_dir = %args.data_dir.display(),
            memory_backend = ?args.memory_backend,
            metrics_addr = %args.metrics_addr,
            "starting gateway"
        );
        let server = match serve_with_loggers(&args, loggers, shutdown_signal()).await {
            Ok(server) => server,
            Err(error) => {
                error!(%error, "cannot start the gateway");
                return ExitCode::FAILURE;
            }
        };
        match server.stopped().await {
            Stopped::Requested => {
                info!("stopped");
                ExitCode::SUCCESS
            }
            Stopped::RegionLost(change) => {
                error!(
                    %change,
                    exit_code = EXIT_REGION_LOST,
                    "stopped: this gateway can no longer serve the region it mapped; restart it to \
                     join the region at the path"
                );
                ExitCode::from(EXIT_REGION_LOST)
            }
        }
    })
}

/// Completes on the first SIGINT (Ctrl-C) or SIGTERM. If a handler cannot
/// be installed, that signal is simply not awaited; the other still works.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(error) => {
                error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = ctrl_c => info!("SIGINT received"),
        () = terminate => info!("SIGTERM received"),
    }
}
