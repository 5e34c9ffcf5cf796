//! Any text as the fleet config: parsed or refused with the key named, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Err(e) = fleet_shared::config::FleetConfig::parse(text) {
            assert!(!e.to_string().is_empty());
        }
    }
});
