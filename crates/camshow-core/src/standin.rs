//! Compute-faithful stand-ins of the models that cannot be downloaded here:
//! random weights in the layers, shapes and multiply-accumulate count of the
//! real networks, built in memory (never written to the repository), so
//! benchmarks measure realistic model time on this machine's CPU or a GPU.
//! Their outputs mean nothing; only their cost is real.
//!
//! - [`inswapper_128`]: the layout of insightface's `inswapper_128` as the
//!   public ReSwapper re-implementation describes it (a 7×7 and three 3×3
//!   convolutions down to 1024×32×32, six residual blocks of two 3×3
//!   convolutions with AdaIN from the 512-d latent, two ×2 bilinear
//!   upsamplings and four convolutions back to 3×128×128), and the 512×512
//!   `emap` last: 138.3 M weights, as the real 554 MB file holds.
//! - [`w600k_r50`]: IResNet-50 (buffalo_l's recognizer): a 3×3 stem and
//!   3, 4, 14 and 3 improved basic blocks of 64, 128, 256 and 512 channels,
//!   then a 25088→512 fully connected layer (batch norms folded away, as
//!   ONNX Runtime folds them).
//!
//! And one cheap stand-in, [`cheap_det_10g`], for timing everything but the
//! networks.
//!
//! ```no_run
//! # fn main() -> camshow_core::Result<()> {
//! use camshow_core::runtime::{Runtime, RuntimeSettings};
//! let m = camshow_core::standin::w600k_r50();
//! let rt = Runtime::new(RuntimeSettings::default())?;
//! let model = rt.load(m.id, &m.bytes)?;
//! println!("{} GMAC", m.macs as f64 / 1e9);
//! # Ok(()) }
//! ```

use crate::onnx::{Attr, Dim, ModelBuilder, fixed};

/// A stand-in model and what it costs.
#[derive(Debug, Clone)]
pub struct StandIn {
    /// The real model's id.
    pub id: &'static str,
    /// The ONNX file.
    pub bytes: Vec<u8>,
    /// Multiply-accumulates of one run (convolutions and matrix products).
    pub macs: u64,
    /// Weights.
    pub params: u64,
    /// Input shapes, in graph order.
    pub inputs: Vec<Vec<usize>>,
}

/// A graph under construction with its running cost.
struct Net {
    b: ModelBuilder,
    macs: u64,
    params: u64,
    seed: u64,
    n: usize,
}

impl Net {
    fn new(name: &str) -> Self {
        Self {
            b: ModelBuilder::new(name, 13),
            macs: 0,
            params: 0,
            seed: 0x9E37_79B9_7F4A_7C15,
            n: 0,
        }
    }

    fn name(&mut self, what: &str) -> String {
        self.n += 1;
        format!("{what}{}", self.n)
    }

