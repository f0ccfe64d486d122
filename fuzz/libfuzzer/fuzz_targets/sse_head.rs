//! libFuzzer entry point of target `sse_head` (see tickcast_fuzz::targets::sse_head).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| (tickcast_fuzz::targets::sse_head::TARGET.run)(data));
