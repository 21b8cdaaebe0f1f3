//! What each action does to the window's state (no window, no engine).

use std::path::{Path, PathBuf};

use camshow_core::settings::{NewValue, Settings};
use camshow_desktop::prefs::{Geometry, Prefs, Theme};
use camshow_desktop::state::{
    Action, AppState, Command, Job, JobDone, JobError, Person, Screen, TargetInfo,
};
use camshow_desktop::ui::{ChainEdit, chain_change};
use camshow_media::swap_job::MediaKind;
use serde_json::json;

fn accepted() -> AppState {
    AppState::new(
        Settings::default(),
        Prefs {
            terms_accepted: true,
            ..Prefs::default()
        },
    )
}

fn image_target(path: &str) -> TargetInfo {
    TargetInfo {
        path: PathBuf::from(path),
        kind: MediaKind::Image,
        width: 640,
        height: 480,
        duration: None,
        fps: None,
    }
}

fn video_target(path: &str) -> TargetInfo {
    TargetInfo {
        kind: MediaKind::Video,
        duration: Some(4.0),
        fps: Some(25.0),
        ..image_target(path)
    }
}

/// A state with a source and a target, as after both were checked.
fn ready() -> AppState {
    let mut s = accepted();
    s.apply(Action::ChooseSources(vec!["/photos/me.png".into()]));
    s.apply(Action::SourceReady(Vec::new()));
    s.apply(Action::ChooseTarget("/clips/party.jpg".into()));
    s.apply(Action::TargetReady(image_target("/clips/party.jpg")));
    s
}