    /// Uniform random weights in ±`scale` (xorshift: fast, reproducible).
    fn weights(&mut self, count: usize, scale: f32) -> Vec<f32> {
        let mut x = self.seed;
        let v = (0..count)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                ((x >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0) * scale
            })
            .collect();
        self.seed = x;
        v
    }

    fn weight(&mut self, dims: &[i64], scale: f32) -> String {
        let name = self.name("w");
        let count: i64 = dims.iter().product();
        let data = self.weights(count as usize, scale);
        self.params += count as u64;
        self.b = std::mem::take(&mut self.b).initializer(&name, dims, &data);
        name
    }

    fn node(&mut self, op: &str, inputs: &[&str], attrs: &[(&str, Attr)]) -> String {
        let out = self.name(op);
        self.b = std::mem::take(&mut self.b).node(op, inputs, &[&out], attrs);
        out
    }

    /// A convolution of `x` (`cin` channels, `h`×`w`): returns the output
    /// and its size. He-scaled weights keep the activations in range.
    #[allow(clippy::too_many_arguments)]
    fn conv(
        &mut self,
        x: &str,
        cin: i64,
        cout: i64,
        k: i64,
        stride: i64,
        (h, w): (i64, i64),
    ) -> (String, (i64, i64)) {
        let scale = (6.0 / (cin * k * k) as f32).sqrt();
        let wt = self.weight(&[cout, cin, k, k], scale);
        let bias = self.weight(&[cout], 0.01);
        let p = k / 2;
        let (oh, ow) = ((h + 2 * p - k) / stride + 1, (w + 2 * p - k) / stride + 1);
        self.macs += (cin * cout * k * k * oh * ow) as u64;
        let y = self.node(
            "Conv",
            &[x, &wt, &bias],
            &[
                ("kernel_shape", Attr::Ints(vec![k, k])),
                ("pads", Attr::Ints(vec![p, p, p, p])),
                ("strides", Attr::Ints(vec![stride, stride])),
            ],
        );
        (y, (oh, ow))
    }

    fn leaky(&mut self, x: &str) -> String {
        self.node("LeakyRelu", &[x], &[("alpha", Attr::Float(0.2))])
    }

    fn prelu(&mut self, x: &str, c: i64) -> String {
        let slope = self.weight(&[c, 1, 1], 0.25);
        self.node("PRelu", &[x, &slope], &[])
    }

    /// `x @ W + b` for a `[1, cin]` row.
    fn linear(&mut self, x: &str, cin: i64, cout: i64) -> String {
        let wt = self.weight(&[cin, cout], (3.0 / cin as f32).sqrt());
        let bias = self.weight(&[cout], 0.01);
        self.macs += (cin * cout) as u64;
        self.node("Gemm", &[x, &wt, &bias], &[])
    }

    fn finish(self, id: &'static str, inputs: Vec<Vec<usize>>) -> StandIn {
        StandIn {
            id,
            bytes: self.b.build(),
            macs: self.macs,
            params: self.params,
            inputs,
        }
    }
}

/// AdaIN: instance-normalised `x` (`c` channels) scaled and shifted by two
/// linear maps of the `[1, 512]` latent.
fn adain(n: &mut Net, x: &str, latent: &str, c: i64, shape: &str) -> String {
    let ones = n.name("ones");
    let zeros = n.name("zeros");
    n.b = std::mem::take(&mut n.b)
        .initializer(&ones, &[c], &vec![1.0; c as usize])
        .initializer(&zeros, &[c], &vec![0.0; c as usize]);
    let normed = n.node(
        "InstanceNormalization",
        &[x, &ones, &zeros],
        &[("epsilon", Attr::Float(1e-6))],
    );
    let gamma = n.linear(latent, 512, c);
    let beta = n.linear(latent, 512, c);
    let gamma = n.node("Reshape", &[&gamma, shape], &[]);
    let beta = n.node("Reshape", &[&beta, shape], &[]);
    let scaled = n.node("Mul", &[&normed, &gamma], &[]);
    n.node("Add", &[&scaled, &beta], &[])
}

fn upsample(n: &mut Net, x: &str, scales: &str) -> String {
    n.node(
        "Resize",
        &[x, "", scales],
        &[("mode", Attr::Str("linear".into()))],
    )
}

