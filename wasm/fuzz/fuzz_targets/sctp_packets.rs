//! Any SCTP packets at our data channels, as the session hands them over from DTLS: raw bytes
//! (most fail the checksum), and chunks sealed into packets with our ports, the verification
//! tag we expect and a correct CRC32c, so they reach `rtc-sctp` — before any handshake, or after
//! one with a real viewer-side endpoint whose channel is open. Our own calls (open, send,
//! close), time and timers, and traffic with that endpoint in between. Nothing may panic, what
//! received data costs stays within its bound, and timers never point to the past.
//!
//! Input: one byte (bit 0: handshake first; bit 1: we are the DTLS client, so we send the INIT
//! and the viewer's side answers it), then `[op][len][bytes]`….
#![no_main]
use kvs_media_core::data::{
    checksum, DataChannels, Reliability, INBOUND_BUDGET, INBOUND_RESERVE, MAX_MESSAGE_SIZE, SCTP_PORT,
};
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, Instant};

/// `chunks` in a packet from the viewer: our ports, `vtag`, the checksum.
fn seal(vtag: u32, chunks: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(12 + chunks.len());
    p.extend_from_slice(&SCTP_PORT.to_be_bytes());
    p.extend_from_slice(&SCTP_PORT.to_be_bytes());
    p.extend_from_slice(&vtag.to_be_bytes());
    p.extend_from_slice(&[0; 4]);
    p.extend_from_slice(chunks);
    let crc = checksum(&p);
    p[8..12].copy_from_slice(&crc.to_le_bytes());
    p
}

/// Carry packets both ways until none is left; the verification tag the viewer's side uses.
fn exchange(now: Instant, ours: &mut DataChannels, viewer: &mut DataChannels) -> Option<u32> {
    let mut vtag = None;
    for _ in 0..64 {
        let mut moved = false;
        while let Some(p) = viewer.poll_transmit() {
            if p.len() >= 8 && p[4..8] != [0; 4] {
                vtag = Some(u32::from_be_bytes([p[4], p[5], p[6], p[7]]));
            }
            ours.handle_sctp(now, &p);
            moved = true;
        }
        while let Some(p) = ours.poll_transmit() {
            viewer.handle_sctp(now, &p);
            moved = true;
        }
        if !moved {
            break;
        }
    }
    vtag
}

fuzz_target!(|input: &[u8]| {
    let t0 = Instant::now();
    let mut now = t0;
    let client = input.first().is_some_and(|b| b & 2 == 2);
    let mut ours = if client {
        DataChannels::new_client(t0, SCTP_PORT, SCTP_PORT, 65_536)
    } else {
        DataChannels::new(t0, SCTP_PORT, SCTP_PORT, 65_536)
    };
    let mut viewer = None;
    let mut vtag = 0;
    if input.first().is_some_and(|b| b & 1 == 1) {
        let mut v = if client {
            DataChannels::new(t0, SCTP_PORT, SCTP_PORT, MAX_MESSAGE_SIZE)
        } else {
            DataChannels::new_client(t0, SCTP_PORT, SCTP_PORT, MAX_MESSAGE_SIZE)
        };
        vtag = exchange(now, &mut ours, &mut v).unwrap_or(0);
        let _ = v.open(now, "kvsDataChannel", "", true, Reliability::Reliable);
        exchange(now, &mut ours, &mut v);
        viewer = Some(v);
    }
    let mut i = 1;
    while i + 2 <= input.len() {
        let (op, len) = (input[i], input[i + 1] as usize);
        let bytes = &input[(i + 2).min(input.len())..(i + 2 + len).min(input.len())];
        i += 2 + len;
        let arg = |k: usize| bytes.get(k).copied().unwrap_or(0);
        match op % 8 {
            0 => ours.handle_sctp(now, bytes),
            1 => ours.handle_sctp(now, &seal(vtag, bytes)),
            2 => ours.handle_sctp(now, &seal(0, bytes)),
            3 => {
                now += Duration::from_millis(u64::from(arg(0)) * 20);
                ours.handle_timeout(now);
                if let Some(v) = viewer.as_mut() {
                    v.handle_timeout(now);
                }
            }
            4 => {
                let reliability = match arg(0) % 3 {
                    0 => Reliability::Reliable,
                    1 => Reliability::MaxRetransmits(arg(1).into()),
                    _ => Reliability::MaxLifetimeMs(arg(1).into()),
                };
                let _ = ours.open(now, "c", "", arg(0) & 4 == 0, reliability);
            }
            5 => {
                // Large messages from a small input: the bytes repeated.
                let n = usize::from(arg(0)) * usize::from(arg(1)) * 8;
                let message: Vec<u8> = bytes.iter().copied().cycle().take(n).collect();
                let _ = ours.send(now, u16::from(arg(2) % 8), arg(3) & 1 == 1, &message);
            }
            6 => ours.close(now, u16::from(arg(0) % 8)),
            _ => {
                if let Some(v) = viewer.as_mut() {
                    if let Some(t) = exchange(now, &mut ours, v) {
                        vtag = t;
                    }
                }
            }
        }
        assert!(ours.held_bytes() <= INBOUND_BUDGET + INBOUND_RESERVE);
        if let Some(t) = ours.poll_timeout() {
            assert!(t + Duration::from_secs(3600) > now, "a timer far in the past");
        }
        while ours.poll_event().is_some() {}
        if viewer.is_none() {
            while ours.poll_transmit().is_some() {}
        }
    }
});
