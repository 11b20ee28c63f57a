//! One viewer's media session, sans-IO: ICE (lite: we answer the browser's connectivity checks
//! and follow its nomination), DTLS 1.2 server with DTLS-SRTP key export, then the SRTP video
//! [`Sender`]. Datagrams and time in, datagrams and events out; no sockets or clocks.
//!
//! Not wired to the byte ABI yet: sessions still run their ICE and DTLS on the TypeScript side.

use crate::sender::{Profile, Sender};
use bytes::BytesMut;
use rtc_dtls::config::{ClientAuthType, ConfigBuilder, ExtendedMasterSecretType};
use rtc_dtls::crypto::Certificate;
use rtc_dtls::crypto_provider::RTCCryptoProvider;
use rtc_dtls::endpoint::{Endpoint, EndpointEvent};
use rtc_dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc_shared::TransportProtocol;
use rtc_stun::attributes::{ATTR_USERNAME, ATTR_USE_CANDIDATE};
use rtc_stun::fingerprint::FINGERPRINT;
use rtc_stun::integrity::MessageIntegrity;
use rtc_stun::message::{Message, Setter, BINDING_REQUEST, BINDING_SUCCESS};
use rtc_stun::textattrs::TextAttribute;
use rtc_stun::xoraddr::XorMappedAddress;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

/// The key of the one DTLS association (a reserved class-E address, never a real peer).
const DTLS_KEY: SocketAddr =
    SocketAddr::V4(std::net::SocketAddrV4::new(std::net::Ipv4Addr::new(240, 0, 0, 1), 9));

/// What a session reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// The viewer nominated this address (ICE connected).
    IceConnected(SocketAddr),
    /// DTLS finished; media can flow with this SRTP profile.
    DtlsConnected(Profile),
    /// The viewer asked for a keyframe (PLI or FIR).
    KeyframeRequest,
    /// The session ended.
    Closed(String),
}

/// Why a session could not be made.
#[derive(Debug)]
pub struct SessionError(pub String);

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// `sha-256 AB:CD:…` of a certificate's DER, the form of SDP's `a=fingerprint`.
pub fn fingerprint(certificate: &Certificate) -> Result<String, SessionError> {
    let provider = rtc_dtls::crypto_provider::default_provider()
        .map_err(|e| SessionError(format!("crypto provider: {e}")))?;
    let der = certificate.certificate.first().ok_or_else(|| SessionError("no certificate".into()))?;
    let digest = provider
        .crypto()
        .hash(rtc_dtls::crypto_provider::HashAlgorithm::Sha256, der.as_ref())
        .map_err(|e| SessionError(format!("hash: {e}")))?;
    let hex: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
    Ok(format!("sha-256 {}", hex.join(":")))
}

/// A new self-signed ECDSA P-256 certificate for DTLS.
pub fn generate_certificate() -> Result<Certificate, SessionError> {
    let provider = rtc_dtls::crypto_provider::default_provider()
        .map_err(|e| SessionError(format!("crypto provider: {e}")))?;
    Certificate::generate_self_signed(vec!["kvs-webrtc-master".to_owned()], provider.crypto())
        .map_err(|e| SessionError(format!("certificate: {e}")))
}

/// A viewer's session.
pub struct Session {
    local_ufrag: String,
    local_pwd: String,
    provider: Arc<dyn RTCCryptoProvider>,
    dtls: Endpoint,
    /// Set once DTLS started: the association is keyed by [`DTLS_KEY`], whatever address its
    /// packets come from, so a viewer moving to another candidate pair mid-handshake (another
    /// relay, another local address) keeps its one association.
    dtls_peer: Option<SocketAddr>,
    /// Where the latest DTLS packet came from: DTLS replies go back there.
    dtls_from: Option<SocketAddr>,
    selected: Option<SocketAddr>,
    sender: Option<Sender>,
    /// Decrypts the viewer's SRTCP (its DTLS-SRTP keys).
    srtcp: Option<rtc_srtp::context::Context>,
    /// NACK and PLI/FIR feedback received, packets resent.
    pub nacks: u64,
    pub keyframe_requests: u64,
    pub retransmitted: u64,
    ssrc: u32,
    payload_type: u8,
    transmits: VecDeque<(SocketAddr, Vec<u8>)>,
    events: VecDeque<SessionEvent>,
    /// STUN/DTLS/other datagrams that were not understood (counted, never fatal).
    pub ignored: u64,
}

