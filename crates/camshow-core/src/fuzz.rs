//! Entry points for the fuzz harness (`fuzz/`: libFuzzer on the stable
//! toolchain, `scripts/fuzz.sh`) and for the replay of its corpus in the
//! tests. Each takes arbitrary bytes and must never panic, hang or allocate
//! without bound; a bad input is an `Err`, never a crash. Built with the
//! `fuzzing` feature (which no shipped binary enables) or in tests.

use std::path::Path;

use crate::onnx::{Dim, OnnxModel};
use crate::runtime::TensorF32;

/// Little-endian `f32`s from `data`, at most `max`.
fn floats(data: &[u8], max: usize) -> Vec<f32> {
    data.chunks_exact(4)
        .take(max)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn tensor(shape: Vec<usize>, data: Vec<f32>) -> TensorF32 {
    TensorF32 { shape, data }
}

/// The ONNX reader and the shape rewriter: every accessor on any input; a
/// rewritten model parses again and has the shapes asked for.
pub fn onnx(data: &[u8]) {
    let Ok(model) = OnnxModel::parse(data) else {
        return;
    };
    let _ = (model.ir_version(), model.producer(), model.opsets());
    let _ = model.outputs();
    if let Ok(n) = model.initializer_count() {
        for i in 0..n.min(32) {
            let _ = model.initializer(i);
        }
    }
    let _ = model.node_ops(8);
    let Ok(inputs) = model.inputs() else {
        return;
    };
    let shapes: Vec<(&str, Vec<Dim>)> = inputs
        .iter()
        .take(4)
        .map(|vi| {
            (
                vi.name.as_str(),
                vec![Dim::Fixed(1), Dim::Symbolic("h".into()), Dim::Unknown],
            )
        })
        .collect();
    if let Ok(bytes) = model.with_io_shapes(&shapes) {
        let again = OnnxModel::parse(&bytes).unwrap_or_else(|e| {
            panic!("a rewritten model does not parse: {e}");
        });
        let rewritten = again
            .inputs()
            .unwrap_or_else(|e| panic!("inputs lost: {e}"));
        for (name, dims) in &shapes {
            let vi = rewritten
                .iter()
                .find(|vi| vi.name == *name)
                .unwrap_or_else(|| panic!("input {name} lost"));
            assert_eq!(&vi.dims, dims, "input {name} has other dims");
        }
    }
}

/// NudeNet's output decoding: a `[1, 22, N]` tensor (or a wrong shape) for
/// any padded picture size.
pub fn nudenet(data: &[u8]) {
    let [a, b, c, rest @ ..] = data else {
        return;
    };
    let side = u32::from(u16::from_le_bytes([*a, *b]));
    let values = floats(rest, 22 * 2048);
    let shape = match c % 4 {
        0 => vec![1, 22, values.len() / 22],
        1 => vec![1, values.len() / 22, 22],
        2 => vec![values.len()],
        _ => vec![1, 22, values.len() / 22, 1],
    };
    if let Ok(v) = crate::safety::decode(&tensor(shape, values), side) {
        assert!(
            v.detections.iter().all(|d| d.score.is_finite()),
            "a detection without a finite score"
        );
    }
}

/// The detectors' output decoding (CenterFace, SCRFD, BlazeFace) on tensors
/// of any length and content.
pub fn detectors(data: &[u8]) {
    let [kind, a, b, rest @ ..] = data else {
        return;
    };
    match kind % 3 {
        0 => {
            // CenterFace: input up to 256×256 (outputs at a quarter of it).
            let (w, h) = (usize::from(*a) + 1, usize::from(*b) + 1);
            let v = floats(rest, 16 * 64 * 64);
            let n = v.len() / 16;
            let part = |from: usize, len: usize| {
                tensor(
                    vec![len],
                    v.get(from..from + len).unwrap_or_default().to_vec(),
                )
            };
            let (heat, scale, offset, lms) = (
                part(0, n),
                part(n, 2 * n),
                part(3 * n, 2 * n),
                part(5 * n, 10 * n),
            );
            let _ = crate::detect::centerface::decode(
                [&heat, &scale, &offset, &lms],
                w,
                h,
                f32::from(*a % 7 + 1) / 3.0,
                f32::from(*b % 7 + 1) / 3.0,
                0.5,
            );
        }
        1 => {
            // SCRFD: nine outputs for a 32–160 px input.
            let size = (usize::from(*a % 5) + 1) * 32;
            let v = floats(rest, 3 * 2 * 15 * 400);
            let chunk = (v.len() / 9).max(1);
            let outs: Vec<TensorF32> = v
                .chunks(chunk)
                .chain(std::iter::repeat_n(&[][..], 9))
                .take(9)
                .map(|c| tensor(vec![c.len()], c.to_vec()))
                .collect();
            let data: Vec<&[f32]> = outs.iter().map(|t| t.data.as_slice()).collect();
            let _ = crate::detect::scrfd::decode(&data, size, f32::from(*b % 9 + 1) / 4.0, 0.5);
        }
        _ => {
            // BlazeFace: one head of up to 32×32 cells and 6 anchors.
            let (cells, anchors) = (usize::from(*a % 32) + 1, usize::from(*b % 6) + 1);
            let v = floats(rest, 17 * 32 * 32 * 6);
            let n = v.len() / 17;
            let scores = tensor(vec![n], v[..n].to_vec());
            let boxes = tensor(vec![16 * n], v[n..17 * n].to_vec());
            let mut raws = Vec::new();
            crate::detect::blazeface::decode_head(
                &scores, &boxes, cells, anchors, 128.0, &mut raws,
            );
            let _ = crate::detect::blazeface::weighted_merge(raws);
        }
    }
}

/// A face map's JSON, as `swap --map` reads it.
pub fn face_map(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(map) = crate::mapping::FaceMap::from_json(text, Path::new("fuzz.json")) {
        // A checked map can be used: every embedding has 512 finite values.
        let probe = vec![0.05f32; 512];
        let _ = map.person_for(&probe);
    }
}

/// A settings file, as every front end reads it: a file that is accepted
/// makes settings that deserialise (validation reports problems, no panic).
pub fn settings(data: &[u8]) {
    let Ok(mut tree) = crate::settings::default_tree() else {
        return;
    };
    if let Ok(layer) = crate::settings::file_layer(&tree, data, Path::new("fuzz.toml")) {
        crate::settings::merge_layer(&mut tree, layer);
        let s: crate::settings::Settings = serde_json::from_value(tree)
            .unwrap_or_else(|e| panic!("an accepted file does not make settings: {e}"));
        let _ = s.validate();
    }
}

/// A fuzz target: its name and its entry point.
pub type Target = (&'static str, fn(&[u8]));

/// Every target by name, for the corpus replay and the harness.
pub const TARGETS: [Target; 5] = [
    ("onnx", onnx),
    ("nudenet", nudenet),
    ("detectors", detectors),
    ("face_map", face_map),
    ("settings", settings),
];

#[cfg(test)]
mod tests {
    /// The committed corpus (and inputs that once crashed) replayed.
    #[test]
    fn the_fuzz_corpus_replays_cleanly() {
        camshow_test_utils::replay_fuzz_corpus(&super::TARGETS);
    }
}
