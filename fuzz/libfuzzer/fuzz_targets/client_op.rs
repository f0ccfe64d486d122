//! libFuzzer entry point of target `client_op` (see tickcast_fuzz::targets::client_op).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| (tickcast_fuzz::targets::client_op::TARGET.run)(data));
