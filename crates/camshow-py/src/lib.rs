//! `camshow_deepfaker._native`: the engine for Python, over numpy arrays.
//!
//! A thin front end: every call goes to the same library functions as the
//! CLI and the server (`Settings` layering and patching, `SwapEngine`,
//! `FrameSession::swap_picture`, `CheckedStream`, `run_video_job`,
//! `segment::join`, `run_live`); this crate only converts arrays, paths,
//! dictionaries and errors, and releases the GIL while the engine works.

// PyO3 hands every argument of a Python-facing function over by value.
#![allow(clippy::needless_pass_by_value)]

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use camshow_core::analysis::Needs;
use camshow_core::context::EngineContext;
use camshow_core::pipeline::SwapEngine;
use camshow_core::session::{CheckedStream, FrameSession, SourcePlan};
use camshow_core::settings::{Layered, NewValue};
use camshow_core::swap::PreparedSource;
use camshow_core::{Frame, one_line};
use camshow_media::job::{JobOptions, JobReport, run_video_job};
use camshow_media::latest::Latest;
use camshow_media::live::sinks::{ChannelSink, FrameMeta, Sink};
use camshow_media::live::source::{CaptureOptions, open_source};
use camshow_media::live::{LiveControl, LiveOptions, run_live};
use camshow_media::segment::Segment;
use camshow_media::video::Trim;
use numpy::ndarray::{Array1, Array2, Array3};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyArray3, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::{PyException, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

pyo3::create_exception!(
    camshow_deepfaker,
    CamshowError,
    PyException,
    "Base class of every error the engine raises."
);
pyo3::create_exception!(
    camshow_deepfaker,
    UnsafeContentError,
    CamshowError,
    "The content-safety gate refused an input (nudity). Nothing was processed."
);
pyo3::create_exception!(
    camshow_deepfaker,
    NoFaceError,
    CamshowError,
    "No face was found where one is needed (a source photo, a target picture)."
);
pyo3::create_exception!(
    camshow_deepfaker,
    ModelMissingError,
    CamshowError,
    "A model is not installed; `install_command` says how to install it."
);
pyo3::create_exception!(
    camshow_deepfaker,
    CancelledError,
    CamshowError,
    "The work was cancelled; no output was written."
);
pyo3::create_exception!(
    camshow_deepfaker,
    InvalidInputError,
    CamshowError,
    "Bad input: settings, a file, an option."
);

fn core_err(e: &camshow_core::Error) -> PyErr {
    use camshow_core::Error as E;
    let msg = one_line(e);
    match e {
        E::Unsafe { .. } => UnsafeContentError::new_err(msg),
        E::NoFace { .. } => NoFaceError::new_err(msg),
        E::ModelMissing { name, .. } => {
            let command = format!("camshow models fetch {name}");
            Python::attach(|py| {
                let err = ModelMissingError::new_err(msg);
                let _ = err.value(py).setattr("install_command", command);
                let _ = err.value(py).setattr("model", name.clone());
                err
            })
        }
        E::Cancelled => CancelledError::new_err(msg),
        E::InvalidInput(_)
        | E::Settings(_)
        | E::UnknownSetting { .. }
        | E::SettingsFile { .. }
        | E::UnknownModel(_)
        | E::UnknownProvider(_) => InvalidInputError::new_err(msg),
        _ => CamshowError::new_err(msg),
    }
}

fn media_err(e: &camshow_media::Error) -> PyErr {
    use camshow_media::Error as E;
    match e {
        E::Core(c) => core_err(c),
        // A face map's person: the type of the cause, the whole text.
        E::Person { source, .. } => {
            let typed = media_err(source);
            Python::attach(|py| PyErr::from_type(typed.get_type(py), one_line(e)))
        }
        E::Cancelled => CancelledError::new_err(one_line(e)),
        E::Invalid(_)
        | E::UnsupportedFormat { .. }
        | E::UnsupportedVideoFormat { .. }
        | E::Decode { .. } => InvalidInputError::new_err(one_line(e)),
        _ => CamshowError::new_err(one_line(e)),
    }
}

trait OrPy<T> {
    fn py_err(self) -> PyResult<T>;
}

impl<T> OrPy<T> for camshow_core::Result<T> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(|e| core_err(&e))
    }
}

impl<T> OrPy<T> for camshow_media::Result<T> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(|e| media_err(&e))
    }
}

/// Channel order of the arrays a call takes and gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Color {
    Rgb,
    Bgr,
}

impl Color {
    fn parse(s: &str) -> PyResult<Self> {
        match s.to_ascii_lowercase().as_str() {
            "rgb" => Ok(Self::Rgb),
            "bgr" => Ok(Self::Bgr),
            _ => Err(PyValueError::new_err(format!(
                "color must be \"rgb\" or \"bgr\", not {s:?}"
            ))),
        }
    }
}

