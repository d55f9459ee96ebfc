//! `cerebrum-node`: the inference node's command line.

use std::path::PathBuf;
use std::process::ExitCode;

use cerebrum_node::config::{NodeConfig, Settings};
use cerebrum_service::settings::SettingFlags;
use clap::{Parser, Subcommand};

/// Cerebrum inference node: serves GGUF models through llama.cpp with token streaming.
///
/// Settings come from a TOML file (--config), then environment variables, then
/// flags; `cerebrum-node serve --help` lists every one with its default.
#[derive(Parser)]
#[command(name = "cerebrum-node", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API (Cerebrum and OpenAI shapes) on 127.0.0.1:9000 by default.
    Serve {
        /// TOML config file (keys as listed below).
        #[arg(long, short)]
        config: Option<PathBuf>,
        #[command(flatten)]
        settings: SettingFlags<Settings>,
    },
    /// Print a new random API key (256 bits, URL-safe).
    GenKey,
    /// Show what a GGUF file holds: architecture, parameters, quantization, context, memory.
    Inspect {
        /// The .gguf file.
        file: PathBuf,
        /// Sequence slots to size the KV cache for (CEREBRUM_PARALLEL).
        #[arg(long, default_value_t = 2)]
        parallel: u64,
        /// Context tokens per slot (CEREBRUM_CONTEXT_SIZE).
        #[arg(long, default_value_t = 2048)]
        context_size: u64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

fn init_tracing() {
    cerebrum_service::logging::init("info,llama-cpp-2=warn");
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::GenKey => match cerebrum_node::auth::generate_key() {
            Ok(k) => {
                println!("{k}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("cerebrum-node: {e}");
                ExitCode::FAILURE
            }
        },
        Command::Inspect {
            file,
            parallel,
            context_size,
            json,
        } => {
            // llama.cpp's own log lines would bury the report.
            tracing_subscriber::fmt()
                .with_env_filter("error")
                .with_writer(std::io::stderr)
                .init();
            let run = cerebrum_node::fit::RunShape {
                slots: parallel,
                context: context_size,
                ubatch: cerebrum_node::engine::n_batch(parallel as u32).into(),
            };
            match cerebrum_node::inspect::inspect(&file, &run) {
                Ok(report) => {
                    if json {
                        println!(
                            "{}",
                            serde_json::to_string_pretty(&report).unwrap_or_default()
                        );
                    } else {
                        println!("{report}");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("cerebrum-node inspect: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Serve { config, settings } => {
            init_tracing();
            let cfg = match NodeConfig::load(config.as_deref(), settings.values()) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("cerebrum-node: {e}");
                    return ExitCode::from(2);
                }
            };
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("cerebrum-node: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(cerebrum_node::server::serve(cfg)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("cerebrum-node: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
