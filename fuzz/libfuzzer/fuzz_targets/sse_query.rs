//! libFuzzer entry point of target `sse_query` (see tickcast_fuzz::targets::sse_query).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| (tickcast_fuzz::targets::sse_query::TARGET.run)(data));
