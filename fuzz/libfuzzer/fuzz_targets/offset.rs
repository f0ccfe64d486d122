//! libFuzzer entry point of target `offset` (see tickcast_fuzz::targets::offset).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| (tickcast_fuzz::targets::offset::TARGET.run)(data));