/// An `H×W×3 uint8` C-contiguous array as a frame (one copy, channels
/// swapped on the way for BGR); anything else is a clear `TypeError` or
/// `ValueError`.
fn frame_in(obj: &Bound<'_, PyAny>, color: Color) -> PyResult<Frame> {
    let describe = || -> String {
        let dtype = obj
            .getattr("dtype")
            .map_or_else(|_| "?".into(), |d| d.to_string());
        let shape = obj
            .getattr("shape")
            .map_or_else(|_| "?".into(), |s| s.to_string());
        format!("dtype {dtype}, shape {shape}")
    };
    if obj.getattr("__array_interface__").is_err() {
        return Err(PyTypeError::new_err(format!(
            "expected an image as a numpy array (H×W×3 uint8), got {}",
            obj.get_type()
                .name()
                .map_or_else(|_| "?".into(), |n| n.to_string())
        )));
    }
    let Ok(array) = obj.cast::<PyArray3<u8>>() else {
        let is_u8 = obj
            .getattr("dtype")
            .and_then(|d| d.str())
            .is_ok_and(|d| d == "uint8");
        return Err(if is_u8 {
            PyValueError::new_err(format!("expected an H×W×3 uint8 array, got {}", describe()))
        } else {
            PyTypeError::new_err(format!(
                "expected an H×W×3 uint8 array, got {} (convert with image.astype(numpy.uint8))",
                describe()
            ))
        });
    };
    let ro = array.readonly();
    let shape = ro.shape();
    let (h, w, c) = (shape[0], shape[1], shape[2]);
    if c != 3 || h == 0 || w == 0 {
        return Err(PyValueError::new_err(format!(
            "expected an H×W×3 uint8 array with 3 colour channels, got {}",
            describe()
        )));
    }
    let slice = ro.as_slice().map_err(|_| {
        PyValueError::new_err(format!(
            "the array is not C-contiguous (a slice or a strided view, {}): pass numpy.ascontiguousarray(image)",
            describe()
        ))
    })?;
    let data = match color {
        Color::Rgb => slice.to_vec(),
        Color::Bgr => {
            let mut v = Vec::with_capacity(slice.len());
            for p in slice.chunks_exact(3) {
                v.extend_from_slice(&[p[2], p[1], p[0]]);
            }
            v
        }
    };
    let (w, h) = (
        u32::try_from(w).map_err(|_| PyValueError::new_err("image too wide"))?,
        u32::try_from(h).map_err(|_| PyValueError::new_err("image too tall"))?,
    );
    Frame::from_rgb(w, h, data).py_err()
}

/// A frame as a new `H×W×3 uint8` array that owns the frame's memory (no copy).
fn frame_out(py: Python<'_>, frame: Frame, color: Color) -> PyResult<Bound<'_, PyArray3<u8>>> {
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let mut data = frame.into_data();
    if color == Color::Bgr {
        for p in data.chunks_exact_mut(3) {
            p.swap(0, 2);
        }
    }
    let a = Array3::from_shape_vec((h, w, 3), data)
        .map_err(|e| CamshowError::new_err(format!("internal error: {e}")))?;
    Ok(a.into_pyarray(py))
}

fn json_of(py: Python<'_>, obj: &Bound<'_, PyAny>) -> PyResult<serde_json::Value> {
    let text: String = py
        .import("json")?
        .call_method1("dumps", (obj,))?
        .extract()?;
    serde_json::from_str(&text).map_err(|e| InvalidInputError::new_err(e.to_string()))
}

fn py_of<'py>(py: Python<'py>, v: &impl serde::Serialize) -> PyResult<Bound<'py, PyAny>> {
    let text = serde_json::to_string(v)
        .map_err(|e| CamshowError::new_err(format!("internal error: {e}")))?;
    py.import("json")?.call_method1("loads", (text,))
}

/// `{"engine": {"selector": "many"}, "video.quality": 20}` as changes
/// (`engine.selector`, `video.quality`): tables flattened to dotted keys,
/// lists and values kept whole.
fn changes(v: &serde_json::Value, prefix: &str, out: &mut Vec<(String, NewValue)>) -> PyResult<()> {
    let serde_json::Value::Object(o) = v else {
        return Err(PyTypeError::new_err(
            "settings must be a dict of keys and values, e.g. {\"engine\": {\"selector\": \"many\"}} or {\"engine.selector\": \"many\"}",
        ));
    };
    for (k, v) in o {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        if v.is_object() && !v.as_object().is_some_and(serde_json::Map::is_empty) {
            changes(v, &key, out)?;
        } else {
            out.push((key, NewValue::Json(v.clone())));
        }
    }
    Ok(())
}

/// Engine settings and loaded models. Threads may share one engine: calls
/// release the GIL while the engine works.
#[pyclass(module = "camshow_deepfaker", frozen)]
struct Engine {
    loaded: RwLock<Loaded>,
    /// The stream `process_frame` continues: its source's id, its rate and its state.
    stream: Mutex<Option<(u64, u64, CheckedStream)>>,
}

/// The loaded engine (its settings are the engine's own) and what `detect`
/// adds with it (landmarks, embeddings: the models installed in its store,
/// looked up once per engine, not per call).
struct Loaded {
    engine: Arc<SwapEngine>,
    detect_needs: Needs,
}

impl Loaded {
    fn new(engine: SwapEngine) -> Self {
        let store = engine.context().store();
        let detect_needs = Needs {
            embedding: store.available("w600k_r50"),
            landmarks_106: store.available("2d106det"),
        };
        Self {
            engine: Arc::new(engine),
            detect_needs,
        }
    }
}

