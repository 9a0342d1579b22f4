//! The `flotilla-worker` binary: parse flags, run, exit 0 after a shutdown
//! asked for by a signal, 1 with a one-line reason when the worker cannot
//! start or a queue consumer fails (so the platform restarts it), 2 for bad
//! flags or environment (clap's usage error).

use clap::Parser;
use flotilla_worker::app;
use flotilla_worker::config::Config;
use flotilla_worker::shutdown::StopRequests;

#[tokio::main]
async fn main() {
    let config = Config::parse();
    flotilla::telemetry::init_tracing(config.log.log_format, "info");
    let stop = match StopRequests::from_signals() {
        Ok(stop) => stop,
        Err(e) => fail(anyhow::Error::new(e).context("cannot listen for SIGTERM/SIGINT")),
    };
    if let Err(e) = app::run(config, stop).await {
        fail(e);
    }
}

/// One line on stderr: the error and its causes, each said once.
fn fail(e: anyhow::Error) -> ! {
    eprintln!(
        "flotilla-worker: {}",
        flotilla::backend::error_chain(e.as_ref())
    );
    std::process::exit(1);
}
