//! Any bytes as an access unit: the Annex-B splitter and the packetizer must never panic, every
//! payload must respect the size limit, and the NAL units must come back from the payloads.
#![no_main]
use kvs_media_core::h264::{sendable, split_annexb, Packetizer};
use kvs_media_core::sender::{Profile, Sender};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limit = 64 + (data.first().copied().unwrap_or(0) as usize) * 4;
    let mut p = Packetizer::new(limit);
    let mut payloads: Vec<Vec<u8>> = Vec::new();
    let mut markers = 0;
    if let Ok(n) = p.packetize(data, |pl| {
        let bytes = pl.parts.concat();
        assert!(bytes.len() <= limit, "payload over the limit");
        if pl.marker {
            markers += 1;
        }
        payloads.push(bytes);
    }) {
        assert_eq!(n, payloads.len());
        assert_eq!(markers, 1, "exactly one marker per access unit");
        // Rebuild the NAL units from STAP-A / FU-A / single payloads.
        let mut rebuilt: Vec<Vec<u8>> = Vec::new();
        let mut fu: Option<Vec<u8>> = None;
        for pl in &payloads {
            match pl[0] & 0x1f {
                24 => {
                    let mut i = 1;
                    while i + 2 <= pl.len() {
                        let len = u16::from_be_bytes([pl[i], pl[i + 1]]) as usize;
                        rebuilt.push(pl[i + 2..i + 2 + len].to_vec());
                        i += 2 + len;
                    }
                }
                28 => {
                    if pl[1] & 0x80 != 0 {
                        fu = Some(vec![(pl[0] & 0xe0) | (pl[1] & 0x1f)]);
                    }
                    fu.as_mut().expect("FU-A start first").extend_from_slice(&pl[2..]);
                    if pl[1] & 0x40 != 0 {
                        rebuilt.push(fu.take().unwrap());
                    }
                }
                _ => rebuilt.push(pl.clone()),
            }
        }
        let expected: Vec<Vec<u8>> = split_annexb(data)
            .into_iter()
            .filter(|n| sendable(n))
            .map(|n| n.to_vec())
            .collect();
        assert_eq!(rebuilt, expected);
    }
    // The whole hot path (with SRTP) never panics either.
    let mut s = Sender::new(Profile::AesCm128HmacSha1_80, &[1; 16], &[2; 14], 1, 96, 0, 1200).unwrap();
    let _ = s.write_frame(data, 0);
});
