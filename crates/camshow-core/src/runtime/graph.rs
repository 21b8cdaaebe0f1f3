//! CUDA graphs: sessions whose inputs and outputs stay bound at fixed
//! device addresses, so that ONNX Runtime's CUDA or TensorRT provider can
//! capture the model's kernel launches once and replay them on each run
//! (`cuda_graph = true` for a provider; see [`super::ProviderConfig`]).
//!
//! What ONNX Runtime asks of a session with a graph, and how it is met:
//! - inputs and outputs bound to device memory whose addresses never
//!   change: each session gets its device tensors once, at load, at the
//!   model's fixed shapes, and an IO binding that holds them; the caller's
//!   values are copied into them before each run and the outputs out of
//!   them after it, by two sessions of `Identity`s (the copies ONNX
//!   Runtime's API offers) through pinned host memory. Binding a host
//!   tensor to a session on a GPU copies it *then*, so the copy-in session
//!   has its host inputs bound again on every run;
//! - the session's very first run bound that way: ONNX Runtime runs a
//!   session with a graph again and again within its first `Run` until the
//!   graph is captured, and from then on replays it whatever is bound (so
//!   the output shapes come from the model, not from a first run);
//! - the same thread for every run: the provider keeps the captured graph
//!   in the calling thread's context, so each graph session has a thread of
//!   its own that makes every one of its runs;
//! - no other CUDA call in the process while a graph is captured (the
//!   capture records in CUDA's global mode, and any other thread's
//!   allocation, free or synchronous copy makes it fail): the capture
//!   happens at load, in warm-up runs made while [`GPU_CAPTURE`] is held
//!   for writing, and every run, session creation, pinned allocation and
//!   release in the process holds it for reading.
//!
//! [`DeviceMemory::Host`] puts the "device" tensors in host memory: the
//! same binding, copies, thread and warm-up, run on the CPU, so that all of
//! it is tested on machines without a GPU.

use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, mpsc};

use ort::memory::{AllocationDevice, Allocator, AllocatorType, MemoryInfo, MemoryType};
use ort::session::{IoBinding, Session};
use ort::value::{Tensor, TensorElementType};

use super::{ExecutionProvider, ProviderConfig, Slot};
use crate::error::{Error, Result};

/// Held for reading by every model run, for writing while sessions warm up
/// and capture their graphs (see the module's notes).
static GPU_CAPTURE: RwLock<()> = RwLock::new(());

/// What a model run holds while ONNX Runtime runs: no graph is captured
/// meanwhile.
pub(super) fn run_guard() -> RwLockReadGuard<'static, ()> {
    GPU_CAPTURE.read().unwrap_or_else(PoisonError::into_inner)
}

/// Bound runs made at load. ONNX Runtime captures within the first (its
/// CUDA provider after two ordinary runs, so that the arena has made its
/// allocations, TensorRT's after one); the others replay the graph, and
/// would capture it were a provider to wait longer.
const WARM_UP_RUNS: usize = 3;

/// Where a graph session's bound inputs and outputs live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DeviceMemory {
    /// The memory of NVIDIA GPU `n`, for CUDA or TensorRT.
    Cuda(i32),
    /// Host memory in place of a device's (tests on machines without one).
    #[cfg_attr(not(test), allow(dead_code))]
    Host,
}

/// The device memory a session's graph uses: the GPU of the NVIDIA
/// provider that runs it ([`super::nvidia_provider`]), where that provider
/// asks for a graph.
pub(super) fn graph_memory(
    attached: &[ExecutionProvider],
    wanted: &[ProviderConfig],
) -> Option<DeviceMemory> {
    super::nvidia_provider(attached, wanted)
        .filter(|c| c.cuda_graph)
        .map(|c| DeviceMemory::Cuda(c.device_id.unwrap_or(0)))
}

/// One run's values on the host: the inputs as the caller wrote them and
/// the outputs as they came back.
#[derive(Default)]
struct IoData {
    inputs: Vec<Vec<f32>>,
    stamps: Vec<u128>,
    outputs: Vec<(Vec<i64>, Vec<f32>)>,
}