impl Session {
    /// A session answering checks for `local_ufrag`/`local_pwd` and serving DTLS with
    /// `certificate`; media goes out with `ssrc` and `payload_type`.
    pub fn new(
        certificate: Certificate,
        local_ufrag: &str,
        local_pwd: &str,
        ssrc: u32,
        payload_type: u8,
    ) -> Result<Session, SessionError> {
        let provider = rtc_dtls::crypto_provider::default_provider()
            .map_err(|e| SessionError(format!("crypto provider: {e}")))?;
        let config = ConfigBuilder::default()
            .with_crypto_provider(provider.clone())
            .with_certificates(vec![certificate])
            .with_srtp_protection_profiles(vec![
                SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm,
                SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80,
            ])
            .with_extended_master_secret(ExtendedMasterSecretType::Require)
            .with_client_auth(ClientAuthType::RequireAnyClientCert)
            // The peer's self-signed certificate is checked against the SDP fingerprint.
            .with_insecure_skip_verify(true)
            .build(false, None)
            .map_err(|e| SessionError(format!("DTLS configuration: {e}")))?;
        let local: SocketAddr = "0.0.0.0:0".parse().unwrap();
        Ok(Session {
            local_ufrag: local_ufrag.to_owned(),
            local_pwd: local_pwd.to_owned(),
            provider,
            dtls: Endpoint::new(local, TransportProtocol::UDP, Some(Arc::new(config))),
            dtls_peer: None,
            dtls_from: None,
            selected: None,
            sender: None,
            srtcp: None,
            nacks: 0,
            keyframe_requests: 0,
            retransmitted: 0,
            ssrc,
            payload_type,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            ignored: 0,
        })
    }

    /// The address the viewer nominated, once it has.
    pub fn selected(&self) -> Option<SocketAddr> {
        self.selected
    }