impl Engine {
    fn loaded(&self) -> std::sync::RwLockReadGuard<'_, Loaded> {
        self.loaded.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn engine(&self) -> Arc<SwapEngine> {
        Arc::clone(&self.loaded().engine)
    }
}

fn checked_source(source: &Source, engine: &SwapEngine) -> PyResult<Arc<PreparedSource>> {
    if source.swapper != engine.swapper_name() {
        return Err(InvalidInputError::new_err(format!(
            "this source was prepared for the {} swapper and the engine now runs the {} swapper: prepare it again with engine.prepare_source",
            source.swapper,
            engine.swapper_name()
        )));
    }
    Ok(Arc::clone(&source.prepared))
}

static NEXT_SOURCE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

#[pymethods]
impl Engine {
    /// Loads the engine. `settings`: None (the settings file and `CAMSHOW_*`
    /// variables, as the CLI), a path to a settings file (TOML), or a dict of
    /// changes over them (nested tables or dotted keys); `models_dir`
    /// overrides the models folder; `model_files` maps model ids to files
    /// used instead of the installed ones (as `--model-file ID=FILE`).
    #[new]
    #[pyo3(signature = (settings=None, models_dir=None, model_files=None))]
    fn new(
        py: Python<'_>,
        settings: Option<&Bound<'_, PyAny>>,
        models_dir: Option<PathBuf>,
        model_files: Option<std::collections::BTreeMap<String, PathBuf>>,
    ) -> PyResult<Self> {
        // The settings file (the CLI's, or the one given) and CAMSHOW_*
        // variables, then a dict's changes over them.
        let (file, patch) = match settings {
            None => (None, None),
            Some(s) if s.is_none() => (None, None),
            Some(s) if s.is_instance_of::<PyDict>() => (None, Some(json_of(py, s)?)),
            Some(s) => {
                let path: PathBuf = s.extract().map_err(|_| {
                    PyTypeError::new_err(
                        "settings must be None, a dict, or the path of a settings file (str or os.PathLike)",
                    )
                })?;
                if !path.is_file() {
                    return Err(InvalidInputError::new_err(format!(
                        "settings file {} does not exist",
                        path.display()
                    )));
                }
                (Some(path), None)
            }
        };
        let mut settings = Layered::load(file.as_deref()).py_err()?.settings;
        if let Some(v) = patch {
            let mut list = Vec::new();
            changes(&v, "", &mut list)?;
            settings = settings.patched(&list).py_err()?;
        }
        if let Some(dir) = models_dir {
            settings.models_dir = Some(dir);
        }
        let engine = py.detach(|| {
            // A model file given for an id is used instead of the installed one
            // (the CLI's `--model-file ID=FILE`).
            let mut store = camshow_core::context::store_for(settings.models_dir.as_deref());
            for (id, path) in model_files.iter().flatten() {
                store = store.with_override(id, path)?;
            }
            SwapEngine::load(&EngineContext::with_store(&settings, store)?, &settings)
        });
        Ok(Self {
            loaded: RwLock::new(Loaded::new(engine.py_err()?)),
            stream: Mutex::new(None),
        })
    }

