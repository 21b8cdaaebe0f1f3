//! `camshow config`: the settings file and the effective settings.

use std::process::ExitCode;

use anyhow::Result;
use camshow_core::settings::{Settings, config_file, reset_in_file, set_in_file};
use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct ConfigArgs {
    #[command(subcommand)]
    command: ConfigCommand,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// The effective settings (defaults < settings file < CAMSHOW_* variables) and where each value came from
    Show {
        /// Print JSON: the settings, and each key's origin
        #[arg(long)]
        json: bool,
    },
    /// The settings file's path
    Path,
    /// Set KEY (e.g. engine.detector, processors[0].opacity, video.workers) to VALUE in the settings file
    Set {
        /// Key path
        key: String,
        /// Value (TOML syntax for lists and tables: `["box","occlusion"]`, `{type = "face_enhancer"}`)
        value: String,
    },
    /// Remove KEY from the settings file (back to its default), or the whole file without KEY
    Reset {
        /// Key path
        key: Option<String>,
    },
    /// The JSON Schema of the settings
    Schema,
}

#[allow(clippy::print_stdout)]
pub fn run(args: &ConfigArgs) -> Result<ExitCode> {
    let explicit = crate::settings_args::CONFIG.get().cloned().flatten();
    let file = config_file(explicit.as_deref());
    match &args.command {
        ConfigCommand::Show { json } => {
            let l = crate::settings_args::load()?;
            let entries = l.entries()?;
            if *json {
                let origins: serde_json::Map<String, serde_json::Value> = entries
                    .iter()
                    .map(|(k, _, o)| (k.clone(), serde_json::to_value(o).unwrap_or_default()))
                    .collect();
                let v = serde_json::json!({
                    "file": l.file, "file_found": l.file_found, "settings": l.settings, "origins": origins,
                });
                println!("{}", serde_json::to_string_pretty(&v)?);
            } else {
                println!(
                    "# settings file: {}{}",
                    l.file.display(),
                    if l.file_found { "" } else { " (not present)" }
                );
                let width = entries.iter().map(|e| e.0.len()).max().unwrap_or(0);
                for (k, v, o) in entries {
                    let v = if v.is_null() {
                        "(unset)".to_string()
                    } else {
                        v.to_string()
                    };
                    println!("{k:<width$} = {v:<24} # {o}");
                }
            }
        }
        ConfigCommand::Path => println!("{}", file.display()),
        ConfigCommand::Set { key, value } => {
            set_in_file(&file, key, value)?;
            println!("{key} = {value} written to {}", file.display());
        }
        ConfigCommand::Reset { key } => {
            reset_in_file(&file, key.as_deref())?;
            match key {
                Some(k) => println!("{k} reset to its default in {}", file.display()),
                None => println!(
                    "settings file {} removed: every value is back to its default",
                    file.display()
                ),
            }
        }
        ConfigCommand::Schema => {
            println!(
                "{}",
                serde_json::to_string_pretty(&Settings::json_schema())?
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