/// `inswapper_128`: `target` 1×3×128×128 and `source` 1×512 to `output`
/// 1×3×128×128 (see the module docs).
pub fn inswapper_128() -> StandIn {
    let mut n = Net::new("inswapper_128_stand_in");
    n.b = std::mem::take(&mut n.b)
        .input("target", &fixed(&[1, 3, 128, 128]))
        .input("source", &fixed(&[1, 512]))
        .output(
            "output",
            &[
                Dim::Fixed(1),
                Dim::Fixed(3),
                Dim::Fixed(128),
                Dim::Fixed(128),
            ],
        )
        .initializer_i64("style_shape", &[4], &[1, 1024, 1, 1])
        .initializer("x2", &[4], &[1.0, 1.0, 2.0, 2.0]);
    let size = (128, 128);
    let (x, size) = n.conv("target", 3, 128, 7, 1, size);
    let x = n.leaky(&x);
    let (x, size) = n.conv(&x, 128, 256, 3, 1, size);
    let x = n.leaky(&x);
    let (x, size) = n.conv(&x, 256, 512, 3, 2, size);
    let x = n.leaky(&x);
    let (x, size) = n.conv(&x, 512, 1024, 3, 2, size);
    let mut x = n.leaky(&x);
    for _ in 0..6 {
        let (y, _) = n.conv(&x, 1024, 1024, 3, 1, size);
        let y = adain(&mut n, &y, "source", 1024, "style_shape");
        let y = n.node("Relu", &[&y], &[]);
        let (y, _) = n.conv(&y, 1024, 1024, 3, 1, size);
        let y = adain(&mut n, &y, "source", 1024, "style_shape");
        x = n.node("Add", &[&y, &x], &[]);
    }
    let x = upsample(&mut n, &x, "x2");
    let size = (size.0 * 2, size.1 * 2);
    let (x, size) = n.conv(&x, 1024, 512, 3, 1, size);
    let x = n.leaky(&x);
    let x = upsample(&mut n, &x, "x2");
    let size = (size.0 * 2, size.1 * 2);
    let (x, size) = n.conv(&x, 512, 256, 3, 1, size);
    let x = n.leaky(&x);
    let (x, size) = n.conv(&x, 256, 128, 3, 1, size);
    let x = n.leaky(&x);
    let (x, _) = n.conv(&x, 128, 3, 7, 1, size);
    n.b = std::mem::take(&mut n.b).node("Tanh", &[&x], &["output"], &[]);
    // The 512×512 `emap` (embedding to latent) is the real file's last
    // initializer; the engine reads it from there.
    let emap = n.weights(512 * 512, 1.0 / 512f32.sqrt());
    n.params += 512 * 512;
    n.b = std::mem::take(&mut n.b).initializer("emap", &[512, 512], &emap);
    n.finish("inswapper_128", vec![vec![1, 3, 128, 128], vec![1, 512]])
}

/// `w600k_r50`: `input.1` 1×3×112×112 to a 1×512 embedding (see the module docs).
pub fn w600k_r50() -> StandIn {
    let mut n = Net::new("w600k_r50_stand_in");
    n.b = std::mem::take(&mut n.b)
        .input("input.1", &fixed(&[1, 3, 112, 112]))
        .output("683", &fixed(&[1, 512]))
        .initializer_i64("flat", &[2], &[1, 25088]);
    let (x, mut size) = n.conv("input.1", 3, 64, 3, 1, (112, 112));
    let mut x = n.prelu(&x, 64);
    let mut cin = 64;
    for (blocks, c) in [(3, 64), (4, 128), (14, 256), (3, 512)] {
        for i in 0..blocks {
            let stride = if i == 0 { 2 } else { 1 };
            let (y, s1) = n.conv(&x, cin, c, 3, 1, size);
            let y = n.prelu(&y, c);
            let (y, s2) = n.conv(&y, c, c, 3, stride, s1);
            let skip = if i == 0 {
                n.conv(&x, cin, c, 1, stride, size).0
            } else {
                x.clone()
            };
            x = n.node("Add", &[&y, &skip], &[]);
            size = s2;
            cin = c;
        }
    }
    let flat = n.node("Reshape", &[&x, "flat"], &[]);
    let e = n.linear(&flat, 25088, 512);
    n.b = std::mem::take(&mut n.b).node("Identity", &[&e], &["683"], &[]);
    n.finish("w600k_r50", vec![vec![1, 3, 112, 112]])
}