    /// Feed one datagram received from `from`.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        match data.first() {
            Some(0..=3) => self.handle_stun(from, data),
            Some(20..=63) => self.handle_dtls(now, from, data),
            // RTCP from the viewer (RFC 5761: payload types 192–223 in the second byte).
            Some(128..=191) if data.len() > 1 && (192..=223).contains(&data[1]) => {
                self.handle_rtcp(data)
            }
            Some(128..=191) => self.ignored += 1,
            _ => self.ignored += 1,
        }
    }

    fn handle_stun(&mut self, from: SocketAddr, data: &[u8]) {
        let mut m = Message::new();
        m.raw = data.to_vec();
        if m.decode().is_err() || m.typ != BINDING_REQUEST {
            self.ignored += 1;
            return;
        }
        // USERNAME is "<our ufrag>:<their ufrag>"; MESSAGE-INTEGRITY uses our password.
        let ours = match TextAttribute::get_from_as(&m, ATTR_USERNAME) {
            Ok(u) => u.text.split(':').next() == Some(self.local_ufrag.as_str()),
            Err(_) => false,
        };
        let crypto = self.provider.crypto();
        if !ours || MessageIntegrity::check(&mut m, self.local_pwd.as_bytes(), crypto).is_err() {
            self.ignored += 1;
            return;
        }
        let mut response = Message::new();
        let built = response.build(&[
            Box::new(m.clone()) as Box<dyn Setter>,
            Box::new(BINDING_SUCCESS),
            Box::new(XorMappedAddress { ip: from.ip(), port: from.port() }),
            Box::new(MessageIntegrity::new_short_term_integrity_with_provider(
                self.local_pwd.clone(),
                crypto,
            )),
            Box::new(FINGERPRINT),
        ]);
        if built.is_err() {
            self.ignored += 1;
            return;
        }
        self.transmits.push_back((from, response.raw.clone()));
        if m.contains(ATTR_USE_CANDIDATE) && self.selected != Some(from) {
            self.selected = Some(from);
            self.events.push_back(SessionEvent::IceConnected(from));
        }
    }

    fn handle_dtls(&mut self, now: Instant, from: SocketAddr, data: &[u8]) {
        self.dtls_peer = Some(DTLS_KEY);
        self.dtls_from = Some(from);
        match self.dtls.read(now, DTLS_KEY, None, BytesMut::from(data)) {
            Ok(events) => {
                for e in events {
                    match e {
                        EndpointEvent::HandshakeComplete => self.start_srtp(DTLS_KEY),
                        EndpointEvent::PeerClosed => {
                            self.events.push_back(SessionEvent::Closed("DTLS close_notify".into()))
                        }
                        _ => {}
                    }
                }
            }
            Err(_) => self.ignored += 1,
        }
        self.drain_dtls();
    }

    fn handle_rtcp(&mut self, data: &[u8]) {
        let Some(srtcp) = self.srtcp.as_mut() else {
            self.ignored += 1;
            return;
        };
        let Ok(plain) = srtcp.decrypt_rtcp(data) else {
            self.ignored += 1;
            return;
        };
        let mut buf = &plain[..];
        let Ok(packets) = rtc_rtcp::packet::unmarshal(&mut buf) else {
            self.ignored += 1;
            return;
        };
        let mut lost: Vec<u16> = Vec::new();
        for p in &packets {
            let any = p.as_any();
            if let Some(nack) = any.downcast_ref::<rtc_rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack>() {
                self.nacks += 1;
                for pair in &nack.nacks {
                    lost.extend(pair.packet_list());
                }
            } else if any
                .downcast_ref::<rtc_rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication>()
                .is_some()
                || any
                    .downcast_ref::<rtc_rtcp::payload_feedbacks::full_intra_request::FullIntraRequest>()
                    .is_some()
            {
                self.keyframe_requests += 1;
                self.events.push_back(SessionEvent::KeyframeRequest);
            }
        }
        if lost.is_empty() {
            return;
        }
        let (Some(sender), Some(to)) = (self.sender.as_mut(), self.selected.or(self.dtls_from)) else {
            return;
        };
        let n = sender.retransmit(&lost);
        self.retransmitted += n as u64;
        queue_batch(&mut self.transmits, to, sender.output());
    }

    fn start_srtp(&mut self, peer: SocketAddr) {
        let Some(state) = self.dtls.get_connection_state(peer) else { return };
        let profile = match state.srtp_protection_profile() {
            SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80 => Profile::AesCm128HmacSha1_80,
            SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm => Profile::AeadAes128Gcm,
            other => {
                self.events.push_back(SessionEvent::Closed(format!("SRTP profile {other:?} unsupported")));
                return;
            }
        };
        let salt_len = if profile == Profile::AeadAes128Gcm { 12 } else { 14 };
        // client key | server key | client salt | server salt (RFC 5764 §4.2); we are the server.
        let Ok(material) = state.export_keying_material("EXTRACTOR-dtls_srtp", &[], 2 * (16 + salt_len)) else {
            self.events.push_back(SessionEvent::Closed("DTLS-SRTP key export failed".into()));
            return;
        };
        let m = material.as_ref();
        let key = &m[16..32];
        let salt = &m[32 + salt_len..32 + 2 * salt_len];
        // The viewer's own keys protect the RTCP it sends us.
        let srtp_profile = match profile {
            Profile::AesCm128HmacSha1_80 => rtc_srtp::protection_profile::ProtectionProfile::Aes128CmHmacSha1_80,
            Profile::AeadAes128Gcm => rtc_srtp::protection_profile::ProtectionProfile::AeadAes128Gcm,
        };
        self.srtcp = rtc_srtp::context::Context::new(
            &m[0..16],
            &m[32..32 + salt_len],
            srtp_profile,
            None,
            None,
            self.provider.crypto(),
        )
        .ok();
        match Sender::new(profile, key, salt, self.ssrc, self.payload_type, rand_u16(), 1200) {
            Ok(s) => {
                self.sender = Some(s);
                self.events.push_back(SessionEvent::DtlsConnected(profile));
            }
            Err(e) => self.events.push_back(SessionEvent::Closed(e.to_string())),
        }
    }

    fn drain_dtls(&mut self) {
        while let Some(t) = self.dtls.poll_transmit() {
            let to = self.dtls_from.or(self.selected).unwrap_or(t.transport.peer_addr);
            self.transmits.push_back((to, t.message.to_vec()));
        }
    }

    /// Drive DTLS retransmissions.
    pub fn handle_timeout(&mut self, now: Instant) {
        if let Some(peer) = self.dtls_peer {
            if self.dtls.handle_timeout(peer, now).is_err() {
                self.ignored += 1;
            }
            self.drain_dtls();
        }
    }

    /// When [`Session::handle_timeout`] wants to be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.dtls_peer.and_then(|p| self.dtls.poll_timeout(&p))
    }

    /// Send one access unit to the viewer (nothing before ICE and DTLS are up). Returns how many
    /// datagrams were queued.
    pub fn write_frame(&mut self, access_unit: &[u8], rtp_timestamp: u32) -> usize {
        let (Some(sender), Some(to)) = (self.sender.as_mut(), self.selected.or(self.dtls_from)) else {
            return 0;
        };
        let Ok(n) = sender.write_frame(access_unit, rtp_timestamp) else { return 0 };
        queue_batch(&mut self.transmits, to, sender.output());
        n
    }

    /// Next datagram to send, with its destination.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        self.transmits.pop_front()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }
}

