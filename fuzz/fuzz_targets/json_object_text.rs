//! `json_object_text`: see `llmgate::fuzzing::run` and docs/fuzzing.md.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    llmgate::fuzzing::run("json_object_text", data);
});
