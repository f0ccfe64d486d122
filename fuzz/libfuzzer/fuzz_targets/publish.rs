//! libFuzzer entry point of target `publish` (see tickcast_fuzz::targets::publish).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| (tickcast_fuzz::targets::publish::TARGET.run)(data));
