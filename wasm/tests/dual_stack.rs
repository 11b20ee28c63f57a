//! A session with an IPv4 and an IPv6 host socket, through its public interface: IPv6 candidates
//! are used and checked from the host socket (the record carries the IPv6 destination, from which
//! the host picks its IPv6 socket), a STUN server at an IPv6 address yields an IPv6
//! server-reflexive candidate related to the IPv6 socket, a TURN server at an IPv6 address is
//! asked for an allocation, a viewer nominating over IPv6 gets the pair; a session without an
//! IPv6 socket refuses IPv6 candidates and says why.
use kvs_media_core::ice::{self, Base, CandidateError};
use kvs_media_core::session::{self, Session, SessionConfig, SessionEvent, TurnTransport, UDP};
use rtc_stun::message::{Message, Setter, BINDING_SUCCESS};
use rtc_stun::xoraddr::XorMappedAddress;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn session(now: Instant) -> Session {
    let config = SessionConfig {
        certificate: session::generate_certificate().unwrap(),
        local_ufrag: "srv".into(),
        local_pwd: "serverpassword0123456789".into(),
        remote_ufrag: "cli".into(),
        remote_pwd: "clientpassword0123456789".into(),
        remote_fingerprint: vec![0xab; 32],
        ssrc: 1,
        payload_type: 102,
        audio_out: None,
        audio_in_pt: None,
        sctp: None,
        host_allowed: true,
        host_addr: Some("127.0.0.1:6000".parse().unwrap()),
        allow_aes_gcm: false,
        connect_timeout: None,
        twcc_ext: None,
        start_bps: None,
        dtls_client: false,
        playout_ext: None,
    };
    Session::new(config, now).unwrap()
}

fn datagrams(s: &mut Session) -> Vec<(u32, SocketAddr, Vec<u8>)> {
    std::iter::from_fn(|| s.out.pop_datagram()).collect()
}

#[test]
fn ipv6_candidates_are_checked_from_the_host_socket_and_nominated() {
    let t0 = Instant::now();
    let mut s = session(t0);
    s.set_host_ipv6("[::1]:6001".parse().unwrap());
    let viewer: SocketAddr = "[::1]:5000".parse().unwrap();
    s.add_remote_candidate(t0, "candidate:1 1 udp 2122262783 ::1 5000 typ host generation 0").unwrap();
    s.handle_timeout(t0 + Duration::from_millis(1));
    let out = datagrams(&mut s);
    assert!(!out.is_empty(), "a check to the IPv6 candidate");
    for (via, to, _) in &out {
        assert_eq!((*via, *to), (UDP, viewer), "checks leave on the host socket to the IPv6 address");
    }
    // The viewer checks from there and nominates: the pair is IPv6 on the host socket.
    let provider = session::crypto_provider().unwrap();
    let check = ice::viewer_check(provider.as_ref(), "srv:cli", "serverpassword0123456789", true);
    s.handle_datagram(t0 + Duration::from_millis(2), UDP, viewer, &check);
    let answers = datagrams(&mut s);
    assert!(answers.iter().all(|(via, to, _)| (*via, *to) == (UDP, viewer)));
    assert_eq!(s.selected(), Some((Base::Host, viewer)));
    let events: Vec<SessionEvent> = std::iter::from_fn(|| s.poll_event()).collect();
    assert!(events.contains(&SessionEvent::IceConnected("host -> host [::1]:5000".into())), "{events:?}");
}

#[test]
fn a_stun_server_at_an_ipv6_address_gives_an_ipv6_srflx_candidate() {
    let t0 = Instant::now();
    let mut s = session(t0);
    s.set_host_ipv6("[::1]:6001".parse().unwrap());
    let server: SocketAddr = "[::1]:3478".parse().unwrap();
    s.add_stun_server(t0, server);
    let out = datagrams(&mut s);
    assert_eq!(out.len(), 1);
    let (via, to, request) = &out[0];
    assert_eq!((*via, *to), (UDP, server), "the probe leaves on the host socket to the IPv6 server");
    // The server saw us at a (translated) public IPv6 address.
    let mut req = Message::new();
    req.raw = request.clone();
    req.decode().unwrap();
    let mapped: SocketAddr = "[2001:db8::7]:41000".parse().unwrap();
    let mut response = Message::new();
    response
        .build(&[
            Box::new(req) as Box<dyn Setter>,
            Box::new(BINDING_SUCCESS),
            Box::new(XorMappedAddress { ip: mapped.ip(), port: mapped.port() }),
        ])
        .unwrap();
    s.handle_datagram(t0, UDP, server, &response.raw);
    let events: Vec<SessionEvent> = std::iter::from_fn(|| s.poll_event()).collect();
    assert_eq!(
        events,
        vec![SessionEvent::LocalCandidate(format!(
            "candidate:2 1 udp {} 2001:db8::7 41000 typ srflx raddr ::1 rport 6001 generation 0",
            ice::candidate_priority(100, 65535)
        ))]
    );
}

#[test]
fn a_session_without_an_ipv6_socket_refuses_ipv6_candidates_with_the_reason() {
    let t0 = Instant::now();
    let mut s = session(t0);
    match s.add_remote_candidate(t0, "candidate:1 1 udp 2122262783 2001:db8::7 5000 typ host") {
        Err(CandidateError::Ignored(why)) => assert!(why.contains("no IPv6 socket"), "{why}"),
        other => panic!("{other:?}"),
    }
    // IPv4 candidates are used as before.
    s.add_remote_candidate(t0, "candidate:2 1 udp 2122260223 127.0.0.1 5000 typ host").unwrap();
    s.handle_timeout(t0 + Duration::from_millis(1));
    let out = datagrams(&mut s);
    assert!(!out.is_empty() && out.iter().all(|(_, to, _)| to.is_ipv4()), "{out:?}");
}

#[test]
fn a_turn_server_at_an_ipv6_address_is_asked_for_an_allocation() {
    let t0 = Instant::now();
    let mut s = session(t0);
    s.set_host_ipv6("[::1]:6001".parse().unwrap());
    let server: SocketAddr = "[::1]:3478".parse().unwrap();
    s.add_turn_server(t0, "turn:[::1]:3478", TurnTransport::Udp, UDP, server, "u", "p", None).unwrap();
    s.add_turn_server(t0, "turn:[::1]:3478?transport=tcp", TurnTransport::Stream, 1, server, "u", "p", None).unwrap();
    let out = datagrams(&mut s);
    let routes: Vec<(u32, SocketAddr)> = out.iter().map(|(via, to, _)| (*via, *to)).collect();
    assert_eq!(routes, vec![(UDP, server), (1, server)], "an Allocate request on each transport");
    for (_, _, request) in &out {
        let mut m = Message::new();
        m.raw = request.clone();
        m.decode().unwrap();
        assert_eq!(m.typ.method, rtc_stun::message::METHOD_ALLOCATE);
    }
}
