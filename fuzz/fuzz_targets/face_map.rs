#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| camshow_core::fuzz::face_map(data));
