#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| camshow_media::fuzz::mp4(data));
