//! libFuzzer entry point of target `envelope` (see tickcast_fuzz::targets::envelope).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| (tickcast_fuzz::targets::envelope::TARGET.run)(data));