#[test]
fn start_waits_for_terms_source_and_target_and_writes_next_to_the_target() {
    let mut s = AppState::new(Settings::default(), Prefs::default());
    assert_eq!(
        s.start_blocker().as_deref(),
        Some("accept the usage terms first")
    );
    assert!(s.apply(Action::Start).is_empty());
    assert!(s.notice.as_ref().is_some_and(|n| n.error));
    let cmds = s.apply(Action::AcceptTerms);
    assert!(matches!(&cmds[..], [Command::SavePrefs(p)] if p.terms_accepted));
    assert_eq!(s.start_blocker().as_deref(), Some("choose a source face"));
    assert_eq!(
        s.apply(Action::ChooseSources(vec!["/photos/me.png".into()])),
        vec![Command::PrepareSource {
            photos: vec!["/photos/me.png".into()],
            pick: None
        }]
    );
    assert_eq!(
        s.start_blocker().as_deref(),
        Some("the source face is being checked")
    );
    s.apply(Action::SourceReady(Vec::new()));
    assert_eq!(
        s.start_blocker().as_deref(),
        Some("choose a target image or video")
    );
    // A target replaces the last one and is probed first.
    assert_eq!(
        s.apply(Action::ChooseTarget("/clips/party.jpg".into())),
        vec![Command::ProbeTarget("/clips/party.jpg".into())]
    );
    // Probed with a source ready: the preview is made at once.
    let cmds = s.apply(Action::TargetReady(image_target("/clips/party.jpg")));
    assert_eq!(
        cmds,
        vec![Command::Preview {
            target: "/clips/party.jpg".into(),
            time: 0.0
        }]
    );
    assert!(s.preview.busy);
    assert_eq!(s.start_blocker(), None);
    assert_eq!(
        s.output_path(),
        Some(PathBuf::from("/clips/me-party.jpg")),
        "next to the target, named after both"
    );
    match &s.apply(Action::Start)[..] {
        [Command::Swap(req)] => {
            assert_eq!(req.sources, vec![PathBuf::from("/photos/me.png")]);
            assert_eq!(req.target, PathBuf::from("/clips/party.jpg"));
            assert_eq!(req.output, PathBuf::from("/clips/me-party.jpg"));
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(s.job, Job::Running { done: 0, .. }));
    // A second Start while running does nothing but say why.
    assert!(s.apply(Action::Start).is_empty());
    assert_eq!(s.start_blocker().as_deref(), Some("a swap is running"));
}

#[test]
fn an_output_that_is_an_input_is_refused() {
    let mut s = ready();
    s.apply(Action::ChooseOutput("/clips/party.jpg".into()));
    let why = s.start_blocker().unwrap();
    assert!(why.contains("is one of the inputs"), "{why}");
    assert!(s.apply(Action::Start).is_empty());
    s.apply(Action::ChooseOutput("/photos/me.png".into()));
    assert!(s.start_blocker().is_some());
    s.apply(Action::ChooseOutput("/out/new.png".into()));
    assert_eq!(s.start_blocker(), None);
}

#[test]
fn the_reference_selector_needs_a_reference_face() {
    let mut s = ready();
    s.apply(Action::SetOption {
        key: "engine.selector".into(),
        value: NewValue::Text("reference".into()),
    });
    assert!(s.start_blocker().unwrap().contains("reference face"));
    let cmds = s.apply(Action::ChooseReference("/photos/them.png".into()));
    assert!(matches!(&cmds[..], [Command::Preview { .. }]));
    match &s.apply(Action::Start)[..] {
        [Command::Swap(req)] => {
            assert_eq!(req.reference_face, Some(PathBuf::from("/photos/them.png")));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn an_option_is_checked_by_the_settings_saved_and_previewed() {
    let mut s = ready();
    s.apply(Action::PreviewReady {
        millis: 10.0,
        time: 0.0,
    });
    let cmds = s.apply(Action::SetOption {
        key: "processors[0].opacity".into(),
        value: NewValue::Json(json!(0.5)),
    });
    match &cmds[..] {
        [
            Command::Settings { settings, changes },
            Command::Preview { .. },
        ] => {
            assert_eq!(changes[0].0, "processors[0].opacity");
            assert_eq!(**settings, s.settings);
        }
        other => panic!("{other:?}"),
    }
    let opacity = serde_json::to_value(&s.settings).unwrap()["processors"][0]["opacity"].clone();
    assert_eq!(opacity, json!(0.5));
    // Out of range: the settings' own message, nothing changed, nothing sent.
    let before = s.settings.clone();
    let cmds = s.apply(Action::SetOption {
        key: "processors[0].opacity".into(),
        value: NewValue::Json(json!(7.0)),
    });
    assert!(cmds.is_empty());
    assert_eq!(s.settings, before);
    let text = &s.notice.as_ref().unwrap().text;
    assert!(text.contains("opacity"), "{text}");
    // Unknown keys too.
    assert!(
        s.apply(Action::SetOption {
            key: "engine.nope".into(),
            value: NewValue::Text("1".into()),
        })
        .is_empty()
    );
    // Text typed like the settings file.
    s.apply(Action::SetOption {
        key: "video.quality".into(),
        value: NewValue::Text("23".into()),
    });
    assert_eq!(s.settings.video.quality, 23);
}

#[test]
fn the_processor_chain_is_edited_as_one_option() {
    let mut s = ready();
    let add = chain_change(&s.settings, ChainEdit::Enhancer(true));
    s.apply(add);
    assert_eq!(
        s.settings.processor_ids(),
        vec!["face_swapper", "face_enhancer"]
    );
    // Adding twice keeps one.
    let again = chain_change(&s.settings, ChainEdit::Enhancer(true));
    s.apply(again);
    assert_eq!(s.settings.processor_ids().len(), 2);
    // Options survive a reorder.
    s.apply(Action::SetOption {
        key: "processors[0].opacity".into(),
        value: NewValue::Json(json!(0.25)),
    });
    let up = chain_change(&s.settings, ChainEdit::Up(1));
    s.apply(up);
    assert_eq!(
        s.settings.processor_ids(),
        vec!["face_enhancer", "face_swapper"]
    );
    let tree = serde_json::to_value(&s.settings).unwrap();
    assert_eq!(tree["processors"][1]["opacity"], json!(0.25));
    let remove = chain_change(&s.settings, ChainEdit::Enhancer(false));
    s.apply(remove);
    assert_eq!(s.settings.processor_ids(), vec!["face_swapper"]);
}

#[test]
fn progress_finish_cancel_and_failure() {
    let mut s = ready();
    assert!(s.apply(Action::Cancel).is_empty(), "nothing to cancel");
    s.apply(Action::Start);
    s.apply(Action::Progress {
        done: 25,
        total: Some(100),
        fps: 12.5,
        eta: Some(6.0),
    });
    assert_eq!(
        s.job,
        Job::Running {
            done: 25,
            total: Some(100),
            fps: 12.5,
            eta: Some(6.0),
            cancelling: false
        }
    );
    assert_eq!(s.apply(Action::Cancel), vec![Command::Cancel]);
    s.apply(Action::Progress {
        done: 30,
        total: Some(100),
        fps: 12.0,
        eta: Some(5.0),
    });
    assert!(matches!(
        s.job,
        Job::Running {
            cancelling: true,
            done: 30,
            ..
        }
    ));
    s.apply(Action::Finished(Err(JobError::Cancelled)));
    assert_eq!(s.job, Job::Cancelled);
    // A late progress report does not revive a finished job.
    s.apply(Action::Progress {
        done: 31,
        total: None,
        fps: 0.0,
        eta: None,
    });
    assert_eq!(s.job, Job::Cancelled);
    s.apply(Action::Start);
    s.apply(Action::Finished(Err(JobError::Failed(
        "the content-safety gate refused the target".into(),
    ))));
    assert!(matches!(&s.job, Job::Failed(w) if w.contains("gate")));
    assert!(
        s.notice
            .as_ref()
            .is_some_and(|n| n.error && n.text.contains("gate"))
    );
    s.apply(Action::Start);
    s.apply(Action::Finished(Ok(JobDone {
        output: "/clips/me-party.jpg".into(),
        kind: MediaKind::Image,
        summary: "6 of 6 face(s) swapped".into(),
    })));
    assert!(matches!(&s.job, Job::Done(d) if d.output == Path::new("/clips/me-party.jpg")));
    assert!(s.notice.as_ref().is_some_and(|n| !n.error));
    // A new target while a job runs is refused.
    s.apply(Action::Start);
    assert!(s.apply(Action::ChooseTarget("/x.png".into())).is_empty());
}

#[test]
fn a_video_target_scrubs_and_plays() {
    let mut s = ready();
    // Play needs a video.
    assert!(s.apply(Action::PlayPreview(true)).is_empty());
    s.apply(Action::ChooseTarget("/clips/walk.mp4".into()));
    s.apply(Action::TargetReady(video_target("/clips/walk.mp4")));
    assert_eq!(
        s.apply(Action::Scrub(2.5)),
        vec![Command::Preview {
            target: "/clips/walk.mp4".into(),
            time: 2.5
        }]
    );
    assert_eq!(
        s.apply(Action::PlayPreview(true)),
        vec![Command::PlayFrom(2.5)]
    );
    // While playing, option changes do not ask for stills.
    let cmds = s.apply(Action::SetOption {
        key: "processors[0].sharpness".into(),
        value: NewValue::Json(json!(0.5)),
    });
    assert!(matches!(&cmds[..], [Command::Settings { .. }]));
    s.apply(Action::PreviewReady {
        millis: 30.0,
        time: 3.0,
    });
    assert_eq!(
        s.preview.time, 3.0,
        "the scrub bar follows the playing video"
    );
    assert_eq!(
        s.apply(Action::PlayPreview(false)),
        vec![Command::StopPlaying]
    );
    s.apply(Action::PlayEnded);
    assert!(!s.preview.playing);
}

#[test]
fn live_starts_with_a_source_and_settings_apply_while_running() {
    let mut s = accepted();
    assert!(s.apply(Action::ToggleLive).is_empty());
    assert!(s.notice.as_ref().unwrap().text.contains("source"));
    s.apply(Action::ChooseSources(vec!["/photos/me.png".into()]));
    s.apply(Action::SourceReady(Vec::new()));
    match &s.apply(Action::ToggleLive)[..] {
        [Command::LiveStart(req)] => assert_eq!(req.sources, vec![PathBuf::from("/photos/me.png")]),
        other => panic!("{other:?}"),
    }
    assert!(s.live.running);
    // The source changes while live.
    let cmds = s.apply(Action::ChooseSources(vec!["/photos/other.png".into()]));
    assert_eq!(
        cmds,
        vec![
            Command::PrepareSource {
                photos: vec!["/photos/other.png".into()],
                pick: None
            },
            Command::LiveSource {
                photos: vec!["/photos/other.png".into()],
                pick: None
            },
        ]
    );
    // Ctrl+M flips the mirror setting (the engine thread applies it live).
    match &s.apply(Action::Key("Ctrl+M".into()))[..] {
        [Command::Settings { settings, changes }] => {
            assert!(settings.live.mirror);
            assert_eq!(changes[0].0, "live.mirror");
        }
        other => panic!("{other:?}"),
    }
    s.apply(Action::LiveStats {
        out_fps: 24.0,
        latency_ms: 41.0,
        frames: 120,
    });
    assert_eq!(s.live.frames, 120);
    assert_eq!(
        s.apply(Action::Key("Ctrl+L".into())),
        vec![Command::LiveStop]
    );
    s.apply(Action::LiveEnded(Err("camera unplugged".into())));
    assert!(!s.live.running);
    assert_eq!(s.live.error.as_deref(), Some("camera unplugged"));
}

#[test]
fn shortcuts() {
    let mut s = ready();
    // The live screen lists the cameras the report found.
    assert_eq!(s.apply(Action::Key("Ctrl+2".into())), vec![Command::Doctor]);
    assert_eq!(s.screen, Screen::Live);
    s.apply(Action::HealthReady(
        camshow_desktop::state::Health::default(),
    ));
    assert_eq!(
        s.apply(Action::Key("Ctrl+4".into())),
        Vec::new(),
        "checked once"
    );
    assert_eq!(s.screen, Screen::Models);
    s.apply(Action::Key("Ctrl+9".into()));
    assert_eq!(s.screen, Screen::Models, "no such screen");
    s.apply(Action::Key("Ctrl+1".into()));
    assert!(matches!(
        &s.apply(Action::Key("Ctrl+Enter".into()))[..],
        [Command::Swap(_)]
    ));
    assert_eq!(s.apply(Action::Key("Escape".into())), vec![Command::Cancel]);
    assert!(matches!(
        &s.apply(Action::Key("Ctrl+O".into()))[..],
        [Command::PickFile(_)]
    ));
    s.notice = Some(camshow_desktop::state::Notice {
        error: true,
        text: "x".into(),
    });
    s.apply(Action::Finished(Err(JobError::Cancelled)));
    s.apply(Action::Key("Escape".into()));
    assert_eq!(
        s.notice, None,
        "Escape closes the message when nothing runs"
    );
}

#[test]
fn the_face_mapper_scans_assigns_and_swaps_with_the_map() {
    let mut s = accepted();
    assert!(s.apply(Action::Scan).is_empty(), "no target yet");
    s.apply(Action::ChooseTarget("/clips/party.jpg".into()));
    s.apply(Action::TargetReady(image_target("/clips/party.jpg")));
    assert_eq!(
        s.apply(Action::Scan),
        vec![Command::Scan("/clips/party.jpg".into())]
    );
    assert!(s.mapper.scanning);
    let people = (0..3)
        .map(|i| Person {
            index: i,
            thumb: format!("person-{i}"),
            faces: 1,
            source: None,
        })
        .collect();
    s.apply(Action::Scanned {
        map: "/tmp/scan/map.json".into(),
        persons: people,
    });
    assert!(s.apply(Action::StartMapped).is_empty(), "nobody assigned");
    s.apply(Action::AssignPerson {
        person: 2,
        source: Some("/photos/me.png".into()),
    });
    s.apply(Action::AssignPerson {
        person: 0,
        source: Some("/photos/x.png".into()),
    });
    s.apply(Action::AssignPerson {
        person: 0,
        source: None,
    });
    match &s.apply(Action::StartMapped)[..] {
        [Command::AssignMap { map, assigned }, Command::Swap(req)] => {
            assert_eq!(map, Path::new("/tmp/scan/map.json"));
            assert_eq!(assigned, &vec![(2, PathBuf::from("/photos/me.png"))]);
            assert_eq!(req.map.as_deref(), Some(Path::new("/tmp/scan/map.json")));
            assert!(req.sources.is_empty());
            assert_eq!(req.output, PathBuf::from("/clips/mapped-party.jpg"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn models_panel_downloads_and_rechecks() {
    let mut s = accepted();
    assert_eq!(s.apply(Action::Show(Screen::Models)), vec![Command::Doctor]);
    s.apply(Action::HealthReady(camshow_desktop::state::Health {
        models: vec![camshow_desktop::state::ModelRow {
            id: "nudenet".into(),
            status: "missing".into(),
            ok: false,
            licence: "AGPL-3.0".into(),
            fetching: None,
        }],
        ..Default::default()
    }));
    assert!(s.health.loaded);
    assert_eq!(
        s.apply(Action::Show(Screen::Models)),
        Vec::new(),
        "checked once"
    );
    assert_eq!(s.apply(Action::CheckHealth), vec![Command::Doctor]);
    assert_eq!(
        s.apply(Action::Fetch("nudenet".into())),
        vec![Command::Fetch("nudenet".into())]
    );
    s.apply(Action::FetchProgress {
        id: "nudenet".into(),
        fraction: 0.5,
    });
    assert_eq!(s.health.models[0].fetching, Some(0.5));
    assert_eq!(
        s.apply(Action::Fetched {
            id: "nudenet".into(),
            result: Ok(())
        }),
        vec![Command::Doctor]
    );
    assert_eq!(s.health.models[0].fetching, None);
}

#[test]
fn a_face_of_the_source_photos_can_be_chosen() {
    use camshow_core::pipeline::SourcePick;
    use camshow_desktop::state::FaceThumb;
    let mut s = ready();
    s.apply(Action::ChooseSources(vec!["/photos/group.png".into()]));
    let thumb = |i: usize, used: bool| FaceThumb {
        key: format!("source-{i}"),
        score: 0.9,
        pick: SourcePick {
            photo: 0,
            bbox: [i as f32 * 100.0, 0.0, i as f32 * 100.0 + 80.0, 80.0],
        },
        used,
    };
    s.apply(Action::SourceReady(vec![thumb(0, true), thumb(1, false)]));
    assert!(
        s.apply(Action::PickSourceFace(0)).is_empty(),
        "already used"
    );
    assert!(
        s.apply(Action::PickSourceFace(7)).is_empty(),
        "no such face"
    );
    let cmds = s.apply(Action::PickSourceFace(1));
    assert_eq!(
        cmds,
        vec![Command::PrepareSource {
            photos: vec!["/photos/group.png".into()],
            pick: Some(thumb(1, false).pick)
        }]
    );
    s.apply(Action::SourceReady(vec![thumb(0, false), thumb(1, true)]));
    match &s.apply(Action::Start)[..] {
        [Command::Swap(req)] => assert_eq!(req.source_face, Some(thumb(1, false).pick)),
        other => panic!("{other:?}"),
    }
    // New photos forget the choice.
    s.apply(Action::Finished(Err(JobError::Cancelled)));
    s.apply(Action::ChooseSources(vec!["/photos/me.png".into()]));
    assert_eq!(s.source_pick, None);
}

#[test]
fn the_window_geometry_is_saved_when_it_changes() {
    let mut s = accepted();
    let g = Geometry {
        x: 5,
        y: 6,
        width: 1000,
        height: 700,
    };
    match &s.apply(Action::WindowMoved(g))[..] {
        [Command::SavePrefs(p)] => assert_eq!(p.window, Some(g)),
        other => panic!("{other:?}"),
    }
    assert!(
        s.apply(Action::WindowMoved(g)).is_empty(),
        "unchanged: no write"
    );
}

#[test]
fn the_result_video_plays_after_a_video_swap() {
    let mut s = ready();
    assert!(
        s.apply(Action::PlayResult).is_empty(),
        "nothing written yet"
    );
    s.apply(Action::Start);
    s.apply(Action::Finished(Ok(JobDone {
        output: "/clips/me-walk.mp4".into(),
        kind: MediaKind::Video,
        summary: String::new(),
    })));
    assert_eq!(
        s.apply(Action::PlayResult),
        vec![Command::PlayOutput("/clips/me-walk.mp4".into())]
    );
    assert!(s.preview.playing);
    assert_eq!(
        s.apply(Action::PlayPreview(false)),
        vec![Command::StopPlaying]
    );
    assert!(
        s.apply(Action::PlayPreview(false)).is_empty(),
        "already stopped"
    );
    s.apply(Action::Start);
    s.apply(Action::Finished(Ok(JobDone {
        output: "/clips/me-party.jpg".into(),
        kind: MediaKind::Image,
        summary: String::new(),
    })));
    assert!(
        s.apply(Action::PlayResult).is_empty(),
        "an image does not play"
    );
}

#[test]
fn preferences_persist_and_a_damaged_file_falls_back() {
    let dir = tempfile::tempdir().unwrap();
    let file = Prefs::file_for(&dir.path().join("camshow.toml"));
    assert_eq!(file, dir.path().join("desktop.toml"));
    assert_eq!(Prefs::load(&file), (Prefs::default(), None));
    let prefs = Prefs {
        theme: Theme::Dark,
        terms_accepted: true,
        window: Some(Geometry {
            x: 10,
            y: 20,
            width: 1000,
            height: 700,
        }),
    };
    prefs.save(&file).unwrap();
    assert_eq!(Prefs::load(&file), (prefs.clone(), None));
    let mut s = AppState::new(Settings::default(), prefs);
    assert_eq!(
        s.apply(Action::SetTheme(Theme::Light)),
        vec![Command::SavePrefs(Prefs {
            theme: Theme::Light,
            ..s.prefs.clone()
        })]
    );
    std::fs::write(&file, "theme = 5\n").unwrap();
    let (p, why) = Prefs::load(&file);
    assert_eq!(p, Prefs::default());
    assert!(why.unwrap().contains("damaged"));
    assert_eq!(Theme::parse("dark"), Some(Theme::Dark));
    assert_eq!(Theme::parse("nope"), None);
}

#[test]
fn source_refused_by_the_gate_clears_the_source() {
    let mut s = ready();
    s.apply(Action::ChooseSources(vec!["/photos/bad.png".into()]));
    assert!(s.source_busy);
    assert!(
        s.apply(Action::Start).is_empty(),
        "not while the source is checked"
    );
    s.apply(Action::SourceFailed(
        "the content-safety gate refused source image /photos/bad.png".into(),
    ));
    assert!(s.sources.is_empty());
    assert_eq!(s.start_blocker().as_deref(), Some("choose a source face"));
    assert!(
        s.notice
            .as_ref()
            .unwrap()
            .text
            .contains("content-safety gate")
    );
}
