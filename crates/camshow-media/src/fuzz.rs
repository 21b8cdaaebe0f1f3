//! Entry points for the fuzz harness (`fuzz/`, `scripts/fuzz.sh`) and the
//! replay of its corpus in the tests: arbitrary bytes must never panic,
//! hang or allocate without bound. Built with the `fuzzing` feature (which
//! no shipped binary enables) or in tests.

/// The MP4 re-timer: any file, with as many timestamps as it has samples
/// (and, from the input's first byte, a wrong count); a re-timed file keeps
/// its sample count.
pub fn mp4(data: &[u8]) {
    let Some((&first, file)) = data.split_first() else {
        return;
    };
    let Ok(samples) = crate::mp4::sample_count(file) else {
        let _ = crate::mp4::retime(file, &[0.0, 0.04]);
        return;
    };
    let n = (samples as usize).min(1 << 16);
    let n = if first % 8 == 0 { n + 1 } else { n };
    let step = f64::from(first % 16 + 1) / 100.0;
    let times: Vec<f64> = (0..n)
        .map(|i| {
            i as f64
                * step
                * if first % 5 == 0 {
                    0.5 + (i % 3) as f64
                } else {
                    1.0
                }
        })
        .collect();
    if let Ok(out) = crate::mp4::retime(file, &times) {
        assert_eq!(
            crate::mp4::sample_count(&out).ok(),
            Some(samples),
            "re-timing changed the sample count"
        );
    }
}

/// The MJPEG server's request reader: any request head gets a route.
pub fn mjpeg_request(data: &[u8]) {
    let _ = crate::live::sinks::route(data);
}

/// A fuzz target: its name and its entry point.
pub type Target = (&'static str, fn(&[u8]));

/// Every target by name, for the corpus replay and the harness.
pub const TARGETS: [Target; 2] = [("mp4", mp4), ("mjpeg_request", mjpeg_request)];

#[cfg(test)]
mod tests {
    /// The committed corpus (and inputs that once crashed) replayed.
    #[test]
    fn the_fuzz_corpus_replays_cleanly() {
        camshow_test_utils::replay_fuzz_corpus(&super::TARGETS);
    }
}