    /// The settings in use, as a dict.
    #[getter]
    fn settings<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        py_of(py, self.engine().settings())
    }

    /// The ONNX Runtime library in use: its path, where it was found and its version.
    #[getter]
    fn runtime<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let engine = self.engine();
        let lib = engine.context().runtime().library();
        let d = PyDict::new(py);
        d.set_item("path", &lib.path)?;
        d.set_item("found_by", lib.source.to_string())?;
        d.set_item("version", &lib.version)?;
        Ok(d)
    }

    /// The swapper the engine runs (`inswapper` or `classic`).
    #[getter]
    fn swapper(&self) -> &'static str {
        self.engine().swapper_name()
    }

    /// The processor chain, in order.
    #[getter]
    fn processors(&self) -> Vec<String> {
        self.engine().processors()
    }

    /// Changes settings (a dict, as for the constructor) without reloading
    /// the models they share; the live stream keeps its tracks.
    fn reconfigure(&self, py: Python<'_>, patch: &Bound<'_, PyAny>) -> PyResult<()> {
        let mut list = Vec::new();
        changes(&json_of(py, patch)?, "", &mut list)?;
        let engine = self.engine();
        let new = engine.settings().patched(&list).py_err()?;
        let next = py.detach(|| engine.reconfigure(&new)).py_err()?;
        *self.loaded.write().unwrap_or_else(PoisonError::into_inner) = Loaded::new(next);
        if let Some((_, _, s)) = self
            .stream
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
        {
            s.session_mut().set_selection(&new.engine);
        }
        Ok(())
    }

    /// The faces in `image` (the gate checks it first), largest data the
    /// installed models give: box, score, five points, 106 landmarks and the
    /// identity embedding when those models are installed.
    #[pyo3(signature = (image, *, color="rgb"))]
    fn detect(&self, py: Python<'_>, image: &Bound<'_, PyAny>, color: &str) -> PyResult<Vec<Face>> {
        let frame = frame_in(image, Color::parse(color)?)?;
        let (engine, needs) = {
            let l = self.loaded();
            (Arc::clone(&l.engine), l.detect_needs)
        };
        let faces = py
            .detach(|| {
                engine
                    .safety_gate()
                    .ensure_safe_image(&frame, &[], "image")?;
                engine
                    .context()
                    .analyser(engine.settings().engine.detector, needs)?
                    .analyse(&frame, needs)
            })
            .py_err()?;
        Ok(faces.into_iter().map(|f| Face { face: f }).collect())
    }

    /// The source identity from one photo, several photos of one person
    /// (averaged into one identity), a path, or a list of paths (folders and
    /// identity files as the CLI takes them). The gate checks every photo.
    #[pyo3(signature = (photos, *, color="rgb"))]
    fn prepare_source(
        &self,
        py: Python<'_>,
        photos: &Bound<'_, PyAny>,
        color: &str,
    ) -> PyResult<Source> {
        let color = Color::parse(color)?;
        let items: Vec<Bound<'_, PyAny>> = if photos.is_instance_of::<PyList>() {
            photos.cast::<PyList>()?.iter().collect()
        } else {
            vec![photos.clone()]
        };
        if items.is_empty() {
            return Err(InvalidInputError::new_err("no source photo"));
        }
        let engine = self.engine();
        let all_arrays = items
            .iter()
            .all(|i| i.getattr("__array_interface__").is_ok());
        let prepared = if all_arrays {
            let frames = items
                .iter()
                .map(|i| frame_in(i, color))
                .collect::<PyResult<Vec<Frame>>>()?;
            py.detach(|| {
                let named: Vec<(String, &Frame)> = frames
                    .iter()
                    .enumerate()
                    .map(|(i, f)| (format!("source photo {}", i + 1), f))
                    .collect();
                engine.prepare_sources(&named)
            })
            .py_err()?
        } else {
            let paths = items
                .iter()
                .map(|i| {
                    i.extract::<PathBuf>().map_err(|_| {
                        PyTypeError::new_err(
                            "a source is an image array, a path, or a list of either (not mixed)",
                        )
                    })
                })
                .collect::<PyResult<Vec<PathBuf>>>()?;
            py.detach(|| camshow_media::swap_job::prepare_source(&engine, &paths))
                .py_err()?
        };
        Ok(Source {
            id: NEXT_SOURCE.fetch_add(1, Ordering::Relaxed),
            swapper: engine.swapper_name(),
            prepared: Arc::new(prepared),
        })
    }

    /// `image` with `source` swapped onto the selected faces, as a new array
    /// (the input is not changed). The gate checks the picture and the
    /// region around every face about to be swapped; no face in the picture
    /// raises `NoFaceError`. `selector` ("one", "many" or "reference", with
    /// a `reference` picture of the person to replace) overrides the
    /// settings for this call.
    #[pyo3(signature = (source, image, *, color="rgb", selector=None, reference=None))]
    fn swap<'py>(
        &self,
        py: Python<'py>,
        source: PyRef<'_, Source>,
        image: &Bound<'py, PyAny>,
        color: &str,
        selector: Option<&str>,
        reference: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyArray3<u8>>> {
        let color = Color::parse(color)?;
        let mut frame = frame_in(image, color)?;
        let reference = reference.map(|r| frame_in(r, color)).transpose()?;
        let mut engine = self.engine();
        if let Some(sel) = selector {
            let settings = engine
                .settings()
                .patched(&[(
                    "engine.selector".into(),
                    NewValue::Json(serde_json::Value::String(sel.into())),
                )])
                .py_err()?;
            engine = Arc::new(py.detach(|| engine.reconfigure(&settings)).py_err()?);
        }
        let prepared = checked_source(&source, &engine)?;
        let frame = py
            .detach(|| -> camshow_core::Result<Frame> {
                let reference = reference
                    .as_ref()
                    .map(|r| engine.reference_embedding(r, "reference picture"))
                    .transpose()?;
                let plan = SourcePlan::One {
                    source: prepared,
                    reference,
                };
                FrameSession::still(plan, &engine.settings().engine).swap_picture(
                    &engine,
                    &mut frame,
                    "target picture",
                )?;
                Ok(frame)
            })
            .py_err()?;
        frame_out(py, frame, color)
    }

    /// One frame of a stream (a camera loop in Python): tracked between
    /// calls like the live pipeline, under the live safety schedule (the
    /// gate checks a frame at least twice a second; a frame is swapped only
    /// under a recent passing check). A new `source` or `fps` starts a new
    /// stream; so does `reset_stream()`.
    #[pyo3(signature = (source, frame, *, color="rgb", fps=30.0))]
    fn process_frame<'py>(
        &self,
        py: Python<'py>,
        source: PyRef<'_, Source>,
        frame: &Bound<'py, PyAny>,
        color: &str,
        fps: f64,
    ) -> PyResult<Bound<'py, PyArray3<u8>>> {
        let color = Color::parse(color)?;
        let mut f = frame_in(frame, color)?;
        let engine = self.engine();
        let prepared = checked_source(&source, &engine)?;
        let id = source.id;
        let f = py
            .detach(|| -> camshow_core::Result<Frame> {
                let mut slot = self.stream.lock().unwrap_or_else(PoisonError::into_inner);
                let rate = fps.to_bits();
                if slot.as_ref().is_none_or(|(s, r, _)| *s != id || *r != rate) {
                    let plan = SourcePlan::One {
                        source: prepared,
                        reference: None,
                    };
                    *slot = Some((id, rate, CheckedStream::new(plan, engine.settings(), fps)));
                }
                if let Some((_, _, stream)) = slot.as_mut() {
                    stream.process(&engine, &mut f)?;
                }
                Ok(f)
            })
            .py_err()?;
        frame_out(py, f, color)
    }

    /// Forgets the stream's tracks (the next `process_frame` starts afresh).
    fn reset_stream(&self) {
        *self.stream.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// Swaps `source` onto every frame of the video `target`, writing
    /// `output` (decode → swap → encode in Rust; frames never cross into
    /// Python). `progress(done, total)` is called as frames are written;
    /// returning False from it cancels (`CancelledError`), and so does
    /// Ctrl-C (`KeyboardInterrupt`): nothing is left at `output` either way.
    /// `segment=(index, count)` writes that part only (join the parts with
    /// `camshow_deepfaker.join_segments`).
    #[pyo3(signature = (source, target, output, *, progress=None, segment=None))]
    fn swap_video<'py>(
        &self,
        py: Python<'py>,
        source: PyRef<'_, Source>,
        target: PathBuf,
        output: PathBuf,
        progress: Option<Py<PyAny>>,
        segment: Option<(u32, u32)>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let engine = self.engine();
        let settings = engine.settings();
        let prepared = checked_source(&source, &engine)?;
        let segment = segment
            .map(|(i, n)| Segment::new(i, n))
            .transpose()
            .py_err()?;
        camshow_core::atomic::ensure_not_input(&output, &[("target", target.as_path())])
            .py_err()?;
        if camshow_media::swap_job::media_kind(&target).py_err()?
            != camshow_media::swap_job::MediaKind::Video
        {
            return Err(InvalidInputError::new_err(format!(
                "{} is not a video: use engine.swap for pictures",
                target.display()
            )));
        }
        let cancel = AtomicBool::new(false);
        let callback_error: Mutex<Option<PyErr>> = Mutex::new(None);
        let report = py.detach(|| -> PyResult<JobReport> {
            let seg = camshow_media::swap_job::check_video_job(
                settings,
                &target,
                &output,
                Trim::default(),
                segment,
            )
            .py_err()?;
            let plan = SourcePlan::One {
                source: prepared,
                reference: None,
            };
            let mut opts = JobOptions::from_settings(&settings.video, Trim::default(), None);
            opts.segment = seg;
            let on_progress = |done: u64, total: Option<u64>| {
                let Some(cb) = &progress else { return };
                if cancel.load(Ordering::Relaxed) {
                    return;
                }
                Python::attach(|py| match cb.call1(py, (done, total)) {
                    Ok(r) if r.bind(py).is(pyo3::types::PyBool::new(py, false)) => {
                        cancel.store(true, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        *callback_error
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner) = Some(e);
                        cancel.store(true, Ordering::Relaxed);
                    }
                });
            };
            std::thread::scope(|s| {
                let job = s.spawn(|| {
                    run_video_job(
                        &engine,
                        &plan,
                        &target,
                        &output,
                        &opts,
                        &on_progress,
                        &cancel,
                    )
                });
                // Ctrl-C reaches Python only while Python runs: look for it.
                #[allow(clippy::redundant_closure_for_method_calls)] // not general enough as a path
                while !job.is_finished() {
                    std::thread::sleep(Duration::from_millis(50));
                    if let Err(e) = Python::attach(|py| py.check_signals()) {
                        *callback_error
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner) = Some(e);
                        cancel.store(true, Ordering::Relaxed);
                    }
                }
                job.join()
                    .map_err(|_| CamshowError::new_err("internal error: the video job panicked"))?
                    .py_err()
            })
        });
        if let Some(e) = callback_error
            .into_inner()
            .unwrap_or_else(PoisonError::into_inner)
        {
            return Err(e);
        }
        let report = report?;
        let out = py_of(py, &report)?;
        out.set_item("output", &output)?;
        out.set_item("segment", segment.map(|s| (s.index, s.count)))?;
        Ok(out)
    }

    /// Finds the people in a picture or video (one frame a second): a face
    /// map with a thumbnail per person, written to `output` (JSON) with the
    /// thumbnails beside it, as `camshow faces scan` does (without `output`:
    /// into a new folder in the temporary directory, named by `FaceMap.path`).
    #[pyo3(signature = (target, output=None, *, cluster_distance=None))]
    fn scan_faces(
        &self,
        py: Python<'_>,
        target: PathBuf,
        output: Option<PathBuf>,
        cluster_distance: Option<f32>,
    ) -> PyResult<FaceMap> {
        let output = match output {
            Some(o) => o,
            None => tempfile::Builder::new()
                .prefix("camshow-faces-")
                .tempdir()
                .map_err(|e| {
                    CamshowError::new_err(format!("cannot create a folder for the map: {e}"))
                })?
                .keep()
                .join("map.json"),
        };
        let engine = self.engine();
        let cancel = AtomicBool::new(false);
        let outcome = py
            .detach(|| {
                camshow_media::faces::scan(
                    engine.context(),
                    engine.settings().engine.detector,
                    &target,
                    &output,
                    cluster_distance.unwrap_or(camshow_core::mapping::DEFAULT_CLUSTER_DISTANCE),
                    &cancel,
                )
            })
            .py_err()?;
        Ok(FaceMap {
            path: output,
            people: outcome.map.people.len(),
            faces: outcome.faces,
            frames: outcome.frames,
            text: serde_json::to_string(&outcome.map)
                .map_err(|e| CamshowError::new_err(e.to_string()))?,
        })
    }

    /// A live session on a camera (`"0"`, `"/dev/video0"`), a file played as
    /// one (`"file:clip.mp4"`) or the test pattern (`"test"`): the whole live
    /// pipeline (capture, tracking, the safety gate's schedule) runs on its
    /// own threads; iterate to get swapped frames (the newest ones: a slow
    /// consumer drops the oldest).
    #[pyo3(signature = (source, camera, *, size=None, fps=None, mirror=false, max_frames=None, duration=None, color="rgb", loop_file=false))]
    #[allow(clippy::too_many_arguments)]
    fn live_session(
        &self,
        source: PyRef<'_, Source>,
        camera: &str,
        size: Option<(u32, u32)>,
        fps: Option<f64>,
        mirror: bool,
        max_frames: Option<u64>,
        duration: Option<f64>,
        color: &str,
        loop_file: bool,
    ) -> PyResult<LiveSession> {
        let color = Color::parse(color)?;
        let engine = self.engine();
        let prepared = checked_source(&source, &engine)?;
        let frames = open_source(camera, CaptureOptions { size, fps }, loop_file).py_err()?;
        let control = LiveControl::new(
            engine,
            SourcePlan::One {
                source: prepared,
                reference: None,
            },
        )
        .py_err()?;
        let (sink, mailbox) = ChannelSink::new(4);
        let opts = LiveOptions {
            mirror,
            max_frames,
            duration: duration.map(Duration::from_secs_f64),
            ..LiveOptions::default()
        };
        let c = Arc::clone(&control);
        let thread = std::thread::Builder::new()
            .name("camshow-live".into())
            .spawn(move || {
                let mut sinks: Vec<Box<dyn Sink>> = vec![Box::new(sink)];
                run_live(frames, &mut sinks, &c, &opts)
                    .map(|s| serde_json::to_string(&s).unwrap_or_default())
            })
            .map_err(|e| CamshowError::new_err(e.to_string()))?;
        Ok(LiveSession {
            control,
            mailbox,
            color,
            thread: Mutex::new(Some(thread)),
            stats: Mutex::new(None),
            stopped: AtomicBool::new(false),
        })
    }

    /// For the benchmark (crates/camshow-py/bench): `swap`'s work measured
    /// inside Rust, `repeat` times, on a fresh copy of the frame each time
    /// (seconds per call).
    fn _time_swap(
        &self,
        py: Python<'_>,
        source: PyRef<'_, Source>,
        image: &Bound<'_, PyAny>,
        repeat: usize,
    ) -> PyResult<Vec<f64>> {
        let frame = frame_in(image, Color::Rgb)?;
        let engine = self.engine();
        let prepared = checked_source(&source, &engine)?;
        py.detach(|| {
            (0..repeat)
                .map(|_| {
                    let start = std::time::Instant::now();
                    let mut f = frame.clone();
                    let plan = SourcePlan::One {
                        source: Arc::clone(&prepared),
                        reference: None,
                    };
                    FrameSession::still(plan, &engine.settings().engine).swap_picture(
                        &engine,
                        &mut f,
                        "target picture",
                    )?;
                    Ok(start.elapsed().as_secs_f64())
                })
                .collect::<camshow_core::Result<Vec<f64>>>()
        })
        .py_err()
    }

    /// For the benchmark: only what a call adds around the engine's work
    /// (the array in, the GIL released and taken back, the array out).
    #[staticmethod]
    #[pyo3(signature = (image, *, color="rgb"))]
    fn _passthrough<'py>(
        py: Python<'py>,
        image: &Bound<'py, PyAny>,
        color: &str,
    ) -> PyResult<Bound<'py, PyArray3<u8>>> {
        let color = Color::parse(color)?;
        let frame = frame_in(image, color)?;
        let frame = py.detach(move || frame);
        frame_out(py, frame, color)
    }

    fn __repr__(&self) -> String {
        let engine = self.engine();
        format!(
            "Engine(swapper={:?}, processors={:?}, detector={:?})",
            engine.swapper_name(),
            engine.processors(),
            engine.settings().engine.detector.name()
        )
    }
}