type Reply = (IoData, Result<()>);

/// A caller's buffers and the channel its runs come back on, kept between
/// runs (nothing is allocated for a run after the first).
struct Io {
    data: IoData,
    done: mpsc::SyncSender<Reply>,
    back: mpsc::Receiver<Reply>,
}

struct Job {
    data: IoData,
    done: mpsc::SyncSender<Reply>,
}

/// A session with a CUDA graph: its thread, and the buffers of callers.
pub(super) struct GraphRunner {
    shapes: Vec<Vec<usize>>,
    /// Runs being filled or sent and not yet back (queued runs count: the
    /// session's own lock is held only while one runs).
    in_flight: std::sync::atomic::AtomicUsize,
    jobs: Option<mpsc::SyncSender<Job>>,
    pool: Mutex<Vec<Io>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for GraphRunner {
    fn drop(&mut self) {
        // The thread ends when its queue closes.
        self.jobs = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Everything the runner thread keeps: the bound device tensors (held by
/// the bindings) and the host tensors the copies go through.
struct Bound {
    binding: IoBinding,
    up: Copier,
    down: Copier,
    host_in: Vec<Tensor<f32>>,
    host_out: Vec<Tensor<f32>>,
}

/// A session of `Identity`s that copies its bound inputs into its bound
/// outputs (host to device, or device to host).
struct Copier {
    session: Session,
    binding: IoBinding,
}

/// What a runner needs to know of its model.
#[derive(Clone)]
pub(super) struct GraphModel {
    pub name: String,
    pub inputs: Vec<String>,
    pub outputs: Vec<String>,
    /// The inputs' and outputs' fixed shapes ([`GraphModel::of`]).
    pub input_shapes: Vec<Vec<usize>>,
    pub output_shapes: Vec<Vec<i64>>,
    pub env: &'static ort::environment::Environment,
}

impl GraphRunner {
    /// Starts session `slot`'s thread, which binds device tensors at the
    /// session's fixed input shapes and captures the graph in warm-up runs;
    /// returns once that is done (or failed).
    pub(super) fn start(
        model: GraphModel,
        slot: Arc<Mutex<Slot>>,
        memory: DeviceMemory,
    ) -> Result<Self> {
        let shapes = model.input_shapes.clone();
        // Callers wait for their runs; a ninth at once waits to be queued.
        let (jobs, queue) = mpsc::sync_channel::<Job>(8);
        let (ready, started) = mpsc::sync_channel::<Result<()>>(1);
        let stopped = format!("the graph thread of {} stopped", model.name);
        let thread = std::thread::Builder::new()
            .name(format!("graph {}", model.name))
            .spawn(move || {
                let name = &model.name;
                // Made beside other runs, captured while none is under way.
                let made = {
                    let _run = run_guard();
                    let s = lock(&slot);
                    Bound::new(&model, &s.session, memory)
                };
                let warmed = made.and_then(|mut b| {
                    let done = {
                        let _capture = GPU_CAPTURE.write().unwrap_or_else(PoisonError::into_inner);
                        let mut s = lock(&slot);
                        (0..WARM_UP_RUNS).try_for_each(|_| b.run_bound(name, &mut s.session))
                    };
                    match done {
                        Ok(()) => Ok(b),
                        Err(e) => {
                            let _run = run_guard();
                            drop(b);
                            Err(e)
                        }
                    }
                });
                let mut bound = match warmed {
                    Ok(b) => {
                        let _ = ready.send(Ok(()));
                        b
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                for mut job in queue {
                    let result = {
                        let _run = run_guard();
                        let mut s = lock(&slot);
                        bound.run(name, &mut s.session, &mut job.data)
                    };
                    let _ = job.done.send((job.data, result));
                }
                // GPU memory is released while no graph is being captured.
                let _run = run_guard();
                drop(bound);
                drop(slot);
            })
            .map_err(|e| Error::Internal(format!("starting a graph thread: {e}")))?;
        started.recv().map_err(|_| Error::Internal(stopped))??;
        Ok(Self {
            shapes,
            in_flight: std::sync::atomic::AtomicUsize::new(0),
            jobs: Some(jobs),
            pool: Mutex::default(),
            thread: Some(thread),
        })
    }

    /// The fixed input shapes.
    pub(super) fn shapes(&self) -> &[Vec<usize>] {
        &self.shapes
    }

    /// Runs sent to the session, or being filled for it, and not back.
    pub(super) fn in_flight(&self) -> usize {
        self.in_flight.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// One run: `fill` writes the inputs (here, with nothing held), the
    /// session's thread runs the graph, `read` gets the outputs.
    pub(super) fn run<R>(
        &self,
        model: &str,
        names: &[String],
        shapes: &[&[usize]],
        mut fill: impl FnMut(usize, &mut [f32], &mut u128) -> Result<()>,
        read: impl FnOnce(&super::Outputs<'_, '_>) -> Result<R>,
    ) -> Result<R> {
        if !self
            .shapes
            .iter()
            .map(Vec::as_slice)
            .eq(shapes.iter().copied())
        {
            return Err(Error::ModelSignature {
                model: model.into(),
                reason: format!(
                    "runs with a CUDA graph at input shapes {:?}, not {shapes:?}",
                    self.shapes
                ),
            });
        }
        // Counted from the fill on, until this returns.
        let _counted = InFlight::new(&self.in_flight);
        let popped = self
            .pool
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        let mut io = popped.unwrap_or_else(|| {
            let (done, back) = mpsc::sync_channel(1);
            Io {
                data: IoData {
                    inputs: self
                        .shapes
                        .iter()
                        .map(|s| vec![0.0; s.iter().product()])
                        .collect(),
                    stamps: vec![0; self.shapes.len()],
                    outputs: Vec::new(),
                },
                done,
                back,
            }
        });
        // A failed fill or run drops the buffers (what they hold is unknown).
        for (k, (buf, stamp)) in io
            .data
            .inputs
            .iter_mut()
            .zip(&mut io.data.stamps)
            .enumerate()
        {
            fill(k, buf, stamp)?;
        }
        let stopped = || Error::Internal(format!("the graph thread of {model} stopped"));
        let jobs = self.jobs.as_ref().ok_or_else(stopped)?;
        let back = jobs
            .send(Job {
                data: std::mem::take(&mut io.data),
                done: io.done.clone(),
            })
            .map_err(|_| stopped())
            .and_then(|()| io.back.recv().map_err(|_| stopped()));
        let (data, result) = back?;
        io.data = data;
        result?;
        let out = read(&super::Outputs {
            model,
            names,
            values: super::Values::Host(&io.data.outputs),
        });
        if out.is_ok() {
            self.pool
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(io);
        }
        out
    }
}

/// One run counted in a session's runs in flight while it lives.
struct InFlight<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> InFlight<'a> {
    fn new(n: &'a std::sync::atomic::AtomicUsize) -> Self {
        n.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(n)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A value whose drop may release GPU memory (sessions, pinned buffers),
/// dropped while no CUDA graph is being captured.
pub(super) struct Released<T: Default>(T);

impl<T: Default> Released<T> {
    pub(super) fn new(value: T) -> Self {
        Self(value)
    }

    pub(super) fn into_inner(mut self) -> T {
        std::mem::take(&mut self.0)
    }
}

impl<T: Default> std::ops::Deref for Released<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Default> std::ops::DerefMut for Released<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: Default> Drop for Released<T> {
    fn drop(&mut self) {
        let _run = run_guard();
        drop(std::mem::take(&mut self.0));
    }
}

fn lock(slot: &Mutex<Slot>) -> std::sync::MutexGuard<'_, Slot> {
    slot.lock().unwrap_or_else(PoisonError::into_inner)
}

impl GraphModel {
    /// Model `name` as `session` states it: its inputs and outputs must all
    /// be float32 and, at the fixed inputs, of shapes ONNX Runtime knows
    /// before the first run (a graph is captured for one shape, and the
    /// session's first run is the bound one).
    pub(super) fn of(
        name: &str,
        session: &Session,
        env: &'static ort::environment::Environment,
    ) -> Result<Self> {
        let refuse = |reason: String| Error::ModelSignature {
            model: name.into(),
            reason: format!(
                "a CUDA graph needs float32 inputs and outputs of fixed shapes: {reason}"
            ),
        };
        let fixed = |what: &str, o: &ort::value::Outlet| -> Result<Vec<i64>> {
            if o.dtype().tensor_type() != Some(TensorElementType::Float32) {
                return Err(refuse(format!("{what} {} is not float32", o.name())));
            }
            let dims: Vec<i64> = o
                .dtype()
                .tensor_shape()
                .map(|s| s.iter().copied().collect())
                .unwrap_or_default();
            if dims.iter().all(|&d| d > 0) {
                Ok(dims)
            } else {
                Err(refuse(format!("{what} {} is {dims:?}", o.name())))
            }
        };
        let names = |o: &[ort::value::Outlet]| o.iter().map(|o| o.name().to_string()).collect();
        Ok(Self {
            name: name.into(),
            inputs: names(session.inputs()),
            outputs: names(session.outputs()),
            input_shapes: session
                .inputs()
                .iter()
                .map(|i| Ok(fixed("input", i)?.iter().map(|&d| d as usize).collect()))
                .collect::<Result<_>>()?,
            output_shapes: session
                .outputs()
                .iter()
                .map(|o| fixed("output", o))
                .collect::<Result<_>>()?,
            env,
        })
    }
}

impl Bound {
    /// Binds device tensors for every input and output of the session, and
    /// makes the copies to and from them. The session is not run.
    fn new(model: &GraphModel, session: &Session, memory: DeviceMemory) -> Result<Self> {
        let name = model.name.as_str();
        let ort = |what: &str| Error::ort(format!("{what} for the CUDA graph of {name}"));
        let device = match memory {
            DeviceMemory::Cuda(n) => Allocator::new(
                session,
                MemoryInfo::new(
                    AllocationDevice::CUDA,
                    n,
                    AllocatorType::Device,
                    MemoryType::Default,
                )
                .map_err(ort("memory of the GPU"))?,
            )
            .map_err(ort(&format!("an allocator of GPU {n}")))?,
            DeviceMemory::Host => Allocator::default(),
        };
        let in_shapes: Vec<Vec<i64>> = model
            .input_shapes
            .iter()
            .map(|s| s.iter().map(|&d| d as i64).collect())
            .collect();
        let out_shapes = &model.output_shapes;
        let tensors =
            |shapes: &[Vec<i64>], a: &Allocator, what: &str| -> Result<Vec<Tensor<f32>>> {
                shapes
                    .iter()
                    .map(|s| Tensor::new(a, s.clone()).map_err(ort(what)))
                    .collect()
            };
        let mut dev_in = tensors(&in_shapes, &device, "binding inputs")?;
        let mut dev_out = tensors(out_shapes, &device, "binding outputs")?;
        let mut up = Copier::new(model, memory, &in_shapes)?;
        let mut down = Copier::new(model, memory, out_shapes)?;
        // Pinned host memory for the copies where the device is a GPU.
        let pinned = match memory {
            DeviceMemory::Cuda(n) => match super::pinned_allocator(&up.session, n) {
                Ok(a) => Some(a),
                Err(e) => {
                    tracing::warn!(
                        model = name,
                        "no pinned host memory for the CUDA graph's copies: {e}"
                    );
                    None
                }
            },
            DeviceMemory::Host => None,
        };
        let host = pinned.unwrap_or_default();
        let mut host_in = tensors(&in_shapes, &host, "host buffers")?;
        let mut host_out = tensors(out_shapes, &host, "host buffers")?;
        for t in host_in.iter_mut().chain(&mut host_out) {
            t.extract_tensor_mut().1.fill(0.0);
        }
        let mut binding = session.create_binding().map_err(ort("an IO binding"))?;
        let bound = |what: &str, r: ort::Result<()>| r.map_err(ort(what));
        for (k, n) in model.inputs.iter().enumerate() {
            bound(
                "binding an input",
                binding.bind_input(n.as_str(), &dev_in[k]),
            )?;
        }
        for (k, n) in model.outputs.iter().enumerate() {
            bound(
                "binding an output",
                binding.bind_output(n.as_str(), &mut dev_out[k]),
            )?;
        }
        // The copy in's host inputs are bound on each run.
        for (k, t) in dev_in.iter_mut().enumerate() {
            bound("binding a copy", up.binding.bind_output(copy_out(k), t))?;
        }
        for (k, (d, h)) in dev_out.iter().zip(&mut host_out).enumerate() {
            bound("binding a copy", down.binding.bind_input(copy_in(k), d))?;
            bound("binding a copy", down.binding.bind_output(copy_out(k), h))?;
        }
        Ok(Self {
            binding,
            up,
            down,
            host_in,
            host_out,
        })
    }

    /// The copy in, the graph, the copy out.
    fn run_bound(&mut self, model: &str, session: &mut Session) -> Result<()> {
        let ort = |what: &str| Error::ort(format!("{what} of {model}"));
        // Bound now: a host tensor bound to a GPU session is copied when
        // it is bound.
        for (k, t) in self.host_in.iter().enumerate() {
            self.up
                .binding
                .bind_input(copy_in(k), t)
                .map_err(ort("binding the inputs"))?;
        }
        self.up
            .session
            .run_binding(&self.up.binding)
            .map_err(ort("copying the inputs"))?;
        session
            .run_binding(&self.binding)
            .map_err(ort("running the CUDA graph"))?;
        self.down
            .session
            .run_binding(&self.down.binding)
            .map_err(ort("copying the outputs"))?;
        Ok(())
    }

    /// One run on the caller's values.
    fn run(&mut self, model: &str, session: &mut Session, data: &mut IoData) -> Result<()> {
        for (t, v) in self.host_in.iter_mut().zip(&data.inputs) {
            t.extract_tensor_mut().1.copy_from_slice(v);
        }
        self.run_bound(model, session)?;
        data.outputs
            .resize_with(self.host_out.len(), Default::default);
        for ((shape, values), t) in data.outputs.iter_mut().zip(&self.host_out) {
            let (s, v) = t.extract_tensor();
            shape.clear();
            shape.extend_from_slice(s);
            values.clear();
            values.extend_from_slice(v);
        }
        Ok(())
    }
}

fn copy_in(k: usize) -> String {
    format!("copy_in_{k}")
}

fn copy_out(k: usize) -> String {
    format!("copy_out_{k}")
}

impl Copier {
    /// A session copying tensors of `shapes`, on the device's provider.
    fn new(model: &GraphModel, memory: DeviceMemory, shapes: &[Vec<i64>]) -> Result<Self> {
        let ort = |what: &str| Error::ort(format!("{what} for the CUDA graph of {}", model.name));
        let mut b = crate::onnx::ModelBuilder::new("copy", 13);
        for (k, s) in shapes.iter().enumerate() {
            let dims = crate::onnx::fixed(s);
            b = b
                .input(&copy_in(k), &dims)
                .node(
                    "Identity",
                    &[copy_in(k).as_str()],
                    &[copy_out(k).as_str()],
                    &[],
                )
                .output(&copy_out(k), &dims);
        }
        let mut builder = Session::builder(model.env).map_err(ort("a copy session"))?;
        if let DeviceMemory::Cuda(n) = memory {
            let mut cuda = ProviderConfig::new(ExecutionProvider::Cuda);
            cuda.device_id = Some(n);
            cuda.dispatch()
                .error_on_failure()
                .register(&mut builder)
                .map_err(|e| Error::ProviderUnavailable {
                    provider: "cuda".into(),
                    model: model.name.clone(),
                    reason: format!("the CUDA graph's copies need it: {e}"),
                })?;
        }
        let session = builder
            .with_intra_threads(1)
            .map_err(|e| ort("a copy session")(e.into()))?
            .commit_from_memory(&b.build())
            .map_err(ort("a copy session"))?;
        super::SESSIONS_CREATED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let binding = session.create_binding().map_err(ort("a copy binding"))?;
        Ok(Self { session, binding })
    }
}