/// Queue each datagram of a sender's batch (`[u32 LE length][datagram]…`) for `to`.
fn queue_batch(transmits: &mut VecDeque<(SocketAddr, Vec<u8>)>, to: SocketAddr, batch: &[u8]) {
    let mut off = 0;
    while off + 4 <= batch.len() {
        let len = u32::from_le_bytes(batch[off..off + 4].try_into().unwrap()) as usize;
        transmits.push_back((to, batch[off + 4..off + 4 + len].to_vec()));
        off += 4 + len;
    }
}

fn rand_u16() -> u16 {
    let mut b = [0u8; 2];
    // std has no RNG; the nanoseconds of the clock are enough for an initial sequence number.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    b.copy_from_slice(&(nanos as u16).to_le_bytes());
    u16::from_le_bytes(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc_srtp::context::Context;
    use rtc_srtp::protection_profile::ProtectionProfile;
    use rtc_stun::message::Getter;

    fn cert() -> Certificate {
        let provider = rtc_dtls::crypto_provider::default_provider().unwrap();
        Certificate::generate_self_signed(vec!["session".to_owned()], provider.crypto()).unwrap()
    }

    fn binding_request(provider: &dyn RTCCryptoProvider, user: &str, pwd: &str) -> Vec<u8> {
        let mut m = Message::new();
        let mut tid = rtc_stun::message::TransactionId::default();
        tid.0[0] = 7;
        m.build(&[
            Box::new(BINDING_REQUEST) as Box<dyn Setter>,
            Box::new(tid),
            Box::new(TextAttribute::new(ATTR_USERNAME, user.to_owned())),
            Box::new(rtc_stun::attributes::RawAttribute {
                typ: ATTR_USE_CANDIDATE,
                length: 0,
                value: vec![],
            }),
            Box::new(MessageIntegrity::new_short_term_integrity_with_provider(
                pwd.to_owned(),
                provider.crypto(),
            )),
            Box::new(FINGERPRINT),
        ])
        .unwrap();
        m.raw
    }

    #[test]
    fn answers_checks_with_our_password_and_follows_the_nomination() {
        let provider = rtc_dtls::crypto_provider::default_provider().unwrap();
        let mut s = Session::new(cert(), "srv", "serverpassword0123456789", 1, 96).unwrap();
        let viewer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let now = Instant::now();
        // Wrong password: ignored, no answer.
        s.handle_datagram(now, viewer, &binding_request(provider.as_ref(), "srv:cli", "wrong"));
        assert!(s.poll_transmit().is_none());
        // Right one: a success response with our integrity and the viewer's address.
        s.handle_datagram(now, viewer, &binding_request(provider.as_ref(), "srv:cli", "serverpassword0123456789"));
        let (to, raw) = s.poll_transmit().expect("response");
        assert_eq!(to, viewer);
        let mut r = Message::new();
        r.raw = raw;
        r.decode().unwrap();
        assert_eq!(r.typ, BINDING_SUCCESS);
        MessageIntegrity::check(&mut r, b"serverpassword0123456789", provider.crypto()).unwrap();
        let mut mapped = XorMappedAddress::default();
        mapped.get_from(&r).unwrap();
        assert_eq!(SocketAddr::new(mapped.ip, mapped.port), viewer);
        assert_eq!(s.poll_event(), Some(SessionEvent::IceConnected(viewer)));
        // Garbage is counted, never fatal.
        s.handle_datagram(now, viewer, &[0xff, 1, 2]);
        s.handle_datagram(now, viewer, &[22, 254, 253, 0, 0]);
        assert!(s.ignored >= 2);
    }

    #[test]
    fn dtls_handshake_gives_srtp_keys_the_viewer_can_decrypt_with() {
        let provider = rtc_dtls::crypto_provider::default_provider().unwrap();
        let mut s = Session::new(cert(), "srv", "serverpassword0123456789", 0xabc, 96).unwrap();
        let viewer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let server: SocketAddr = "127.0.0.1:6000".parse().unwrap();
        let now = Instant::now();
        s.handle_datagram(now, viewer, &binding_request(provider.as_ref(), "srv:cli", "serverpassword0123456789"));
        s.poll_transmit();
        // The viewer's DTLS client, as a browser would run it.
        let client_config = ConfigBuilder::default()
            .with_crypto_provider(provider.clone())
            .with_certificates(vec![cert()])
            .with_srtp_protection_profiles(vec![SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80])
            .with_extended_master_secret(ExtendedMasterSecretType::Require)
            .with_insecure_skip_verify(true)
            .build(true, Some(server))
            .unwrap();
        let mut client = Endpoint::new(viewer, TransportProtocol::UDP, None);
        client.connect(now, server, Arc::new(client_config), None).unwrap();
        let mut client_done = false;
        // Mid-handshake the viewer's packets start arriving from another address (another relay
        // or local interface): the one association carries on, replies follow the packets.
        let moved: SocketAddr = "127.0.0.1:5001".parse().unwrap();
        let mut sent = 0;
        for _ in 0..50 {
            let mut from = viewer;
            while let Some(t) = client.poll_transmit() {
                from = if sent >= 1 { moved } else { viewer };
                sent += 1;
                s.handle_datagram(now, from, &t.message);
            }
            while let Some((to, d)) = s.poll_transmit() {
                assert_eq!(to, from, "DTLS replies go where the viewer's packets came from");
                for e in client.read(now, server, None, BytesMut::from(&d[..])).unwrap() {
                    if matches!(e, EndpointEvent::HandshakeComplete) {
                        client_done = true;
                    }
                }
            }
            if client_done && s.sender.is_some() {
                break;
            }
        }
        assert!(client_done, "the viewer finished its handshake");
        assert_eq!(s.poll_event(), Some(SessionEvent::IceConnected(viewer)));
        assert_eq!(s.poll_event(), Some(SessionEvent::DtlsConnected(Profile::AesCm128HmacSha1_80)));
        assert!(s.dtls.get_connection_state(DTLS_KEY).is_some(), "one association, keyed by DTLS_KEY");
        // The viewer derives the keys on its side and decrypts our media.
        let state = client.get_connection_state(server).unwrap();
        let material = state.export_keying_material("EXTRACTOR-dtls_srtp", &[], 60).unwrap();
        let m = material.as_ref();
        let mut rx = Context::new(&m[16..32], &m[46..60], ProtectionProfile::Aes128CmHmacSha1_80, None, None, provider.crypto()).unwrap();
        let au = [0, 0, 0, 1, 0x65, 0x88, 0x84, 0x21, 0xa0];
        assert_eq!(s.write_frame(&au, 3000), 1);
        let (to, d) = s.poll_transmit().unwrap();
        assert_eq!(to, viewer, "media goes to the nominated address");
        let plain = rx.decrypt_rtp(&d).expect("the viewer decrypts it");
        assert_eq!(&plain[12..], &au[4..]);

        // The viewer's SRTCP (its own keys): a NACK for that packet and a PLI.
        let seq = u16::from_be_bytes([plain[2], plain[3]]);
        let mut tx = Context::new(&m[0..16], &m[32..46], ProtectionProfile::Aes128CmHmacSha1_80, None, None, provider.crypto()).unwrap();
        use rtc_shared::marshal::Marshal;
        let nack = rtc_rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack {
            sender_ssrc: 1,
            media_ssrc: 0xabc,
            nacks: vec![rtc_rtcp::transport_feedbacks::transport_layer_nack::NackPair { packet_id: seq, lost_packets: 0 }],
        };
        let pli = rtc_rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication { sender_ssrc: 1, media_ssrc: 0xabc };
        let mut compound = nack.marshal().unwrap().to_vec();
        compound.extend_from_slice(&pli.marshal().unwrap());
        let protected = tx.encrypt_rtcp(&compound).unwrap();
        s.handle_datagram(now, viewer, &protected);
        let (to, again) = s.poll_transmit().expect("the NACKed packet is sent again");
        assert_eq!(to, viewer);
        assert_eq!(again, d, "byte for byte");
        assert_eq!(s.poll_event(), Some(SessionEvent::KeyframeRequest));
        assert_eq!((s.nacks, s.keyframe_requests, s.retransmitted), (1, 1, 1));
        // Forged RTCP (wrong keys) is ignored.
        let before = s.ignored;
        s.handle_datagram(now, viewer, &[0x81, 205, 0, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0]);
        assert_eq!(s.ignored, before + 1);
    }
}