/// One face: box, score, five points, and (when their models are
/// installed) 106 landmarks and the identity embedding.
#[pyclass(module = "camshow_deepfaker", frozen)]
struct Face {
    face: camshow_core::detect::Face,
}

#[pymethods]
impl Face {
    /// `[x1, y1, x2, y2]` in pixels (float32).
    #[getter]
    fn bbox<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f32>> {
        Array1::from_vec(self.face.bbox.to_vec()).into_pyarray(py)
    }

    /// Detector confidence, 0–1.
    #[getter]
    fn score(&self) -> f32 {
        self.face.score
    }

    /// Five points (eyes, nose, mouth corners), 5×2 float32.
    #[getter]
    fn kps<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray2<f32>> {
        points(py, &self.face.kps)
    }

    /// 106 landmarks (106×2 float32), or None without the landmark model.
    #[getter]
    fn landmarks<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyArray2<f32>>> {
        self.face.landmarks_106.as_deref().map(|l| points(py, l))
    }

    /// The 512-value identity embedding (unit length), or None without the recognizer.
    #[getter]
    fn embedding<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyArray1<f32>>> {
        self.face
            .embedding
            .clone()
            .map(|e| Array1::from_vec(e).into_pyarray(py))
    }

    fn __repr__(&self) -> String {
        let [x1, y1, x2, y2] = self.face.bbox;
        format!(
            "Face(bbox=[{x1:.1}, {y1:.1}, {x2:.1}, {y2:.1}], score={:.3}, landmarks={}, embedding={})",
            self.face.score,
            self.face.landmarks_106.is_some(),
            self.face.embedding.is_some()
        )
    }
}

