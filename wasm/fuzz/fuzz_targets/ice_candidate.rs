//! Any text as a trickled candidate line: parsed or refused with a reason, never a panic; what is
//! accepted is a UDP address with a port: IPv4, or IPv6 neither link-local nor IPv4-mapped.
#![no_main]
use kvs_media_core::ice::{parse_candidate, CandidateError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    match parse_candidate(text) {
        Ok(c) => {
            if let std::net::IpAddr::V6(v6) = c.addr.ip() {
                assert_ne!(v6.segments()[0] & 0xffc0, 0xfe80, "link-local");
                assert!(v6.to_ipv4_mapped().is_none(), "IPv4-mapped");
            }
            assert_ne!(c.addr.port(), 0);
        }
        Err(CandidateError::Ignored(why)) | Err(CandidateError::Malformed(why)) => assert!(!why.is_empty()),
    }
});
