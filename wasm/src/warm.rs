//! Warm start: one whole session played in memory against a viewer made of the same crates —
//! an ICE check with nomination, a DTLS 1.2 handshake with DTLS-SRTP (we are the client, as
//! browsers' offers make us), then a few seconds' worth of frames packetized and protected. Run once when a master starts, it makes the WebAssembly
//! engine compile (and optimize) every function the first real viewer would otherwise pay for,
//! and grows the instance's memory to what a session needs, so the first viewer costs no more
//! than later ones. Nothing leaves the call: no datagram, no key.

use crate::session::{self, Session, SessionConfig, SessionError, UDP};
use bytes::BytesMut;
use rtc_dtls::config::{ClientAuthType, ConfigBuilder, ExtendedMasterSecretType};
use rtc_dtls::crypto::Certificate;
use rtc_dtls::endpoint::Endpoint;
use rtc_dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc_shared::TransportProtocol;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

const LOCAL_PWD: &str = "warmwarmwarmwarmwarmwarm";
const REMOTE_PWD: &str = "viewerviewerviewerviewer";

/// Play one session in memory with `certificate` on both sides. Returns the number of media
/// datagrams produced (a session that did not get that far is an error naming the step).
pub fn warm_up(certificate: &Certificate, frames: usize) -> Result<usize, SessionError> {
    let provider = rtc_dtls::crypto_provider::default_provider()
        .map_err(|e| SessionError(format!("crypto provider: {e}")))?;
    let fingerprint = session::parse_fingerprint(&session::fingerprint(certificate)?)?;
    let server: SocketAddr = "192.0.2.1:9".parse().unwrap();
    let viewer: SocketAddr = "192.0.2.2:9".parse().unwrap();
    let now = Instant::now();
    let mut s = Session::new(
        SessionConfig {
            certificate: certificate.clone(),
            local_ufrag: "warm".into(),
            local_pwd: LOCAL_PWD.into(),
            remote_ufrag: "view".into(),
            remote_pwd: REMOTE_PWD.into(),
            remote_fingerprint: fingerprint,
            ssrc: 1,
            payload_type: 96,
            audio_out: Some((2, 111)),
            audio_in_pt: None,
            sctp: None,
            host_allowed: true,
            host_addr: Some(server),
            allow_aes_gcm: false,
            connect_timeout: None,
            twcc_ext: Some(3),
            start_bps: None,
            // The role browsers' offers give us (actpass: we answer active).
            dtls_client: true,
            playout_ext: None,
        },
        now,
    )?;
    // The viewer's nominating check.
    let check = crate::ice::viewer_check(provider.as_ref(), "warm:view", LOCAL_PWD, true);
    s.handle_datagram(now, UDP, viewer, &check);
    if s.selected().is_none() {
        return Err(SessionError("warm-up: ICE did not select the pair".into()));
    }
    // The viewer's DTLS server: our ClientHello went out behind the answer to its check.
    let mut dtls_server = viewer_dtls_server(provider, certificate.clone(), viewer)?;
    for _ in 0..20 {
        while let Some((_, _, d)) = s.poll_transmit() {
            if d.first().is_some_and(|b| (20..=63).contains(b)) {
                let _ = dtls_server.read(now, server, None, BytesMut::from(&d[..]));
            }
        }
        let mut replied = false;
        while let Some(t) = dtls_server.poll_transmit() {
            s.handle_datagram(now, UDP, viewer, &t.message);
            replied = true;
        }
        if !replied {
            break;
        }
    }
    // Frames: an IDR-sized one, then P-frame-sized ones (pseudo-random payload, no start codes).
    let mut seed = 0x2545_f491u32;
    let mut frame = vec![0, 0, 0, 1, 0x65];
    frame.extend((0..60_000).map(|_| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        (seed as u8) | 1
    }));
    let mut datagrams = 0;
    for i in 0..frames {
        let len = if i % 25 == 0 { frame.len() } else { 12_000 };
        let at = now + Duration::from_millis(40 * i as u64);
        if i % 25 != 0 {
            frame[4] = 0x41;
        }
        datagrams += s.write_frame(at, &frame[..len], (i as u32) * 3600);
        // Two 20 ms Opus frames per 40 ms video frame.
        for k in 0..2u32 {
            datagrams += s.write_audio(at, &frame[5..125], (i as u32 * 2 + k) * 960);
        }
        frame[4] = 0x65;
        while s.poll_transmit().is_some() {}
        s.handle_timeout(at);
    }
    if datagrams == 0 {
        return Err(SessionError("warm-up: no media (DTLS did not complete)".into()));
    }
    Ok(datagrams)
}

/// A DTLS server at `addr` as a browser is one when we answer `a=setup:active`: AES-CM SRTP,
/// extended master secret, our certificate required (the warm start's viewer, and tests').
pub(crate) fn viewer_dtls_server(
    provider: Arc<dyn rtc_dtls::crypto_provider::RTCCryptoProvider>,
    certificate: Certificate,
    addr: SocketAddr,
) -> Result<Endpoint, SessionError> {
    let config = ConfigBuilder::default()
        .with_crypto_provider(provider)
        .with_certificates(vec![certificate])
        .with_srtp_protection_profiles(vec![SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80])
        .with_extended_master_secret(ExtendedMasterSecretType::Require)
        .with_client_auth(ClientAuthType::RequireAnyClientCert)
        .with_insecure_skip_verify(true)
        .build(false, None)
        .map_err(|e| SessionError(format!("viewer's DTLS server: {e}")))?;
    Ok(Endpoint::new(addr, TransportProtocol::UDP, Some(Arc::new(config))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_session_in_memory() {
        let c = session::generate_certificate().unwrap();
        let n = warm_up(&c, 50).unwrap();
        assert!(n > 50 * 10, "{n} datagrams");
    }
}
