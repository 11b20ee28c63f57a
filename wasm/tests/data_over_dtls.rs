//! Data channels carried the way a session carries them: each SCTP packet written as one DTLS
//! application-data record (`Endpoint::write`), each record read back
//! (`EndpointEvent::ApplicationData`) handed to the other side's `DataChannels` — a DTLS 1.2
//! server (us) and client (the viewer), both `rtc-dtls`.
use bytes::BytesMut;
use kvs_media_core::data::{DataChannels, DataEvent, Reliability, MAX_MESSAGE_SIZE, SCTP_PORT};
use kvs_media_core::session;
use rtc_dtls::config::{ClientAuthType, ConfigBuilder, ExtendedMasterSecretType};
use rtc_dtls::endpoint::{Endpoint, EndpointEvent};
use rtc_dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc_shared::TransportProtocol;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

struct Side {
    dtls: Endpoint,
    peer: SocketAddr,
    data: Option<DataChannels>,
    events: Vec<DataEvent>,
    connected: bool,
}

/// Move every DTLS datagram `from` has to `to`, and what it decrypts into `to`'s data channels.
fn carry(now: Instant, from: &mut Side, to: &mut Side) -> bool {
    let mut moved = false;
    if let Some(d) = from.data.as_mut() {
        while let Some(p) = d.poll_transmit() {
            from.dtls.write(now, from.peer, &p).expect("DTLS write");
        }
    }
    while let Some(t) = from.dtls.poll_transmit() {
        moved = true;
        for e in to.dtls.read(now, to.peer, None, BytesMut::from(&t.message[..])).expect("DTLS read") {
            match e {
                EndpointEvent::HandshakeComplete => to.connected = true,
                EndpointEvent::ApplicationData(packet) => {
                    to.data.as_mut().expect("data channels").handle_sctp(now, &packet);
                }
                _ => {}
            }
        }
    }
    if let Some(d) = to.data.as_mut() {
        to.events.extend(std::iter::from_fn(|| d.poll_event()));
    }
    moved
}

#[test]
fn the_viewers_channel_over_dtls() {
    let provider = rtc_dtls::crypto_provider::default_provider().unwrap();
    let now = Instant::now();
    let server_addr: SocketAddr = "10.0.0.1:5000".parse().unwrap();
    let client_addr: SocketAddr = "10.0.0.2:5000".parse().unwrap();
    let config = |cert, server| {
        let b = ConfigBuilder::default()
            .with_crypto_provider(provider.clone())
            .with_certificates(vec![cert])
            .with_srtp_protection_profiles(vec![SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80])
            .with_extended_master_secret(ExtendedMasterSecretType::Require)
            .with_insecure_skip_verify(true);
        if server {
            b.with_client_auth(ClientAuthType::RequireAnyClientCert).build(false, None)
        } else {
            b.build(true, Some(server_addr))
        }
        .unwrap()
    };
    let server_config = Arc::new(config(session::generate_certificate().unwrap(), true));
    let mut ours = Side {
        dtls: Endpoint::new(server_addr, TransportProtocol::UDP, Some(server_config)),
        peer: client_addr,
        data: None,
        events: Vec::new(),
        connected: false,
    };
    let mut viewer = Side {
        dtls: Endpoint::new(client_addr, TransportProtocol::UDP, None),
        peer: server_addr,
        data: None,
        events: Vec::new(),
        connected: false,
    };
    let client_config = Arc::new(config(session::generate_certificate().unwrap(), false));
    viewer.dtls.connect(now, server_addr, client_config, None).unwrap();
    let mut channel = None;
    for _ in 0..100 {
        let moved = carry(now, &mut viewer, &mut ours) | carry(now, &mut ours, &mut viewer);
        // Once DTLS is up on a side, its data channels start (the viewer sends the INIT).
        if ours.connected && ours.data.is_none() {
            ours.data = Some(DataChannels::new(now, SCTP_PORT, SCTP_PORT, MAX_MESSAGE_SIZE));
        }
        if viewer.connected && viewer.data.is_none() {
            let mut d = DataChannels::new_client(now, SCTP_PORT, SCTP_PORT, MAX_MESSAGE_SIZE);
            channel = Some(d.open(now, "kvsDataChannel", "", true, Reliability::Reliable).unwrap());
            viewer.data = Some(d);
        }
        if !moved && !ours.events.is_empty() {
            break;
        }
    }
    let id = channel.expect("the viewer opened its channel");
    assert_eq!(
        ours.events,
        vec![DataEvent::Opened {
            id,
            label: "kvsDataChannel".into(),
            protocol: "".into(),
            ordered: true,
            reliability: Reliability::Reliable,
        }]
    );
    // A message each way, one of them 64 KB (fragmented over many DTLS records).
    let big: Vec<u8> = (0..65_536u32).map(|i| (i % 251) as u8).collect();
    ours.data.as_mut().unwrap().send(now, id, true, &big).unwrap();
    viewer.data.as_mut().unwrap().send(now, id, false, b"hello master").unwrap();
    for _ in 0..200 {
        if !(carry(now, &mut viewer, &mut ours) | carry(now, &mut ours, &mut viewer)) {
            break;
        }
    }
    assert!(ours.events.contains(&DataEvent::Message { id, binary: false, data: b"hello master".to_vec() }));
    assert!(viewer.events.contains(&DataEvent::Message { id, binary: true, data: big }));
}
