//! The CLI verbs. Each prints a readable table, or with `--json` one JSON
//! document for scripts; progress goes to stderr and only to a terminal.

pub mod candles;
pub mod connect;
pub mod dlq;
pub mod enqueue;
pub mod job;
pub mod migrate;
pub mod queues;
pub mod tenants;
pub mod trading;

use std::io::IsTerminal as _;

use indicatif::{ProgressBar, ProgressStyle};

/// `--json`: one JSON document on stdout instead of text, for scripts.
#[derive(Debug, Clone, Copy, clap::Args)]
pub struct Output {
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// A progress bar on stderr, hidden when stderr is not a terminal or output is JSON.
pub fn progress(total: u64, what: &str, json: bool) -> ProgressBar {
    if json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar
}

/// Milliseconds since the epoch as RFC 3339 (UTC, ms precision).
pub fn time(ms: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_millis(t).to_string()
}
