//! Any bytes at a session, as the network would deliver them: datagrams from viewers (STUN
//! checks and answers, DTLS, RTCP, junk) from several addresses, valid nominating checks from
//! some of them (so states after nomination are reached), from the TURN server (allocate
//! answers, Data indications, ChannelData) and chunks of a TURN stream. Nothing may panic; time
//! moves on and timers run between inputs; the pair media goes to moves only on a nomination
//! that authenticates, to where it came from.
#![no_main]
use kvs_media_core::ice::{viewer_check, Base};
use kvs_media_core::session::{self, Session, SessionConfig, TurnTransport, NO_ADDR, UDP};
use libfuzzer_sys::fuzz_target;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn provider() -> &'static dyn kvs_media_core::session::CryptoProvider {
    static P: OnceLock<std::sync::Arc<dyn kvs_media_core::session::CryptoProvider>> = OnceLock::new();
    P.get_or_init(|| kvs_media_core::session::crypto_provider().unwrap()).as_ref()
}

fn pem() -> &'static str {
    static PEM: OnceLock<String> = OnceLock::new();
    PEM.get_or_init(|| session::certificate_to_pem(&session::generate_certificate().unwrap()).unwrap())
}

fuzz_target!(|data: &[u8]| {
    let config = SessionConfig {
        certificate: session::certificate_from_pem(pem()).unwrap(),
        local_ufrag: "srv".into(),
        local_pwd: "serverpassword0123456789".into(),
        remote_ufrag: "cli".into(),
        remote_pwd: "clientpassword0123456789".into(),
        remote_fingerprint: vec![0xab; 32],
        ssrc: 1,
        payload_type: 102,
        audio_out: Some((2, 111)),
        audio_in_pt: Some(111),
        sctp: Some((5000, 65_536)),
        host_allowed: data.first().is_some_and(|b| b & 1 == 0),
        host_addr: Some("127.0.0.1:6000".parse().unwrap()),
        allow_aes_gcm: true,
        connect_timeout: None,
        twcc_ext: Some(3),
        start_bps: None,
        // Bit 1: we are the DTLS client (our ClientHello goes out at the nomination).
        dtls_client: data.first().is_some_and(|b| b & 2 == 2),
        playout_ext: None,
    };
    let t0 = Instant::now();
    let mut s = Session::new(config, t0).unwrap();
    let turn_udp: SocketAddr = "127.0.0.1:3478".parse().unwrap();
    let turn_tcp: SocketAddr = "127.0.0.1:3479".parse().unwrap();
    s.add_turn_server(t0, "turn:udp", TurnTransport::Udp, UDP, turn_udp, "u", "p", None).unwrap();
    s.add_turn_server(t0, "turn:tcp", TurnTransport::Stream, 1, turn_tcp, "u", "p", None).unwrap();
    s.add_stun_server(t0, "127.0.0.1:3480".parse().unwrap());
    let _ = s.add_remote_candidate(t0, "candidate:1 1 udp 2122260223 127.0.0.1 5000 typ host");
    let viewer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
    // Input: [selector][len][bytes]… ; the selector picks the source.
    let mut i = 1;
    let mut now = t0;
    while i + 2 <= data.len() {
        let (sel, len) = (data[i], data[i + 1] as usize);
        let chunk = &data[(i + 2).min(data.len())..(i + 2 + len).min(data.len())];
        i += 2 + len;
        now += Duration::from_millis(sel as u64 * 10);
        // Viewers' addresses: the trickled one, another port, a stranger.
        let from: SocketAddr = match sel / 8 % 3 {
            0 => viewer,
            1 => "127.0.0.1:5001".parse().unwrap(),
            _ => "127.0.0.1:5999".parse().unwrap(),
        };
        let before = s.selected();
        let mut nominated = false;
        match sel % 8 {
            0 | 5 => s.handle_datagram(now, UDP, from, chunk),
            1 => s.handle_datagram(now, UDP, turn_udp, chunk),
            2 => s.handle_datagram(now, 1, NO_ADDR, chunk),
            3 => s.handle_datagram(now, UDP, "127.0.0.1:3480".parse().unwrap(), chunk),
            6 => {
                // A check with the right credentials, nominating when the chunk says so.
                nominated = chunk.first().is_some_and(|b| b & 1 == 1);
                let check = viewer_check(provider(), "srv:cli", "serverpassword0123456789", nominated);
                s.handle_datagram(now, UDP, from, &check);
            }
            _ => {
                s.handle_timeout(now);
                let _ = s.write_frame(now, chunk, now.duration_since(t0).as_millis() as u32 * 90);
            }
        }
        let after = s.selected();
        if after != before {
            assert!(nominated, "the selected pair moved without an authenticated nomination");
            assert_eq!(after, Some((Base::Host, from)), "it moved elsewhere than the nominating address");
        }
        while s.poll_transmit().is_some() {}
        while s.poll_event().is_some() {}
        let _ = s.poll_timeout();
    }
});
