#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| camshow_core::fuzz::onnx(data));
