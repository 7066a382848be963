//! `request_responses`: see `llmgate::fuzzing::run` and docs/fuzzing.md.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    llmgate::fuzzing::run("request_responses", data);
});
