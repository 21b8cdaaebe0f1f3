//! `camshow ui`: opens the desktop app. The window is its own binary
//! (`camshow-desktop`, built beside `camshow`), so the CLI and the server
//! keep running on machines without WebKitGTK.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Args;

#[derive(Debug, Args)]
pub struct UiArgs {
    /// Arguments for the app (`--source PHOTO`, `--target FILE`, `--screen live`, …; see `camshow ui -- --help`)
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "APP ARGS"
    )]
    args: Vec<OsString>,
}

/// The app's binary: beside this one, else on `PATH`.
pub fn desktop_binary(this: Option<&Path>) -> Option<PathBuf> {
    let name = format!("camshow-desktop{}", std::env::consts::EXE_SUFFIX);
    if let Some(dir) = this.and_then(Path::parent) {
        let beside = dir.join(&name);
        if beside.is_file() {
            return Some(beside);
        }
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(&name))
            .find(|p| p.is_file())
    })
}

pub fn run(args: &UiArgs, config: Option<&Path>) -> Result<ExitCode> {
    let this = std::env::current_exe().ok();
    let Some(app) = desktop_binary(this.as_deref()) else {
        bail!(
            "the desktop app (camshow-desktop) is not installed beside camshow: build it with \
             `cargo build -p camshow-desktop` (scripts/setup.sh does, with the WebKitGTK packages it needs)"
        );
    };
    let mut cmd = std::process::Command::new(&app);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let status = cmd
        .args(&args.args)
        .status()
        .with_context(|| format!("cannot start {}", app.display()))?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(c) => ExitCode::from(u8::try_from(c).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}

#[cfg(test)]
mod tests {
    use super::desktop_binary;

    #[test]
    fn the_app_is_found_beside_the_cli() {
        let dir = tempfile::tempdir().unwrap();
        let cli = dir.path().join("camshow");
        std::fs::write(&cli, b"").unwrap();
        assert_ne!(
            desktop_binary(Some(&cli)).map(|p| p.parent().map(std::path::Path::to_path_buf)),
            Some(Some(dir.path().to_path_buf())),
            "nothing beside it yet"
        );
        let app = dir.path().join("camshow-desktop");
        std::fs::write(&app, b"").unwrap();
        assert_eq!(desktop_binary(Some(&cli)), Some(app));
    }
}
