//! `camshow faces scan`: find the people in a target and write a face map.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use camshow_core::Frame;
use camshow_core::analysis::{FaceAnalyser, Needs};
use camshow_core::detect::DetectorKind;
use camshow_core::mapping::{DEFAULT_CLUSTER_DISTANCE, FaceMap};
use camshow_core::safety::SafetyGate;
use clap::{Args, Subcommand};

use crate::engine_args::EngineArgs;

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
        /// Face detector
        #[arg(long, default_value = "centerface", value_parser = crate::engine_args::parse::<DetectorKind>)]
        detector: DetectorKind,
        /// Use FILE for model ID instead of the installed copy; repeatable
        #[arg(long, value_name = "ID=FILE")]
        model_file: Vec<String>,
        #[command(flatten)]
        engine: EngineArgs,
    },
}

#[allow(clippy::print_stdout)]
pub fn run(args: &FacesArgs) -> Result<ExitCode> {
    let FacesCommand::Scan {
        target,
        output,
        cluster_distance,
        detector,
        model_file,
        engine,
    } = &args.command;
    let store = crate::engine_args::with_model_files(engine.store(), model_file)?;
    let rt = engine.runtime()?;
    let gate = SafetyGate::load(&rt, &store)?;
    let analyser = FaceAnalyser::load(
        *detector,
        Needs {
            embedding: true,
            landmarks_106: false,
        },
        &rt,
        &store,
    )?;

    // (frame index, frame) samples: the image itself, or one frame a second.
    let mut frames: Vec<(u64, Frame)> = Vec::new();
    if crate::swap_cmd::is_video(target) {
        let info = camshow_media::video::probe(target)?;
        let mut dec = camshow_media::video::Decoder::open_samples(
            target,
            &info,
            camshow_media::video::Trim::default(),
        )?;
        let mut i = 0;
        while let Some(f) = dec.next_frame()? {
            frames.push((i, f));
            i += 1;
        }
    } else {
        frames.push((0, camshow_media::image_io::read_image(target)?));
    }
    let unsafe_count = frames
        .iter()
        .map(|(_, f)| gate.check(f).map(|v| !v.safe))
        .collect::<camshow_core::Result<Vec<bool>>>()?
        .into_iter()
        .filter(|u| *u)
        .count();
    let n = frames.len();
    if camshow_media::job::video_refused(n as u64, unsafe_count as u64) {
        bail!(
            "refused by the content-safety gate: {unsafe_count} of {n} sampled frames of {} show nudity",
            target.display()
        );
    }

    let mut found: Vec<(u64, [f32; 4], Vec<f32>)> = Vec::new();
    let mut crops: Vec<Frame> = Vec::new();
    for (i, f) in &frames {
        for face in analyser.analyse(
            f,
            Needs {
                embedding: true,
                landmarks_106: false,
            },
        )? {
            let Some(e) = face.embedding.clone() else {
                continue;
            };
            let [x1, y1, x2, y2] = face.bbox;
            let (w, h) = (x2 - x1, y2 - y1);
            crops.push(f.crop(
                (x1 - 0.25 * w) as i64,
                (y1 - 0.25 * h) as i64,
                (1.5 * w) as i64,
                (1.5 * h) as i64,
            ));
            found.push((*i, face.bbox, e));
        }
    }
    if found.is_empty() {
        return Err(camshow_core::Error::NoFace {
            what: format!("target {}", target.display()),
        }
        .into());
    }
    let dir = match output.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let stem = output
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "map".into());
    let mut representative = Vec::new();
    let map = FaceMap::from_faces(target.clone(), *cluster_distance, &found, |person, face| {
        representative.push((person, face));
        PathBuf::from(format!("{stem}-person-{person}.png"))
    });
    for (person, face) in representative {
        let p = dir.join(&map.people[person].thumbnail);
        camshow_media::image_io::write_image(
            &p,
            &crops[face],
            "face thumbnail from a Camshow Deepfaker face map",
        )
        .with_context(|| format!("writing {}", p.display()))?;
    }
    let json = serde_json::to_string_pretty(&map)?;
    camshow_media::image_io::write_atomic(output, json.as_bytes())?;
    println!(
        "{} person(s) in {} face(s) over {n} sampled frame(s) of {}",
        map.people.len(),
        found.len(),
        target.display()
    );
    for p in &map.people {
        println!(
            "  person {}: seen in {} frame(s), thumbnail {}",
            p.id,
            p.frames_seen.len(),
            dir.join(&p.thumbnail).display()
        );
    }
    println!(
        "map: {} — set \"source\" for each person to swap, then: camshow swap --map {} -t {} -o OUTPUT",
        output.display(),
        output.display(),
        target.display()
    );
    Ok(ExitCode::SUCCESS)
}
