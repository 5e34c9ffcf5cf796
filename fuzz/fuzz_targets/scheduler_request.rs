//! Any bytes that are JSON, through the decode step: an error or a request, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(event) = serde_json::from_slice::<serde_json::Value>(data) {
        let decode = cluster_scheduler::request::parse;
        if let Err(e) = decode(&event) {
            assert!(!e.to_string().is_empty());
        }
    }
});