/// A cheap stand-in of `det_10g` (SCRFD): its signature, with constant
/// outputs holding exactly one face, centred in a 16:9 frame; the input is
/// only touched through one sliced pixel. With it, benchmarks time the
/// engine's and the pipeline's own work (letterbox, decode, alignment,
/// paste-back, codecs), not a network.
pub fn cheap_det_10g() -> Vec<u8> {
    let mut b = ModelBuilder::new("scrfd_stand_in", 13)
        .input(
            "input.1",
            &[
                Dim::Fixed(1),
                Dim::Fixed(3),
                Dim::Symbolic("H".into()),
                Dim::Symbolic("W".into()),
            ],
        )
        .initializer_i64("starts", &[4], &[0, 0, 0, 0])
        .initializer_i64("ends", &[4], &[1, 1, 1, 1])
        .initializer_i64("one", &[1], &[1])
        .initializer("zero", &[], &[0.0])
        .node("Slice", &["input.1", "starts", "ends"], &["px"], &[])
        .node("Reshape", &["px", "one"], &["px1"], &[])
        .node("Mul", &["px1", "zero"], &["z"], &[]);
    let mut outs = Vec::new();
    for (kind, c) in [("s", 1usize), ("b", 4), ("k", 10)] {
        for stride in [8usize, 16, 32] {
            let n = (640 / stride) * (640 / stride) * 2;
            let mut v = vec![0f32; n * c];
            if stride == 32 {
                // cell (x=10, y=5): centre (320, 160) in the letterbox = the frame centre at det_scale 0.5 (720p)
                let i = (5 * 20 + 10) * 2;
                match kind {
                    "s" => v[i] = 0.95,
                    "b" => v[i * 4..i * 4 + 4].copy_from_slice(&[1.5, 1.5, 1.5, 1.5]),
                    _ => v[i * 10..i * 10 + 10].copy_from_slice(&[
                        -0.6, -0.45, 0.6, -0.45, 0.0, 0.15, -0.45, 0.75, 0.45, 0.75,
                    ]),
                }
            }
            let name = format!("{kind}{stride}");
            b = b
                .node(
                    "Constant",
                    &[],
                    &[&format!("c_{name}")],
                    &[("value", Attr::Tensor(vec![n as i64, c as i64], v))],
                )
                .node("Add", &[&format!("c_{name}"), "z"], &[&name], &[]);
            outs.push((name, c, n));
        }
    }
    for (name, c, n) in &outs {
        b = b.output(name, &[Dim::Fixed(*n as i64), Dim::Fixed(*c as i64)]);
    }
    b.build()
}

/// Every stand-in's builder, cheapest first (built one at a time, the
/// inswapper alone is over half a gigabyte).
pub const ALL: [fn() -> StandIn; 2] = [w600k_r50, inswapper_128];

/// Writes the stand-ins into `dir` (`<id>.onnx` each) and returns the
/// files by model id, for a store's overrides (`--model-file ID=FILE`).
pub fn write_all(dir: &std::path::Path) -> crate::Result<Vec<(&'static str, std::path::PathBuf)>> {
    let mut files = Vec::new();
    for build in ALL {
        let m = build();
        let path = dir.join(format!("{}.onnx", m.id));
        std::fs::write(&path, &m.bytes).map_err(crate::Error::io("cannot write", &path))?;
        files.push((m.id, path));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stand_ins_have_the_real_models_size_and_signature() {
        let r50 = w600k_r50();
        // IResNet-50: about 43.6 M weights and 6.3 G multiply-accumulates.
        assert!(
            (40_000_000..47_000_000).contains(&r50.params),
            "{}",
            r50.params
        );
        assert!(
            (5_500_000_000..7_000_000_000).contains(&r50.macs),
            "{}",
            r50.macs
        );
        let m = crate::onnx::OnnxModel::parse(&r50.bytes).unwrap();
        assert_eq!(m.inputs().unwrap()[0].name, "input.1");
        let swap = inswapper_128();
        // The real file is 554 MB of float32: about 138 M weights.
        assert!(
            (128_000_000..142_000_000).contains(&swap.params),
            "{}",
            swap.params
        );
        let m = crate::onnx::OnnxModel::parse(&swap.bytes).unwrap();
        let names: Vec<String> = m.inputs().unwrap().into_iter().map(|i| i.name).collect();
        assert_eq!(names, ["target", "source"]);
        assert_eq!(m.outputs().unwrap()[0].name, "output");
        let last = m.initializer(m.initializer_count().unwrap() - 1).unwrap();
        assert_eq!(last.dims, [512, 512], "the emap comes last");
    }
}
