//! Any text as a trickled candidate line: parsed or refused with a reason, never a panic; what is
//! accepted is a UDP IPv4 address with a port.
#![no_main]
use kvs_media_core::ice::{parse_candidate, CandidateError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match parse_candidate(text) {
        Ok(c) => {
            assert!(c.addr.is_ipv4());
            assert_ne!(c.addr.port(), 0);
        }
        Err(CandidateError::Ignored(why)) | Err(CandidateError::Malformed(why)) => assert!(!why.is_empty()),
    }
});
