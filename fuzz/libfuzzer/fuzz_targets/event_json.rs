//! libFuzzer entry point of target `event_json` (see tickcast_fuzz::targets::event_json).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| (tickcast_fuzz::targets::event_json::TARGET.run)(data));