fn points<'py>(py: Python<'py>, p: &[[f32; 2]]) -> Bound<'py, PyArray2<f32>> {
    let flat: Vec<f32> = p.iter().flatten().copied().collect();
    Array2::from_shape_vec((p.len(), 2), flat)
        .unwrap_or_else(|_| Array2::zeros((0, 2)))
        .into_pyarray(py)
}

/// A prepared source identity (from `Engine.prepare_source`).
#[pyclass(module = "camshow_deepfaker", frozen)]
struct Source {
    id: u64,
    swapper: &'static str,
    prepared: Arc<PreparedSource>,
}

#[pymethods]
impl Source {
    /// How many photos made this identity.
    #[getter]
    fn photos(&self) -> usize {
        self.prepared.photos()
    }

    /// The swapper it was prepared for.
    #[getter]
    fn swapper(&self) -> &'static str {
        self.swapper
    }

    /// The identity embedding (512 float32), when the recognizer made one.
    #[getter]
    fn embedding<'py>(&self, py: Python<'py>) -> Option<Bound<'py, PyArray1<f32>>> {
        self.prepared
            .embedding()
            .map(|e| Array1::from_vec(e.to_vec()).into_pyarray(py))
    }

    fn __repr__(&self) -> String {
        format!(
            "Source(photos={}, swapper={:?}, embedding={})",
            self.prepared.photos(),
            self.swapper,
            self.prepared.embedding().is_some()
        )
    }
}

