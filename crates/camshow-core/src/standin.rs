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
//! - [`det_10g`]: SCRFD-10G (buffalo_l's detector), the published
//!   `scrfd_10g_bnkps` layout: 13.3 GMAC at 640×640 (10 at 640×480, the
//!   figure its name gives), 4.2 M weights.
//! - [`gfpgan_1_4`]: GFPGAN v1.4 (`GFPGANv1Clean`): a U-Net whose features
//!   modulate a StyleGAN2 decoder, 85 M weights as in the real 340 MB file.
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

    /// An int64 initializer (shapes, indices, axes).
    fn ints(&mut self, data: &[i64]) -> String {
        let name = self.name("i");
        self.b = std::mem::take(&mut self.b).initializer_i64(&name, &[data.len() as i64], data);
        name
    }

    /// A float32 initializer holding `data`, not counted as weights.
    fn constant(&mut self, dims: &[i64], data: &[f32]) -> String {
        let name = self.name("c");
        self.b = std::mem::take(&mut self.b).initializer(&name, dims, data);
        name
    }

    /// A node whose one output is named `out` (a graph output).
    fn node_to(&mut self, op: &str, inputs: &[&str], out: &str, attrs: &[(&str, Attr)]) {
        self.b = std::mem::take(&mut self.b).node(op, inputs, &[out], attrs);
    }

    fn relu(&mut self, x: &str) -> String {
        self.node("Relu", &[x], &[])
    }

    /// `x` resized by `factor` in both spatial axes (`mode`: "linear" or "nearest").
    fn resize(&mut self, x: &str, factor: f32, mode: &str) -> String {
        let scales = self.constant(&[4], &[1.0, 1.0, factor, factor]);
        self.node(
            "Resize",
            &[x, "", &scales],
            &[("mode", Attr::Str(mode.into()))],
        )
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

/// `det_10g` (SCRFD-10G, buffalo_l's detector): `input.1` 1×3×H×W to the
/// nine outputs the engine reads (scores, box distances and points for
/// strides 8, 16 and 32, in that order). The layout of the published
/// `scrfd_10g_bnkps` configuration: a ResNet-v1e deep stem (three 3×3
/// convolutions and a max pool), basic blocks 3, 4, 2 and 3 of 56, 88, 88
/// and 224 channels with average-pool shortcuts, a PAFPN of 56 channels on
/// the last three stages, and per stride three 3×3 convolutions of 80
/// channels then the score, box and point convolutions (two anchors per
/// cell; batch norms folded away). The cost is counted at the engine's
/// 640×640 input. The scores are squashed and pushed far down (a tanh, less
/// 30, before the sigmoid), so the stand-in does the real amount of work and
/// finds no face.
pub fn det_10g() -> StandIn {
    let mut n = Net::new("det_10g_stand_in");
    n.b = std::mem::take(&mut n.b).input(
        "input.1",
        &[
            Dim::Fixed(1),
            Dim::Fixed(3),
            Dim::Symbolic("H".into()),
            Dim::Symbolic("W".into()),
        ],
    );
    let size = (640, 640);
    let (x, size) = n.conv("input.1", 3, 28, 3, 2, size);
    let x = n.relu(&x);
    let (x, size) = n.conv(&x, 28, 28, 3, 1, size);
    let x = n.relu(&x);
    let (x, size) = n.conv(&x, 28, 56, 3, 1, size);
    let x = n.relu(&x);
    let mut x = n.node(
        "MaxPool",
        &[&x],
        &[
            ("kernel_shape", Attr::Ints(vec![3, 3])),
            ("pads", Attr::Ints(vec![1, 1, 1, 1])),
            ("strides", Attr::Ints(vec![2, 2])),
        ],
    );
    let mut size = ((size.0 - 1) / 2 + 1, (size.1 - 1) / 2 + 1);
    let mut cin = 56;
    let mut stages = Vec::new();
    for (stage, (blocks, c)) in [(3, 56), (4, 88), (2, 88), (3, 224)]
        .into_iter()
        .enumerate()
    {
        for b in 0..blocks {
            let stride = if b == 0 && stage > 0 { 2 } else { 1 };
            let (y, s) = n.conv(&x, cin, c, 3, stride, size);
            let y = n.relu(&y);
            let (y, s) = n.conv(&y, c, c, 3, 1, s);
            let skip = if stride == 2 {
                let pooled = n.node(
                    "AveragePool",
                    &[&x],
                    &[
                        ("kernel_shape", Attr::Ints(vec![2, 2])),
                        ("strides", Attr::Ints(vec![2, 2])),
                        ("ceil_mode", Attr::Int(1)),
                    ],
                );
                n.conv(&pooled, cin, c, 1, 1, s).0
            } else {
                x.clone()
            };
            let sum = n.node("Add", &[&y, &skip], &[]);
            x = n.relu(&sum);
            size = s;
            cin = c;
        }
        if stage > 0 {
            stages.push((x.clone(), cin, size));
        }
    }
    // PAFPN: laterals, top-down sums, 3×3 smoothing, bottom-up path.
    let mut lat: Vec<String> = stages
        .iter()
        .map(|(f, c, s)| n.conv(f, *c, 56, 1, 1, *s).0)
        .collect();
    for i in (1..lat.len()).rev() {
        let up = n.resize(&lat[i], 2.0, "nearest");
        lat[i - 1] = n.node("Add", &[&lat[i - 1], &up], &[]);
    }
    let sizes: Vec<(i64, i64)> = stages.iter().map(|s| s.2).collect();
    let mut inter: Vec<String> = lat
        .iter()
        .zip(&sizes)
        .map(|(l, s)| n.conv(l, 56, 56, 3, 1, *s).0)
        .collect();
    for i in 0..inter.len() - 1 {
        let (down, _) = n.conv(&inter[i], 56, 56, 3, 2, sizes[i]);
        inter[i + 1] = n.node("Add", &[&inter[i + 1], &down], &[]);
    }
    let outs: Vec<String> = (0..inter.len())
        .map(|i| {
            if i == 0 {
                inter[0].clone()
            } else {
                n.conv(&inter[i], 56, 56, 3, 1, sizes[i]).0
            }
        })
        .collect();
    // The heads, one per stride (not shared).
    let never = n.constant(&[1], &[-30.0]);
    let scale = n.constant(&[1], &[1.0]);
    let mut heads: [Vec<(String, i64)>; 3] = Default::default();
    for (o, s) in outs.iter().zip(&sizes) {
        let mut y = o.clone();
        let mut c = 56;
        for _ in 0..3 {
            let (z, _) = n.conv(&y, c, 80, 3, 1, *s);
            y = n.relu(&z);
            c = 80;
        }
        let (score, _) = n.conv(&y, 80, 2, 3, 1, *s);
        let score = n.node("Tanh", &[&score], &[]);
        let score = n.node("Add", &[&score, &never], &[]);
        let score = n.node("Sigmoid", &[&score], &[]);
        let (dist, _) = n.conv(&y, 80, 8, 3, 1, *s);
        let dist = n.node("Mul", &[&dist, &scale], &[]);
        let (kps, _) = n.conv(&y, 80, 20, 3, 1, *s);
        for (k, (t, c)) in [(score, 1), (dist, 4), (kps, 10)].into_iter().enumerate() {
            let t = n.node(
                "Transpose",
                &[&t],
                &[("perm", Attr::Ints(vec![0, 2, 3, 1]))],
            );
            heads[k].push((t, c));
        }
    }
    for (kind, list) in ["score", "bbox", "kps"].iter().zip(&heads) {
        for ((t, c), stride) in list.iter().zip([8, 16, 32]) {
            let shape = n.ints(&[-1, *c]);
            let name = format!("{kind}_{stride}");
            n.node_to("Reshape", &[t, &shape], &name, &[]);
            n.b = std::mem::take(&mut n.b).output(
                &name,
                &[Dim::Symbolic(format!("cells_{stride}")), Dim::Fixed(*c)],
            );
        }
    }
    n.finish("det_10g", vec![vec![1, 3, 640, 640]])
}

/// A StyleGAN2 modulated convolution: the weights scaled per input channel
/// by a linear map of the 512-d `latent`, then (when `demod`) normalised per
/// output channel, computed in the graph as the exported decoder does.
#[allow(clippy::too_many_arguments)]
fn modulated_conv(
    n: &mut Net,
    x: &str,
    latent: &str,
    cin: i64,
    cout: i64,
    k: i64,
    demod: bool,
    (h, w): (i64, i64),
) -> String {
    let style = n.linear(latent, 512, cin);
    let shape = n.ints(&[1, cin, 1, 1]);
    let style = n.node("Reshape", &[&style, &shape], &[]);
    let wt = n.weight(&[cout, cin, k, k], (3.0 / (cin * k * k) as f32).sqrt());
    let mut wt = n.node("Mul", &[&wt, &style], &[]);
    if demod {
        let sq = n.node("Mul", &[&wt, &wt], &[]);
        let axes = n.ints(&[1, 2, 3]);
        let sum = n.node("ReduceSum", &[&sq, &axes], &[("keepdims", Attr::Int(1))]);
        let eps = n.constant(&[1], &[1e-8]);
        let sum = n.node("Add", &[&sum, &eps], &[]);
        let norm = n.node("Sqrt", &[&sum], &[]);
        wt = n.node("Div", &[&wt, &norm], &[]);
    }
    let bias = n.weight(&[cout], 0.01);
    n.macs += (cin * cout * k * k * (h * w + 1)) as u64;
    let p = k / 2;
    n.node(
        "Conv",
        &[x, &wt, &bias],
        &[
            ("kernel_shape", Attr::Ints(vec![k, k])),
            ("pads", Attr::Ints(vec![p, p, p, p])),
        ],
    )
}

/// GFPGAN v1.4's residual block of its U-Net: a 3×3 convolution, a ×`factor`
/// bilinear resize, a 3×3 convolution to `cout`, and a resized 1×1 shortcut.
fn gfpgan_res_block(
    n: &mut Net,
    x: &str,
    cin: i64,
    cout: i64,
    factor: f32,
    size: (i64, i64),
) -> (String, (i64, i64)) {
    let (y, _) = n.conv(x, cin, cin, 3, 1, size);
    let y = n.leaky(&y);
    let y = n.resize(&y, factor, "linear");
    let to = if factor > 1.0 {
        (size.0 * 2, size.1 * 2)
    } else {
        (size.0 / 2, size.1 / 2)
    };
    let (y, _) = n.conv(&y, cin, cout, 3, 1, to);
    let y = n.leaky(&y);
    let skip = n.resize(x, factor, "linear");
    let (skip, _) = n.conv(&skip, cin, cout, 1, 1, to);
    (n.node("Add", &[&y, &skip], &[]), to)
}

/// `gfpgan_1.4`: `input` 1×3×512×512 to `output` 1×3×512×512. The layout of
/// `GFPGANv1Clean` with channel multiplier 2 and half-channel SFT: a U-Net
/// (1×1 stem of 32 channels, seven bilinear down blocks to 256×4×4, a
/// 4096→8192 linear map to sixteen 512-d style codes, seven up blocks) whose
/// features give a scale and a shift (two 3×3 convolutions each) at every
/// size from 8 to 512, and a StyleGAN2 decoder (512 channels to 64×64, then
/// 256, 128 and 64) of modulated, demodulated convolutions whose weights
/// depend on the input, with the SFT applied to half the channels after
/// each upsampling convolution: 85 M weights, as the real 340 MB file holds.
pub fn gfpgan_1_4() -> StandIn {
    let unet = |s: i64| match s {
        512 => 32,
        256 => 64,
        128 => 128,
        _ => 256,
    };
    let dec = |s: i64| match s {
        512 => 64,
        256 => 128,
        128 => 256,
        _ => 512,
    };
    let mut n = Net::new("gfpgan_1.4_stand_in");
    n.b = std::mem::take(&mut n.b)
        .input("input", &fixed(&[1, 3, 512, 512]))
        .output("output", &fixed(&[1, 3, 512, 512]));
    let (x, mut size) = n.conv("input", 3, 32, 1, 1, (512, 512));
    let mut feat = n.leaky(&x);
    let mut cin = 32;
    let mut skips = Vec::new();
    while size.0 > 4 {
        let cout = unet(size.0 / 2);
        (feat, size) = gfpgan_res_block(&mut n, &feat, cin, cout, 0.5, size);
        cin = cout;
        skips.push(feat.clone());
    }
    let (x, _) = n.conv(&feat, 256, 256, 3, 1, size);
    feat = n.leaky(&x);
    let flat_shape = n.ints(&[1, 4096]);
    let flat = n.node("Reshape", &[&feat, &flat_shape], &[]);
    let codes = n.linear(&flat, 4096, 16 * 512);
    let codes_shape = n.ints(&[16, 512]);
    let codes = n.node("Reshape", &[&codes, &codes_shape], &[]);
    let latent = |n: &mut Net, i: i64| {
        let idx = n.ints(&[i]);
        n.node("Gather", &[&codes, &idx], &[("axis", Attr::Int(0))])
    };
    let mut conditions = Vec::new();
    for skip in skips.iter().rev() {
        feat = n.node("Add", &[&feat, skip], &[]);
        let cout = unet(size.0 * 2);
        (feat, size) = gfpgan_res_block(&mut n, &feat, cin, cout, 2.0, size);
        cin = cout;
        let mut pair = Vec::new();
        for _ in 0..2 {
            let (y, _) = n.conv(&feat, cout, cout, 3, 1, size);
            let y = n.leaky(&y);
            pair.push(n.conv(&y, cout, cout, 3, 1, size).0);
        }
        conditions.push(pair);
    }
    // The decoder, from its learned 512×4×4 constant.
    let start = n.weights(512 * 16, 1.0);
    n.params += 512 * 16;
    let mut out = n.constant(&[1, 512, 4, 4], &start);
    let mut size = (4, 4);
    let l0 = latent(&mut n, 0);
    let y = modulated_conv(&mut n, &out, &l0, 512, 512, 3, true, size);
    out = n.leaky(&y);
    let l1 = latent(&mut n, 1);
    let mut rgb = modulated_conv(&mut n, &out, &l1, 512, 3, 1, false, size);
    let mut c = 512;
    for (level, cond) in conditions.iter().enumerate() {
        let i = 1 + 2 * level as i64;
        size = (size.0 * 2, size.1 * 2);
        let co = dec(size.0);
        let up = n.resize(&out, 2.0, "linear");
        let li = latent(&mut n, i);
        let y = modulated_conv(&mut n, &up, &li, c, co, 3, true, size);
        let y = n.leaky(&y);
        // SFT on the second half of the channels.
        let (zero, half, all, axis) =
            (n.ints(&[0]), n.ints(&[co / 2]), n.ints(&[co]), n.ints(&[1]));
        let same = n.node("Slice", &[&y, &zero, &half, &axis], &[]);
        let sft = n.node("Slice", &[&y, &half, &all, &axis], &[]);
        let sft = n.node("Mul", &[&sft, &cond[0]], &[]);
        let sft = n.node("Add", &[&sft, &cond[1]], &[]);
        let y = n.node("Concat", &[&same, &sft], &[("axis", Attr::Int(1))]);
        let li = latent(&mut n, i + 1);
        let y = modulated_conv(&mut n, &y, &li, co, co, 3, true, size);
        out = n.leaky(&y);
        let li = latent(&mut n, i + 2);
        let this = modulated_conv(&mut n, &out, &li, co, 3, 1, false, size);
        let prev = n.resize(&rgb, 2.0, "linear");
        rgb = n.node("Add", &[&this, &prev], &[]);
        c = co;
    }
    n.node_to("Identity", &[&rgb], "output", &[]);
    n.finish("gfpgan_1.4", vec![vec![1, 3, 512, 512]])
}

/// A cheap stand-in of `det_10g` (SCRFD): its signature, with constant
/// outputs holding exactly one face, near the centre of a 16:9 frame; the input is
/// only touched through one sliced pixel. With it, benchmarks time the
/// engine's and the pipeline's own work (letterbox, decode, alignment,
/// paste-back, codecs), not a network.
pub fn cheap_det_10g() -> Vec<u8> {
    cheap_det_10g_at(&[(10, 5)])
}

/// [`cheap_det_10g`] with one face per stride-32 cell `(x, y)` of `cells`
/// (the letterbox is 20×20 cells; at 720p a face's centre in the frame is
/// `(64·x, 64·y)`, and each face is 192 px wide).
pub fn cheap_det_10g_at(cells: &[(usize, usize)]) -> Vec<u8> {
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
            for &(x, y) in cells.iter().filter(|_| stride == 32) {
                // cell (x, y): centre (32·x, 32·y) in the letterbox, (64·x, 64·y) in a 720p frame
                let i = (y * 20 + x) * 2;
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

/// Builds one stand-in.
pub type Builder = fn() -> StandIn;

/// Every stand-in's id and builder, cheapest first (built one at a time,
/// the inswapper alone is over half a gigabyte).
pub const ALL: [(&str, Builder); 4] = [
    ("w600k_r50", w600k_r50),
    ("det_10g", det_10g),
    ("inswapper_128", inswapper_128),
    ("gfpgan_1.4", gfpgan_1_4),
];

/// The stand-ins a faithful clip benchmark swaps with (the detector stays a
/// real one: the stand-in's random weights find no face).
pub const SWAP_PATH: [&str; 3] = ["w600k_r50", "inswapper_128", "gfpgan_1.4"];

/// The file name of [`cheap_det_10g`] where [`write`] puts it.
pub const CHEAP_DET_10G: &str = "det_10g_cheap";

/// Writes the stand-ins `ids` into `dir` (`<id>.onnx` each, each file
/// written whole or not at all) and returns the files by model id, for a
/// store's overrides (`--model-file ID=FILE`). [`CHEAP_DET_10G`] is the
/// cheap detector, for `det_10g`.
pub fn write(
    dir: &std::path::Path,
    ids: &[&str],
) -> crate::Result<Vec<(&'static str, std::path::PathBuf)>> {
    let mut files = Vec::new();
    for id in ids {
        let (model_id, bytes) = if *id == CHEAP_DET_10G {
            ("det_10g", cheap_det_10g())
        } else {
            let (model_id, build) = ALL.iter().find(|(i, _)| i == id).ok_or_else(|| {
                crate::Error::InvalidInput(format!(
                    "no stand-in called {id:?}; there are {}",
                    ALL.iter()
                        .map(|(i, _)| *i)
                        .chain([CHEAP_DET_10G])
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
            (*model_id, build().bytes)
        };
        let path = dir.join(format!("{id}.onnx"));
        crate::atomic::write(&path, &bytes)?;
        files.push((model_id, path));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `value` lies in `range`.
    fn within<T: PartialOrd + std::fmt::Debug + Copy>(range: std::ops::Range<T>, value: T) {
        assert!(range.contains(&value), "{value:?} is not in {range:?}");
    }

    #[test]
    fn the_stand_ins_have_the_real_models_size_and_signature() {
        let r50 = w600k_r50();
        // IResNet-50: about 43.6 M weights and 6.3 G multiply-accumulates.
        within(40_000_000..47_000_000, r50.params);
        within(5_500_000_000..7_000_000_000, r50.macs);
        let m = crate::onnx::OnnxModel::parse(&r50.bytes).unwrap();
        assert_eq!(m.inputs().unwrap()[0].name, "input.1");
        let swap = inswapper_128();
        // The real file is 554 MB of float32: about 138 M weights.
        within(128_000_000..142_000_000, swap.params);
        let m = crate::onnx::OnnxModel::parse(&swap.bytes).unwrap();
        let names: Vec<String> = m.inputs().unwrap().into_iter().map(|i| i.name).collect();
        assert_eq!(names, ["target", "source"]);
        assert_eq!(m.outputs().unwrap()[0].name, "output");
        let last = m.initializer(m.initializer_count().unwrap() - 1).unwrap();
        assert_eq!(last.dims, [512, 512], "the emap comes last");
        let det = det_10g();
        // SCRFD-10G: 3.9–4.2 M weights, about 10 GMAC at 640×480.
        within(3_500_000..4_500_000, det.params);
        within(9.0..11.0, det.macs as f64 * 480.0 / 640.0 / 1e9);
        let gfpgan = gfpgan_1_4();
        // The real file is 340 MB of float32: about 85 M weights.
        within(80_000_000..88_000_000, gfpgan.params);
        let m = crate::onnx::OnnxModel::parse(&gfpgan.bytes).unwrap();
        assert_eq!(m.inputs().unwrap()[0].name, "input");
        assert_eq!(m.outputs().unwrap()[0].name, "output");
        // The list names each builder by the id it builds.
        assert_eq!(ALL.map(|(id, _)| id), [r50.id, det.id, swap.id, gfpgan.id]);
    }

    /// The engine's own SCRFD reader and face enhancer take the stand-ins:
    /// the detector's nine outputs have the sizes of every stride (and its
    /// pushed-down scores find no face), the enhancer gives a 512 crop back.
    #[test]
    fn the_cheap_detector_holds_a_face_at_each_cell_it_is_given() {
        use crate::detect::FaceDetector;
        use crate::runtime::{Runtime, RuntimeSettings};
        let rt = Runtime::new(RuntimeSettings::default()).unwrap();
        let frame = crate::frame::Frame::from_rgb(1280, 720, vec![90; 1280 * 720 * 3]).unwrap();
        for cells in [&[(10usize, 5usize)][..], &[(5, 5), (15, 5)]] {
            let det = crate::detect::scrfd::Scrfd::load(&rt, &cheap_det_10g_at(cells)).unwrap();
            let mut centres: Vec<[i32; 2]> = det
                .detect(&frame)
                .unwrap()
                .iter()
                .map(|f| {
                    let [x1, y1, x2, y2] = f.bbox;
                    assert!(((x2 - x1) - 192.0).abs() < 0.5, "{:?}", f.bbox);
                    [
                        f32::midpoint(x1, x2).round() as i32,
                        f32::midpoint(y1, y2).round() as i32,
                    ]
                })
                .collect();
            centres.sort_unstable();
            let want: Vec<[i32; 2]> = cells
                .iter()
                .map(|&(x, y)| [64 * x as i32, 64 * y as i32])
                .collect();
            assert_eq!(centres, want);
        }
        assert_eq!(cheap_det_10g(), cheap_det_10g_at(&[(10, 5)]));
    }

    #[test]
    fn the_engine_runs_the_detector_and_enhancer_stand_ins() {
        use crate::detect::FaceDetector;
        use crate::runtime::{Runtime, RuntimeSettings};
        let rt = Runtime::new(RuntimeSettings::default()).unwrap();
        let det = crate::detect::scrfd::Scrfd::load(&rt, &det_10g().bytes).unwrap();
        let frame = crate::frame::Frame::from_rgb(1280, 720, vec![90; 1280 * 720 * 3]).unwrap();
        assert!(det.detect(&frame).unwrap().is_empty());
        let g = gfpgan_1_4();
        let enhancer =
            crate::process::enhancer::FaceEnhancer::load(&rt, g.id, &g.bytes, 1.0, 0.5, None)
                .unwrap();
        let crop = crate::frame::Frame::from_rgb(512, 512, vec![120; 512 * 512 * 3]).unwrap();
        let out = enhancer.run_crop(&crop).unwrap();
        assert_eq!((out.width(), out.height()), (512, 512));
    }
}
