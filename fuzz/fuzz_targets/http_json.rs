//! Fuzzes the `http` source's request decoding: the JSONHandler (JSON array and ndjson, every
//! charset), the blob handlers' query parsing and the bounded gzip decoder. None may panic,
//! and none may produce more events than the limit it was given.
#![no_main]

use bytes::Bytes;
use flumen::components::sources::http::config::HandlerKind;
use flumen::components::sources::http::{gunzip, to_events};
use libfuzzer_sys::fuzz_target;

const CONTENT_TYPES: [Option<&str>; 6] = [
    None,
    Some("application/json"),
    Some("application/json; charset=UTF-16"),
    Some("application/json; charset=utf-32"),
    Some("application/x-ndjson"),
    Some("application/x-ndjson; charset=UTF-16"),
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let body = Bytes::copy_from_slice(rest);
    let content_type = CONTENT_TYPES[usize::from(selector) % CONTENT_TYPES.len()];
    let max = 1 + usize::from(selector >> 4);
    if let Ok(events) = to_events(&HandlerKind::Json, body.clone(), content_type, None, max) {
        assert!(events.len() <= max);
    }
    let query = std::str::from_utf8(rest).ok();
    let _ = to_events(
        &HandlerKind::CoreBlob {
            mandatory: vec!["a".into()],
        },
        body.clone(),
        content_type,
        query,
        1,
    );
    if let Ok(out) = gunzip(rest, 1 << 16) {
        assert!(out.len() <= 1 << 16);
    }
});