/// The people found in a target (from `Engine.scan_faces`), saved as a
/// face map file for `camshow swap --map`.
#[pyclass(module = "camshow_deepfaker", frozen)]
struct FaceMap {
    path: PathBuf,
    people: usize,
    faces: usize,
    frames: usize,
    text: String,
}

#[pymethods]
impl FaceMap {
    /// The map file.
    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// The people found, with their thumbnails and sources (as in the file).
    #[getter]
    fn people<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let v: serde_json::Value =
            serde_json::from_str(&self.text).map_err(|e| CamshowError::new_err(e.to_string()))?;
        py_of(py, &v["people"])
    }

    /// Faces found over all sampled frames.
    #[getter]
    fn faces(&self) -> usize {
        self.faces
    }

    /// Frames sampled.
    #[getter]
    fn frames(&self) -> usize {
        self.frames
    }

    fn __len__(&self) -> usize {
        self.people
    }

    fn __repr__(&self) -> String {
        format!(
            "FaceMap(people={}, faces={}, frames={}, path={:?})",
            self.people,
            self.faces,
            self.frames,
            self.path.display().to_string()
        )
    }
}

/// A running live session: iterate for swapped frames; `stop()` ends it
/// (so does leaving a `with` block).
#[pyclass(module = "camshow_deepfaker", frozen)]
struct LiveSession {
    control: Arc<LiveControl>,
    mailbox: Arc<Latest<(Frame, FrameMeta)>>,
    color: Color,
    thread: Mutex<Option<std::thread::JoinHandle<camshow_media::Result<String>>>>,
    stats: Mutex<Option<String>>,
    /// `stop()` was called: iteration ends (frames still waiting are dropped).
    stopped: AtomicBool,
}

/// A session dropped without `stop()` (a loop left early) stops too.
impl Drop for LiveSession {
    fn drop(&mut self) {
        self.control.stop();
    }
}

impl LiveSession {
    fn finish(&self) -> PyResult<()> {
        let handle = self
            .thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(h) = handle {
            let stats = h
                .join()
                .map_err(|_| CamshowError::new_err("internal error: the live session panicked"))?
                .py_err()?;
            *self.stats.lock().unwrap_or_else(PoisonError::into_inner) = Some(stats);
        }
        Ok(())
    }
}

#[pymethods]
impl LiveSession {
    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyArray3<u8>>>> {
        loop {
            if self.stopped.load(Ordering::Relaxed) {
                return Ok(None);
            }
            let item = py.detach(|| self.mailbox.wait(Duration::from_millis(100)));
            if let Some((frame, _)) = item {
                return frame_out(py, frame, self.color).map(Some);
            }
            if self.mailbox.is_closed() {
                self.finish()?;
                return Ok(None);
            }
            if let Err(e) = py.check_signals() {
                self.control.stop();
                return Err(e);
            }
        }
    }

