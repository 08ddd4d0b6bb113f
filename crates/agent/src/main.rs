//! `agent`: Keel's node agent.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use agent::engine::{DockerApi, Engine};
use agent::status::{collect, Sources};
use agent::{api, notify};
use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

/// Keel's node agent: watches the container engine and serves the node's status.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Cli {
    /// The agent's status socket.
    #[arg(long, default_value = "/run/keel/agent.sock", global = true)]
    socket: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the agent: wait for the engine, tell systemd it is ready, serve the status.
    Run {
        /// Docker API socket.
        #[arg(long, default_value = "/run/docker.sock")]
        engine_socket: PathBuf,
        /// How long to wait for the engine before giving up.
        #[arg(long, default_value_t = 300)]
        engine_wait_secs: u64,
    },
    /// Print the running agent's status as JSON.
    Status,
}

fn run(socket: PathBuf, engine_socket: PathBuf, wait: Duration) -> Result<()> {
    let engine = DockerApi::new(&engine_socket);
    let sources = Sources::under(std::path::Path::new("/"));
    let started = Instant::now();
    loop {
        let state = engine.state();
        if state.state == "running" {
            break;
        }
        if started.elapsed() > wait {
            bail!(
                "container engine not answering after {}s: {}",
                wait.as_secs(),
                state.error.unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let listener = api::bind(&socket)?;
    let status = collect(&sources, &engine);
    let line = format!(
        "keel-agent: node ready: {} on slot {}, engine docker {}",
        status.os,
        status.booted_slot,
        status.engine.version.as_deref().unwrap_or("?")
    );
    notify::notify(&format!("READY=1\nSTATUS={line}")).context("notifying systemd")?;
    println!("{line}");
    tracing::info!("{line}");
    api::serve(listener, move || {
        serde_json::to_value(collect(&sources, &engine)).unwrap_or_default()
    });
    Ok(())
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .without_time()
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Run {
            engine_socket,
            engine_wait_secs,
        } => run(
            cli.socket,
            engine_socket,
            Duration::from_secs(engine_wait_secs),
        ),
        Command::Status => {
            let raw = api::fetch(&cli.socket)?;
            let v: serde_json::Value = serde_json::from_str(raw.trim())
                .context("agent answered something that is not JSON")?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            Ok(())
        }
    }
}
