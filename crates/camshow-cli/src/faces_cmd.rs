//! `camshow faces scan` (find the people in a target and write a face map)
//! and `camshow faces identity` (save one person's identity from photos).

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;

use anyhow::Result;
use camshow_core::detect::DetectorKind;
use camshow_core::mapping::DEFAULT_CLUSTER_DISTANCE;
use camshow_core::pipeline::SwapEngine;
use clap::{Args, Subcommand};

use crate::settings_args::{EngineArgs, FaceArgs, ModelFiles};

#[derive(Debug, Args)]
pub struct FacesArgs {
    #[command(subcommand)]
    command: FacesCommand,
}

#[derive(Debug, Subcommand)]
enum FacesCommand {
    /// Group the faces of an image or video (sampled once a second) into people and write a map
    /// whose `source` fields you fill in, then run `camshow swap --map MAP -t TARGET -o OUT`
    Scan {
        /// Image or video to scan
        target: PathBuf,
        /// Map file to write (JSON); person thumbnails are written beside it
        #[arg(short, long, value_name = "MAP.json")]
        output: PathBuf,
        /// Faces closer than this cosine distance (1 − cos) are one person
        #[arg(long, default_value_t = DEFAULT_CLUSTER_DISTANCE)]
        cluster_distance: f32,
        /// Face detector [settings: engine.detector]
        #[arg(long, value_parser = crate::settings_args::parse::<DetectorKind>)]
        detector: Option<DetectorKind>,
        #[command(flatten)]
        models: ModelFiles,
        #[command(flatten)]
        engine: EngineArgs,
    },
    /// Save the identity of one person from one or more photos (or a folder of them):
    /// `camshow swap -s person.json` then uses it without the photos
    Identity {
        /// Photos of the person; repeat, or give a folder
        #[arg(short, long, value_name = "IMAGE|DIR", required = true)]
        source: Vec<PathBuf>,
        /// Identity file to write (JSON)
        #[arg(short, long, value_name = "PERSON.json")]
        output: PathBuf,
        #[command(flatten)]
        face: FaceArgs,
        #[command(flatten)]
        engine: EngineArgs,
    },
}

#[allow(clippy::print_stdout)]
pub fn run(args: &FacesArgs) -> Result<ExitCode> {
    match &args.command {
        FacesCommand::Scan {
            target,
            output,
            cluster_distance,
            detector,
            models,
            engine,
        } => {
            let mut l = crate::settings_args::load()?;
            engine.overlay(&mut l);
            l.overlay("engine.detector", "--detector", *detector, |s, v| {
                s.engine.detector = v;
            });
            let settings = crate::settings_args::finish(l)?;
            let store = models.store(&settings)?;
            let ctx = crate::settings_args::context(&settings, store)?;
            let o = camshow_media::faces::scan(
                &ctx,
                settings.engine.detector,
                target,
                output,
                *cluster_distance,
                &AtomicBool::new(false),
            )?;
            println!(
                "{} person(s) in {} face(s) over {} sampled frame(s) of {}",
                o.map.people.len(),
                o.faces,
                o.frames,
                target.display()
            );
            for p in &o.map.people {
                println!(
                    "  person {}: seen in {} frame(s), thumbnail {}",
                    p.id,
                    p.frames_seen.len(),
                    o.folder.join(&p.thumbnail).display()
                );
            }
            println!(
                "map: {} — set \"source\" for each person to swap, then: camshow swap --map {} -t {} -o OUTPUT",
                output.display(),
                output.display(),
                target.display()
            );
        }
        FacesCommand::Identity {
            source,
            output,
            face,
            engine,
        } => {
            let mut l = crate::settings_args::load()?;
            engine.overlay(&mut l);
            face.overlay(&mut l)?;
            let settings = crate::settings_args::finish(l)?;
            let ctx = crate::settings_args::context(&settings, face.store(&settings)?)?;
            let photos = camshow_media::swap_job::expand_sources(source)?;
            let inputs: Vec<(&str, &std::path::Path)> = photos
                .iter()
                .map(|p| ("source photo", p.as_path()))
                .collect();
            camshow_core::atomic::ensure_not_input(output, &inputs)?;
            let engine = SwapEngine::load(&ctx, &settings)?;
            let id = camshow_media::swap_job::make_identity(&engine, source)?;
            id.save(output)?;
            println!(
                "identity of {} photo(s) ({}) written to {}",
                id.photos.len(),
                id.average,
                output.display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
