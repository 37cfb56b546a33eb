//! Fuzzes the `.properties` lexer and the agent grammar: neither may panic on any input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (entries, _) = flumen_config::parse_properties(&text);
    let _ = flumen_config::load_agent(&entries, "a1", &|_| None);
});
