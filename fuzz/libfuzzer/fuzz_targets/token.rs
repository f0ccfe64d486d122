//! libFuzzer entry point of target `token` (see tickcast_fuzz::targets::token).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| (tickcast_fuzz::targets::token::TARGET.run)(data));