    /// Asks the session to stop and waits for it.
    fn stop(&self, py: Python<'_>) -> PyResult<()> {
        self.stopped.store(true, Ordering::Relaxed);
        self.control.stop();
        py.detach(|| self.finish())
    }

    /// Mirror the picture (left–right) from the next frame.
    fn set_mirror(&self, on: bool) {
        self.control.set_mirror(on);
    }

    /// Change the source face from the next frame.
    fn set_source(&self, source: PyRef<'_, Source>) -> PyResult<()> {
        let prepared = checked_source(&source, &self.control.engine())?;
        self.control.set_source((*prepared).clone());
        Ok(())
    }

    /// What the session measured (frames, fps, latency, gate checks), once it ended.
    #[getter]
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        let s = self
            .stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        s.map(|t| py.import("json")?.call_method1("loads", (t,)))
            .transpose()
    }

    fn __enter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.stop(py)?;
        Ok(false)
    }
}

/// Joins the parts of `target` written by `swap_video(..., segment=(i, n))`
/// or `camshow swap --segment i/n` into `output` without re-encoding, with
/// the target's audio (unless `keep_audio` is False) and the provenance.
#[pyfunction]
#[pyo3(signature = (segments, target, output, *, keep_audio=true))]
fn join_segments(
    py: Python<'_>,
    segments: Vec<PathBuf>,
    target: PathBuf,
    output: PathBuf,
    keep_audio: bool,
) -> PyResult<Bound<'_, PyAny>> {
    let cancel = AtomicBool::new(false);
    let report = py
        .detach(|| camshow_media::segment::join(&segments, &target, &output, keep_audio, &cancel))
        .py_err()?;
    py_of(py, &report)
}

/// The ONNX Runtime library the engine would load, found as the CLI finds
/// it (`ORT_DYLIB_PATH`, the setup cache, an installed `onnxruntime` /
/// `onnxruntime-gpu` Python package, the system): `{"path", "found_by"}`.
#[pyfunction]
fn find_runtime(py: Python<'_>) -> PyResult<Bound<'_, PyDict>> {
    let (path, source) = camshow_core::runtime::locate_library().py_err()?;
    let d = PyDict::new(py);
    d.set_item("path", path)?;
    d.set_item("found_by", source.to_string())?;
    Ok(d)
}

/// A picture file (PNG, JPEG, WebP, BMP, TIFF, GIF) as an `H×W×3 uint8`
/// array, decoded as the CLI decodes it (EXIF orientation applied).
#[pyfunction]
#[pyo3(signature = (path, *, color="rgb"))]
fn read_image<'py>(
    py: Python<'py>,
    path: PathBuf,
    color: &str,
) -> PyResult<Bound<'py, PyArray3<u8>>> {
    let color = Color::parse(color)?;
    let frame = py
        .detach(|| camshow_media::image_io::read_image(&path))
        .py_err()?;
    frame_out(py, frame, color)
}

/// Writes a swapped picture (format from the extension: .png, .jpg) with
/// the AI-generated provenance every output of the product carries
/// (IPTC DigitalSourceType in XMP); written to a temporary file and renamed
/// into place.
#[pyfunction]
#[pyo3(signature = (path, image, *, color="rgb", swapped=true))]
fn write_image(
    py: Python<'_>,
    path: PathBuf,
    image: &Bound<'_, PyAny>,
    color: &str,
    swapped: bool,
) -> PyResult<()> {
    let frame = frame_in(image, Color::parse(color)?)?;
    let op = if swapped {
        camshow_media::provenance::Operation::FaceSwap
    } else {
        camshow_media::provenance::Operation::NoFaceSwapped
    };
    py.detach(|| camshow_media::image_io::write_image(&path, &frame, (op, "Python package")))
        .py_err()
}

/// ONNX Runtime sessions this process has created (models loaded): a
/// worker that loads its models once shows the same count after every job.
#[pyfunction]
fn sessions_created() -> u64 {
    camshow_core::runtime::sessions_created()
}

/// The engine's version and the usage terms.
#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add_class::<Engine>()?;
    m.add_class::<Face>()?;
    m.add_class::<Source>()?;
    m.add_class::<FaceMap>()?;
    m.add_class::<LiveSession>()?;
    m.add_function(wrap_pyfunction!(join_segments, m)?)?;
    m.add_function(wrap_pyfunction!(find_runtime, m)?)?;
    m.add_function(wrap_pyfunction!(sessions_created, m)?)?;
    m.add_function(wrap_pyfunction!(read_image, m)?)?;
    m.add_function(wrap_pyfunction!(write_image, m)?)?;
    m.add("CamshowError", py.get_type::<CamshowError>())?;
    m.add("UnsafeContentError", py.get_type::<UnsafeContentError>())?;
    m.add("NoFaceError", py.get_type::<NoFaceError>())?;
    m.add("ModelMissingError", py.get_type::<ModelMissingError>())?;
    m.add("CancelledError", py.get_type::<CancelledError>())?;
    m.add("InvalidInputError", py.get_type::<InvalidInputError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("SOFTWARE", camshow_core::SOFTWARE)?;
    Ok(())
}
