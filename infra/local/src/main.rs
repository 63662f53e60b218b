//! `hearth-local`: the embedded local stack's command line.
//!
//! - `up`: start the whole platform on this machine and print where everything listens.
//! - `simulate`: connect simulated devices to a running stack and load it.
//! - `bench`: measure raw broker passthrough and the full pipeline in one run.
//! - `token`: print a development token for the owner API (works while the stack runs).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use hearth_local::bench;
use hearth_local::simulator::{self, Options};
use hearth_local::stack::{Config, Stack};

/// The stack allocates per message on every hop; glibc's allocator showed as about a fifth of
/// the stack's CPU in a profile under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "hearth-local",
    version,
    about = "Hearth's embedded local stack"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the whole platform locally (MQTT broker, shadow service, topic rules, queues,
    /// functions, storage, HTTP). Stops cleanly on Ctrl-C.
    Up {
        #[command(flatten)]
        stack: StackArgs,
    },
    /// Connect simulated devices to a running stack and publish telemetry at a target rate.
    Simulate {
        #[command(flatten)]
        load: LoadArgs,
        /// The stack's MQTT listener.
        #[arg(long, default_value = "127.0.0.1:1883")]
        mqtt: SocketAddr,
        /// The stack's HTTP listener (for the loss check).
        #[arg(long, default_value = "127.0.0.1:8080")]
        http: SocketAddr,
        /// Publish on bench/raw/<thing> (no rule matches) instead of telemetry topics.
        #[arg(long)]
        raw: bool,
    },
    /// Start a stack and measure (a) raw broker passthrough to an in-process subscriber and
    /// (b) the full pipeline, with publishers in a separate process.
    Bench {
        #[command(flatten)]
        stack: StackArgs,
        #[command(flatten)]
        load: LoadArgs,
    },
    /// Print a development token for the owner API (signed with the data directory's key; the
    /// stack may be running).
    Token {
        /// The user (the token's `sub`).
        user: String,
        /// A group to be in (repeat for several), e.g. `--group makers`.
        #[arg(long = "group")]
        groups: Vec<String>,
        /// A verified e-mail address to carry.
        #[arg(long)]
        email: Option<String>,
        /// Validity in seconds (at most a week).
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
        /// Data directory of the stack the token is for.
        #[arg(long, env = "HEARTH_DATA_DIR", default_value = ".hearth")]
        data_dir: PathBuf,
    },
}

#[derive(clap::Args)]
struct StackArgs {
    /// Data directory (shadows, state, queues survive restarts here).
    #[arg(long, env = "HEARTH_DATA_DIR", default_value = ".hearth")]
    data_dir: PathBuf,
    /// MQTT listener.
    #[arg(long, default_value = "127.0.0.1:1883")]
    mqtt: SocketAddr,
    /// HTTP listener.
    #[arg(long, default_value = "127.0.0.1:8080")]
    http: SocketAddr,
    /// The SAM template whose topic rules, queues and event sources are emulated.
    #[arg(long, default_value = "template.yaml")]
    template: PathBuf,
    /// Let any MQTT client connect and use any topic, without credentials or the device policy
    /// (quick experiments only).
    #[arg(long)]
    allow_anonymous: bool,
    /// Template parameters, as `sam deploy --parameter-overrides`: `Key=Value ...` (e.g.
    /// `EnableOwnerApi=false`). An unknown parameter or a value outside its AllowedValues stops
    /// the start.
    #[arg(long, num_args = 1.., value_parser = hearth_local::stack::parameter_override)]
    parameter_overrides: Vec<(String, String)>,
    /// Run on a manual clock, standing still until `POST /local/clock {"advanceSeconds": n}`
    /// moves it (schedules fire as it moves): for tests and demos of durations.
    #[arg(long)]
    manual_clock: bool,
}

#[derive(clap::Args, Clone)]
struct LoadArgs {
    /// Simulated devices.
    #[arg(long, default_value_t = 1000)]
    devices: usize,
    /// Target telemetry messages per second, all devices together.
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// Seconds of publishing.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Serial number (and, with --raw, thing name) prefix.
    #[arg(long, default_value = "sim")]
    prefix: String,
    /// The user (development token) who claims the simulated devices.
    #[arg(long, default_value = "sim-owner")]
    owner: String,
}

impl StackArgs {
    fn config(&self) -> Config {
        let mut config = Config::new(
            self.data_dir.clone(),
            self.mqtt,
            self.http,
            self.template.clone(),
        );
        config.allow_anonymous = self.allow_anonymous;
        config.parameter_overrides = self.parameter_overrides.iter().cloned().collect();
        config.manual_clock = self.manual_clock;
        config
    }
}

fn init_logs() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("RUST_LOG")
        .unwrap_or_else(|_| EnvFilter::new("warn,hearth_local=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

#[tokio::main]
#[allow(
    clippy::print_stdout,
    reason = "a command-line tool prints its results"
)]
async fn main() -> anyhow::Result<()> {
    init_logs();
    match Cli::parse().command {
        Command::Up { stack } => {
            let stack = Stack::start(stack.config())
                .await
                .context("starting the local stack")?;
            println!("{}", stack.banner());
            tokio::signal::ctrl_c()
                .await
                .context("waiting for Ctrl-C")?;
            println!("stopping…");
            stack.stop().await;
            println!("stopped; data kept in the data directory");
        }
        Command::Simulate {
            load,
            mqtt,
            http,
            raw,
        } => {
            let report = simulator::run(Options {
                mqtt,
                http: Some(http),
                devices: load.devices,
                rate: load.rate,
                duration: Duration::from_secs(load.duration),
                prefix: load.prefix,
                owner: load.owner,
                raw,
                progress: true,
            })
            .await;
            println!("{}", simulator::summary(&report));
            if let Some(error) = report.provision_error {
                anyhow::bail!("could not provision the simulated devices: {error}");
            }
            if !report.lost.is_empty() {
                anyhow::bail!("{} device(s) lost their last message", report.lost.len());
            }
        }
        Command::Token {
            user,
            groups,
            email,
            ttl,
            data_dir,
        } => {
            let tokens = hearth_local::tokens::DevTokens::open(
                &data_dir,
                std::sync::Arc::new(hearth_ports::SystemClock),
            )?;
            let (token, _) =
                tokens.issue(&user, &groups, email.as_deref(), Duration::from_secs(ttl))?;
            println!("{token}");
        }
        Command::Bench { stack, load } => {
            let result = bench::run(
                stack.config(),
                bench::Load {
                    devices: load.devices,
                    rate: load.rate,
                    duration: Duration::from_secs(load.duration),
                },
            )
            .await
            .context("benchmark")?;
            println!("{result}");
        }
    }
    Ok(())
}
