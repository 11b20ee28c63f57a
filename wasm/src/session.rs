//! One viewer's media session, sans-IO: ICE as the controlled agent ([`crate::ice`]) over the
//! host socket and TURN allocations (`rtc-turn`, reached over UDP or a TCP/TLS stream the host
//! provides), server-reflexive discovery, a DTLS 1.2 server that checks the viewer's certificate
//! against its offer's fingerprint, DTLS-SRTP key export, then the SRTP video [`Sender`].
//! Datagrams and time in, datagrams and events out; no sockets or clocks.

use crate::data::{DataChannels, DataEvent, Reliability};
use crate::ice::{self, Base, CandidateError, IceAgent, IceEvent};
use crate::gcc::Estimator;
use crate::output::Output;
use crate::pacer::{Class, Pacer};
pub use crate::sender::PlayoutDelay;
use crate::sender::{Profile, Sender};
use crate::twcc::TwccHistory;
use bytes::BytesMut;
use rtc_dtls::config::{ClientAuthType, ConfigBuilder, ExtendedMasterSecretType};
use rtc_dtls::crypto::Certificate;
use rtc_dtls::crypto_provider::RTCCryptoProvider;
use rtc_dtls::endpoint::{Endpoint, EndpointEvent};
use rtc_dtls::extension::extension_use_srtp::SrtpProtectionProfile;
use rtc_shared::{TransportContext, TransportMessage, TransportProtocol};
use rtc_stun::message::{Message, Setter, TransactionId, BINDING_REQUEST, CLASS_SUCCESS_RESPONSE, METHOD_BINDING};
use rtc_stun::xoraddr::XorMappedAddress;
use rtc_stun::message::Getter;
use sansio::Protocol;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The key of the one DTLS association (a reserved class-E address, never a real peer).
const DTLS_KEY: SocketAddr =
    SocketAddr::V4(std::net::SocketAddrV4::new(std::net::Ipv4Addr::new(240, 0, 0, 1), 9));

/// Bytes before the output records, for the ABI layer (the output's total length).
pub const OUTPUT_ROOM: usize = 4;

/// Host transport ids: 0 is the session's UDP socket; TURN streams (TCP/TLS) get 1, 2, ….
pub type Via = u32;
/// The host UDP socket: the IPv4 one, or the IPv6 one for IPv6 addresses (the host picks it by
/// the destination's address family).
pub const UDP: Via = 0;
/// The source of stream bytes (streams have no datagram source address).
pub const NO_ADDR: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0));

/// How a TURN server is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnTransport {
    /// Over the session's UDP socket.
    Udp,
    /// Over a TCP or TLS stream the host opened for it (RFC 6062 framing of STUN and
    /// ChannelData on a byte stream).
    Stream,
}

/// Remote candidates a session keeps (browsers give fewer than 20).
pub const MAX_REMOTE_CANDIDATES: usize = 64;

/// What a session reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// The viewer nominated a pair (ICE connected); the text describes it.
    IceConnected(String),
    /// DTLS finished; media can flow with this SRTP profile.
    DtlsConnected(Profile),
    /// The viewer asked for a keyframe (PLI or FIR).
    KeyframeRequest,
    /// Video that waited too long for the viewer's bandwidth was dropped: no video leaves until
    /// the next IDR (the host may move the viewer to a lighter rendition).
    CongestionKeyframeRequest,
    /// A local candidate to trickle to the viewer (`candidate:…` line).
    LocalCandidate(String),
    /// Something failed that does not end the session (a TURN server refused us, a STUN server
    /// did not answer).
    Warning(String),
    /// The session ended.
    Closed(String),
    /// An audio packet from the viewer, decrypted: its RTP timestamp, sequence number and
    /// payload (an Opus packet).
    Audio { timestamp: u32, sequence: u16, payload: Vec<u8> },
    /// Data channels: opened, a message, closed ([`crate::data`]).
    Data(DataEvent),
    /// The viewer's bandwidth estimate changed notably (bits/s, [`crate::gcc`]).
    Estimate(u64),
}

/// Largest audio payload read from a viewer (an Opus packet is at most 1275 bytes per frame).
pub const MAX_AUDIO_IN: usize = 1500;

/// Why a session could not be made.
#[derive(Debug)]
pub struct SessionError(pub String);

impl std::fmt::Display for SessionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The crypto interface sessions use, for callers that build STUN messages (tests, fuzzing).
pub use rtc_dtls::crypto_provider::RTCCryptoProvider as CryptoProvider;

/// The crypto provider sessions use (`ring`).
pub fn crypto_provider() -> Result<Arc<dyn RTCCryptoProvider>, SessionError> {
    provider()
}

fn provider() -> Result<Arc<dyn RTCCryptoProvider>, SessionError> {
    rtc_dtls::crypto_provider::default_provider().map_err(|e| SessionError(format!("crypto provider: {e}")))
}

fn sha256(provider: &dyn RTCCryptoProvider, der: &[u8]) -> Result<Vec<u8>, SessionError> {
    provider
        .crypto()
        .hash(rtc_dtls::crypto_provider::HashAlgorithm::Sha256, der)
        .map(|d| AsRef::<[u8]>::as_ref(&d).to_vec())
        .map_err(|e| SessionError(format!("hash: {e}")))
}

/// `sha-256 AB:CD:…` of a certificate's DER, the form of SDP's `a=fingerprint`.
pub fn fingerprint(certificate: &Certificate) -> Result<String, SessionError> {
    let der = certificate.certificate.first().ok_or_else(|| SessionError("no certificate".into()))?;
    let digest = sha256(provider()?.as_ref(), der.as_ref())?;
    let hex: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
    Ok(format!("sha-256 {}", hex.join(":")))
}

/// Parse an SDP `a=fingerprint` value (`sha-256 AB:CD:…`) into its digest bytes. Only SHA-256
/// is accepted (what browsers send).
pub fn parse_fingerprint(value: &str) -> Result<Vec<u8>, SessionError> {
    let value = value.trim().trim_start_matches("a=fingerprint:");
    let (alg, hex) = value
        .split_once(' ')
        .ok_or_else(|| SessionError(format!("fingerprint {value:?} is not \"<hash> <hex>\"")))?;
    if !alg.eq_ignore_ascii_case("sha-256") {
        return Err(SessionError(format!("fingerprint hash {alg:?} is not supported (sha-256 only)")));
    }
    let bytes: Result<Vec<u8>, _> = hex.trim().split(':').map(|h| u8::from_str_radix(h, 16)).collect();
    match bytes {
        Ok(b) if b.len() == 32 => Ok(b),
        _ => Err(SessionError("fingerprint is not 32 colon-separated hex bytes".into())),
    }
}

/// A new self-signed ECDSA P-256 certificate for DTLS.
pub fn generate_certificate() -> Result<Certificate, SessionError> {
    Certificate::generate_self_signed(vec!["kvs-webrtc-master".to_owned()], provider()?.crypto())
        .map_err(|e| SessionError(format!("certificate: {e}")))
}

/// A certificate and its key as PEM (what [`certificate_from_pem`] reads), so one certificate
/// serves every session of a process.
pub fn certificate_to_pem(c: &Certificate) -> Result<String, SessionError> {
    c.serialize_pem().map_err(|e| SessionError(format!("certificate export: {e}")))
}

/// Read a certificate written by [`certificate_to_pem`].
pub fn certificate_from_pem(pem: &str) -> Result<Certificate, SessionError> {
    Certificate::from_pem(pem, provider()?.crypto()).map_err(|e| SessionError(format!("certificate: {e}")))
}

/// What a session needs to start.
pub struct SessionConfig {
    /// Our DTLS certificate (one per process).
    pub certificate: Certificate,
    /// Our ICE credentials.
    pub local_ufrag: String,
    pub local_pwd: String,
    /// The viewer's, from its offer.
    pub remote_ufrag: String,
    pub remote_pwd: String,
    /// SHA-256 digest of the viewer's DTLS certificate, from its offer.
    pub remote_fingerprint: Vec<u8>,
    /// Media SSRC and the negotiated H.264 payload type.
    pub ssrc: u32,
    pub payload_type: u8,
    /// Opus to the viewer: its SSRC and payload type (None: no audio is sent).
    pub audio_out: Option<(u32, u8)>,
    /// The payload type of the Opus the viewer sends (None: its audio is not read).
    pub audio_in_pt: Option<u8>,
    /// Data channels: the viewer's SCTP port and largest message (None: not negotiated).
    pub sctp: Option<(u16, usize)>,
    /// Whether the host socket may carry checks and media (false: relay-only policy).
    pub host_allowed: bool,
    /// The host socket's address, as the related address of reflexive candidates.
    pub host_addr: Option<SocketAddr>,
    /// Offer AEAD_AES_128_GCM too (the viewer's preference then decides); otherwise
    /// AES_CM_128_HMAC_SHA1_80 only.
    pub allow_aes_gcm: bool,
    /// End the session when the viewer nominated no pair this long after it was made (default
    /// [`ice::CONNECT_TIMEOUT`]).
    pub connect_timeout: Option<Duration>,
    /// The transport-wide sequence number extension's id, when the viewer's offer has it and
    /// `transport-cc` feedback (None: no transport-wide feedback; REMB and loss only).
    pub twcc_ext: Option<u8>,
    /// The bandwidth estimate before any feedback (default [`crate::gcc::START_BPS`]).
    pub start_bps: Option<f64>,
    /// Our DTLS role: the client (`a=setup:active` in our answer) sends its ClientHello the
    /// moment the viewer nominates a pair; the server (`a=setup:passive`) waits for the viewer's.
    /// The client saves a round trip: no HelloVerifyRequest exchange, which the server side of
    /// `rtc-dtls` always makes.
    pub dtls_client: bool,
    /// The playout delay extension's id, when the viewer's offer has it for video (frames can
    /// then carry a delay: see [`Session::set_playout_delay`]).
    pub playout_ext: Option<u8>,
}

/// The estimate for viewers that send no transport-wide feedback, before REMB or loss lower it:
/// high enough that pacing only smooths.
const NO_FEEDBACK_START_BPS: f64 = 20_000_000.0;
/// A probe carried by media takes at least this much of it (enough packets to read a rate from).
const MEDIA_PROBE_MIN_BYTES: f64 = 6.0 * 1200.0;
/// An estimate event is due when the estimate moved this much (relative) since the last one,
/// and at most this often.
const ESTIMATE_EVENT_CHANGE: f64 = 0.05;
const ESTIMATE_EVENT_GAP: Duration = Duration::from_millis(200);
/// Transport-wide feedback reports read per second at most, and in a burst.
const FEEDBACK_PER_S: f64 = 100.0;
const FEEDBACK_BURST: f64 = 20.0;
/// Frames waiting for the pacer at most (beyond, new ones are dropped until the wait ends).
const MAX_QUEUED_FRAMES: usize = 512;
/// DTLS must be up this long after the first nomination, or the session ends: a viewer that
/// nominates and then keeps only its consent checks going would otherwise hold its seat forever.
pub const DTLS_TIMEOUT: Duration = Duration::from_secs(20);

/// One TURN server and our allocation on it.
struct Turn {
    client: rtc_turn::client::Client,
    via: Via,
    server: SocketAddr,
    url: String,
    relayed: Option<SocketAddr>,
    /// Bytes of a stream transport not yet forming a whole message.
    stream: Vec<u8>,
    failed: bool,
}

/// One STUN server asked for our server-reflexive address.
struct Probe {
    server: SocketAddr,
    tid: TransactionId,
    tries: u32,
    next: Instant,
    done: bool,
}

/// A viewer's session.
pub struct Session {
    provider: Arc<dyn RTCCryptoProvider>,
    ice: IceAgent,
    host_allowed: bool,
    host_addr: Option<SocketAddr>,
    dtls: Endpoint,
    /// As the DTLS client: the handshake's configuration, until the nomination starts it.
    dtls_connect: Option<Arc<rtc_dtls::config::HandshakeConfig>>,
    dtls_client: bool,
    /// When DTLS must be up by (set at the first nomination, cleared once SRTP is keyed).
    dtls_deadline: Option<Instant>,
    /// Set once DTLS started: the association is keyed by [`DTLS_KEY`], whatever address its
    /// packets come from, so a viewer moving to another candidate pair mid-handshake (another
    /// relay, another local address) keeps its one association.
    dtls_started: bool,
    /// Where the latest DTLS packet came from (always a pair the viewer verified with an ICE
    /// check): DTLS replies go back there.
    dtls_from: Option<(Base, SocketAddr)>,
    /// Set by the certificate check when the viewer's certificate is not the one its offer named.
    fingerprint_mismatch: Arc<AtomicBool>,
    selected: Option<(Base, SocketAddr)>,
    sender: Option<Sender>,
    /// The audio stream to the viewer, on the same keys (its own SSRC).
    audio_sender: Option<Sender>,
    audio_out: Option<(u32, u8)>,
    audio_in_pt: Option<u8>,
    /// The SSRC of the viewer's audio, from its first packet that decrypted.
    audio_in_ssrc: Option<u32>,
    /// Audio packets from the viewer that decrypted.
    pub audio_received: u64,
    /// Data channels over the DTLS association, once it is up (when negotiated).
    data: Option<DataChannels>,
    sctp: Option<(u16, usize)>,
    /// Decrypts the viewer's SRTP and SRTCP (its DTLS-SRTP keys).
    remote_srtp: Option<rtc_srtp::context::Context>,
    turns: Vec<Turn>,
    probes: Vec<Probe>,
    srflx: Vec<SocketAddr>,
    /// Sender reports: when the next is due, and the NTP middle 32 bits of recent ones with the
    /// time they left (for the round-trip time from the viewer's receiver reports).
    next_report: Option<Instant>,
    reports_sent: VecDeque<(u32, Instant)>,
    /// Latest access unit and audio frame: RTP timestamp and when each was sent (the sender
    /// reports of both streams map them to one wall clock).
    last_frame: Option<(u32, Instant)>,
    last_audio: Option<(u32, Instant)>,
    /// Round-trip time from the latest receiver report, and the viewer's loss figures.
    pub rtt_ms: Option<f64>,
    pub fraction_lost: u8,
    pub total_lost: u32,
    /// NACK and PLI/FIR feedback received, packets resent.
    pub nacks: u64,
    pub keyframe_requests: u64,
    pub retransmitted: u64,
    ssrc: u32,
    payload_type: u8,
    now: Instant,
    /// Datagrams to send, as records in the order made ([`crate::output`]).
    pub out: Output,
    /// Scratch for a frame's datagrams that go through a TURN relay (wrapped per datagram).
    relay_batch: Vec<u8>,
    events: VecDeque<SessionEvent>,
    closed: bool,
    /// Datagrams that were not understood (counted, never fatal).
    pub ignored: u64,
    /// When SRTCP from the viewer last decrypted.
    rtcp_authenticated_at: Option<Instant>,
    /// Transport-wide feedback reports the budget allows ([`FEEDBACK_PER_S`]), as of when, and
    /// those not read (over the budget or not negotiated).
    feedback_tokens: f64,
    feedback_at: Instant,
    pub feedback_refused: u64,
    /// Congestion control: the extension id, what was sent under each transport-wide number,
    /// the estimator, the pacer every datagram leaves through, the next transport-wide number
    /// (shared by the video and audio senders).
    twcc_ext: Option<u8>,
    playout_ext: Option<u8>,
    /// The playout delay the video frames written now carry (see [`Session::set_playout_delay`]).
    playout_now: Option<PlayoutDelay>,
    twcc: TwccHistory,
    pub gcc: Estimator,
    pub pacer: Pacer,
    transport_sequence: u16,
    /// Media bytes sent over the last second (for probing): (when, bytes).
    sent_window: VecDeque<(Instant, usize)>,
    sent_window_bytes: usize,
    /// The last estimate reported in an event, and when.
    estimate_reported: Option<(f64, Instant)>,
    /// Frames waiting for the pacer, not yet packetized: bytes, RTP timestamp, when written, the
    /// playout delay they carry.
    video_queue: VecDeque<(Vec<u8>, u32, Instant, Option<PlayoutDelay>)>,
    frame_spare: Vec<Vec<u8>>,
    /// After waiting frames were dropped: no video until the next IDR.
    awaiting_keyframe: bool,
    /// Times waiting frames were dropped.
    pub queue_drops: u64,
    /// Video frames not sent while waiting for an IDR after a drop.
    pub frames_dropped: u64,
    /// Packets the viewer reported lost in receiver reports, as of the previous one (for the
    /// loss of viewers without transport-wide feedback), and packets sent then.
    rr_mark: Option<(u64, u32)>,
}

impl Session {
    /// A session as `config` describes, at `now`.
    pub fn new(config: SessionConfig, now: Instant) -> Result<Session, SessionError> {
        let provider = provider()?;
        if config.remote_fingerprint.len() != 32 {
            return Err(SessionError("the viewer's SHA-256 certificate fingerprint is required".into()));
        }
        let mismatch = Arc::new(AtomicBool::new(false));
        let expected = config.remote_fingerprint.clone();
        let check_provider = provider.clone();
        let flag = mismatch.clone();
        let verify: rtc_dtls::config::VerifyPeerCertificateFn = Arc::new(move |certs: &[Vec<u8>], _| {
            let ok = certs
                .first()
                .and_then(|der| sha256(check_provider.as_ref(), der).ok())
                .is_some_and(|d| d == expected);
            if ok {
                Ok(())
            } else {
                flag.store(true, Ordering::Relaxed);
                Err(rtc_shared::error::Error::Other("certificate does not match the offer's fingerprint".into()))
            }
        });
        let dtls_config = ConfigBuilder::default()
            .with_crypto_provider(provider.clone())
            .with_certificates(vec![config.certificate])
            // The viewer's order decides among these: one listing AES-GCM first would get it, and in
            // WebAssembly (no AES or carry-less multiply instructions) it is about 1.5× slower than
            // AES-CM, which every WebRTC endpoint must implement (RFC 8827). So GCM on request only.
            .with_srtp_protection_profiles(if config.allow_aes_gcm {
                vec![SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm, SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80]
            } else {
                vec![SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80]
            })
            .with_extended_master_secret(ExtendedMasterSecretType::Require)
            .with_client_auth(ClientAuthType::RequireAnyClientCert)
            // Self-signed certificates have no chain to verify; the fingerprint check above is
            // what authenticates the viewer (RFC 8827 §6.5).
            .with_insecure_skip_verify(true)
            .with_verify_peer_certificate(Some(verify))
            .build(config.dtls_client, None)
            .map_err(|e| SessionError(format!("DTLS configuration: {e}")))?;
        let dtls_config = Arc::new(dtls_config);
        let local: SocketAddr = "0.0.0.0:0".parse().unwrap();
        let mut ice = IceAgent::new(
            (&config.local_ufrag, &config.local_pwd),
            (&config.remote_ufrag, &config.remote_pwd),
            config.host_allowed,
            provider.clone(),
        );
        if let Some(t) = config.connect_timeout {
            ice.set_connect_timeout(t);
        }
        ice.start(now);
        let start_bps = match config.twcc_ext {
            Some(_) => config.start_bps.unwrap_or(crate::gcc::START_BPS),
            None => config.start_bps.unwrap_or(NO_FEEDBACK_START_BPS).max(NO_FEEDBACK_START_BPS),
        };
        Ok(Session {
            provider,
            ice,
            host_allowed: config.host_allowed,
            host_addr: config.host_addr,
            dtls: Endpoint::new(local, TransportProtocol::UDP, (!config.dtls_client).then(|| dtls_config.clone())),
            dtls_connect: config.dtls_client.then_some(dtls_config),
            dtls_client: config.dtls_client,
            dtls_deadline: None,
            dtls_started: false,
            dtls_from: None,
            fingerprint_mismatch: mismatch,
            selected: None,
            sender: None,
            audio_sender: None,
            audio_out: config.audio_out,
            audio_in_pt: config.audio_in_pt,
            audio_in_ssrc: None,
            audio_received: 0,
            data: None,
            sctp: config.sctp,
            remote_srtp: None,
            turns: Vec::new(),
            probes: Vec::new(),
            srflx: Vec::new(),
            next_report: None,
            reports_sent: VecDeque::new(),
            last_frame: None,
            last_audio: None,
            rtt_ms: None,
            fraction_lost: 0,
            total_lost: 0,
            nacks: 0,
            keyframe_requests: 0,
            retransmitted: 0,
            ssrc: config.ssrc,
            payload_type: config.payload_type,
            now,
            out: Output::with_room(OUTPUT_ROOM),
            relay_batch: Vec::new(),
            events: VecDeque::new(),
            closed: false,
            ignored: 0,
            rtcp_authenticated_at: None,
            twcc_ext: config.twcc_ext.filter(|id| (1..=14).contains(id)),
            playout_ext: config.playout_ext.filter(|id| (1..=14).contains(id)),
            playout_now: None,
            twcc: TwccHistory::default(),
            feedback_tokens: FEEDBACK_BURST,
            feedback_at: now,
            feedback_refused: 0,
            gcc: Estimator::new(now, start_bps),
            pacer: Pacer::new(now, start_bps),
            transport_sequence: rand_u16(),
            sent_window: VecDeque::new(),
            sent_window_bytes: 0,
            estimate_reported: None,
            video_queue: VecDeque::new(),
            frame_spare: Vec::new(),
            awaiting_keyframe: false,
            queue_drops: 0,
            frames_dropped: 0,
            rr_mark: None,
        })
    }

    /// The session's latest time.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// When the viewer last proved it is there: an ICE check or response that authenticated,
    /// or SRTCP that decrypted (anyone can send other bytes from anywhere).
    pub fn authenticated_at(&self) -> Option<Instant> {
        self.ice.authenticated_at.max(self.rtcp_authenticated_at)
    }

    /// Video RTP packets sent (first transmissions).
    pub fn packets_sent(&self) -> u64 {
        self.sender.as_ref().map_or(0, |s| s.packets)
    }

    /// Audio RTP packets sent.
    pub fn audio_packets_sent(&self) -> u64 {
        self.audio_sender.as_ref().map_or(0, |s| s.packets)
    }

    /// The pair media goes to, once the viewer nominated one.
    pub fn selected(&self) -> Option<(Base, SocketAddr)> {
        self.selected
    }

    /// A remote candidate line trickled by the viewer. `Ok(false)`: well-formed but not usable
    /// here (the error text says why).
    pub fn add_remote_candidate(&mut self, now: Instant, line: &str) -> Result<(), CandidateError> {
        self.now = now;
        let c = ice::parse_candidate(line)?;
        // Each remote candidate makes pairs to check: a viewer cannot make the list grow forever.
        if let (known, false) = self.ice.remote_known(c.addr) {
            if known >= MAX_REMOTE_CANDIDATES {
                return Err(CandidateError::Ignored(format!(
                    "the viewer already gave {MAX_REMOTE_CANDIDATES} candidates; no more are used"
                )));
            }
        }
        self.ice.add_remote(now, &c)?;
        for t in 0..self.turns.len() {
            self.permit(t, c.addr);
        }
        self.pump();
        Ok(())
    }

    /// The host has an IPv6 UDP socket at `addr` besides the IPv4 one: IPv6 candidates are used
    /// ([`crate::ice`] pairs by address family), and datagrams to IPv6 addresses leave with
    /// [`UDP`] for the host to send on that socket.
    pub fn set_host_ipv6(&mut self, addr: SocketAddr) {
        self.ice.set_host_ipv6(addr);
    }

    /// Ask the STUN server at `server` for our server-reflexive address (over the host socket).
    pub fn add_stun_server(&mut self, now: Instant, server: SocketAddr) {
        self.now = now;
        self.probes.push(Probe { server, tid: TransactionId::new(), tries: 0, next: now, done: false });
        self.handle_timeout(now);
    }

    /// Allocate a relay on the TURN server at `server` with long-term credentials. For
    /// [`TurnTransport::Stream`], `via` is the id of the host's stream to it. `url` names the
    /// server in messages (never the credentials).
    pub fn add_turn_server(
        &mut self,
        now: Instant,
        url: &str,
        transport: TurnTransport,
        via: Via,
        server: SocketAddr,
        username: &str,
        password: &str,
        refresh_cap: Option<Duration>,
    ) -> Result<usize, SessionError> {
        self.now = now;
        // rtc-turn takes the server's address family from the local address's.
        let local_addr = match server {
            SocketAddr::V4(_) => self.host_addr.unwrap_or_else(|| "0.0.0.0:0".parse().unwrap()),
            SocketAddr::V6(_) => self.ice.host_ipv6().unwrap_or_else(|| "[::]:0".parse().unwrap()),
        };
        let config = rtc_turn::client::ClientConfig {
            allocation_refresh_interval_cap: refresh_cap,
            turn_serv_addr: server.to_string(),
            local_addr,
            transport_protocol: match transport {
                TurnTransport::Udp => TransportProtocol::UDP,
                TurnTransport::Stream => TransportProtocol::TCP,
            },
            username: username.to_owned(),
            password: password.to_owned(),
            software: "kvs-webrtc-master".to_owned(),
            ..Default::default()
        };
        let mut client = rtc_turn::client::Client::new(config, self.provider.clone())
            .map_err(|e| SessionError(format!("TURN {url}: {e}")))?;
        client.allocate(now).map_err(|e| SessionError(format!("TURN {url}: allocate: {e}")))?;
        let via = if transport == TurnTransport::Udp { UDP } else { via };
        self.turns.push(Turn { client, via, server, url: url.to_owned(), relayed: None, stream: Vec::new(), failed: false });
        let i = self.turns.len() - 1;
        self.pump_turn(i);
        Ok(i)
    }

    /// The relayed address of TURN server `index`, once allocated.
    pub fn relayed_address(&self, index: usize) -> Option<SocketAddr> {
        self.turns.get(index).and_then(|t| t.relayed)
    }

    /// Feed bytes received on host transport `via` from `from`: a datagram on the UDP socket,
    /// or a chunk of a TURN stream.
    pub fn handle_datagram(&mut self, now: Instant, via: Via, from: SocketAddr, data: &[u8]) {
        self.now = now;
        if self.closed {
            return;
        }
        if via != UDP {
            let Some(i) = self.turns.iter().position(|t| t.via == via) else {
                self.ignored += 1;
                return;
            };
            self.turns[i].stream.extend_from_slice(data);
            loop {
                match next_frame(&mut self.turns[i].stream) {
                    Frame::Whole(frame) => self.turn_input(i, &frame),
                    Frame::Partial => break,
                    Frame::Garbage => {
                        self.turns[i].stream.clear();
                        self.ignored += 1;
                        break;
                    }
                }
            }
        } else if let Some(i) = self.turns.iter().position(|t| t.via == UDP && t.server == from) {
            self.turn_input(i, data);
        } else if !self.probe_response(from, data) {
            self.handle_peer(now, Base::Host, from, data);
        }
        self.pump();
    }

    fn probe_response(&mut self, from: SocketAddr, data: &[u8]) -> bool {
        if data.len() < 20 || data[0] > 1 {
            return false;
        }
        let Some(p) = self.probes.iter().position(|p| p.server == from && !p.done && data[8..20] == p.tid.0) else {
            return false;
        };
        let mut m = Message::new();
        m.raw = data.to_vec();
        let mut mapped = XorMappedAddress::default();
        if m.decode().is_err() || m.typ.method != METHOD_BINDING || m.typ.class != CLASS_SUCCESS_RESPONSE || mapped.get_from(&m).is_err() {
            self.ignored += 1;
            return true;
        }
        self.probes[p].done = true;
        let addr = SocketAddr::new(mapped.ip, mapped.port);
        // srflx candidates share the host socket: under a relay-only policy they are not offered.
        let host = if addr.is_ipv6() { self.ice.host_ipv6() } else { self.host_addr };
        if !self.srflx.contains(&addr) && Some(addr) != host && self.host_allowed {
            self.srflx.push(addr);
            let line = self.candidate_line("srflx", addr, self.ice.srflx_priority());
            self.events.push_back(SessionEvent::LocalCandidate(line));
        }
        true
    }

    fn candidate_line(&self, kind: &str, addr: SocketAddr, priority: u32) -> String {
        let host = if addr.is_ipv6() { self.ice.host_ipv6() } else { self.host_addr };
        let (rip, rport) = match host {
            Some(h) => (h.ip().to_string(), h.port()),
            None => ("0.0.0.0".to_owned(), 0),
        };
        let foundation = match kind {
            "srflx" => 2,
            "relay" => 3 + self.turns.iter().position(|t| t.relayed == Some(addr)).unwrap_or(0),
            _ => 1,
        };
        format!(
            "candidate:{foundation} 1 udp {priority} {} {} typ {kind} raddr {rip} rport {rport} generation 0",
            addr.ip(),
            addr.port()
        )
    }

    fn turn_input(&mut self, i: usize, data: &[u8]) {
        // A refused refresh (stale credentials, say) is worth a warning: the allocation ends
        // when its lifetime runs out.
        if data.len() >= 20 && data[0] < 2 {
            let mut m = Message::new();
            m.raw = data.to_vec();
            let mut code = rtc_stun::error_code::ErrorCodeAttribute::default();
            if m.decode().is_ok()
                && m.typ.method == rtc_stun::message::METHOD_REFRESH
                && m.typ.class == rtc_stun::message::CLASS_ERROR_RESPONSE
                && code.get_from(&m).is_ok()
                && code.code.0 != 438
            {
                let url = self.turns[i].url.clone();
                self.events.push_back(SessionEvent::Warning(format!(
                    "TURN {url}: refresh refused: {} {}",
                    code.code.0,
                    String::from_utf8_lossy(&code.reason)
                )));
            }
        }
        let t = &mut self.turns[i];
        let msg = TransportMessage {
            now: self.now,
            transport: TransportContext {
                local_addr: self.host_addr.unwrap_or_else(|| "0.0.0.0:0".parse().unwrap()),
                peer_addr: t.server,
                transport_protocol: TransportProtocol::UDP,
                ecn: None,
            },
            message: BytesMut::from(data),
        };
        if t.client.handle_read(msg).is_err() {
            self.ignored += 1;
        }
        self.pump_turn(i);
    }

    /// Route what TURN client `i` produced: its datagrams to the server, its events.
    fn pump_turn(&mut self, i: usize) {
        self.drain_turn_writes(i);
        while let Some(e) = self.turns[i].client.poll_event() {
            use rtc_turn::client::Event;
            match e {
                Event::AllocateResponse(_, relayed) => {
                    self.turns[i].relayed = Some(relayed);
                    let line = self.candidate_line("relay", relayed, self.ice.relay_priority());
                    self.events.push_back(SessionEvent::LocalCandidate(line));
                    self.ice.add_relay(self.now, i, relayed);
                    for addr in self.ice.remote_addrs() {
                        self.permit(i, addr);
                    }
                }
                Event::AllocateError(_, err) => {
                    self.turns[i].failed = true;
                    let url = self.turns[i].url.clone();
                    self.events.push_back(SessionEvent::Warning(format!("TURN {url}: allocation refused: {err}")));
                }
                Event::TransactionTimeout(_) if self.turns[i].relayed.is_none() && !self.turns[i].failed => {
                    self.turns[i].failed = true;
                    let url = self.turns[i].url.clone();
                    self.events.push_back(SessionEvent::Warning(format!("TURN {url}: no answer to Allocate")));
                }
                Event::CreatePermissionError(_, err) => {
                    let url = self.turns[i].url.clone();
                    self.events.push_back(SessionEvent::Warning(format!("TURN {url}: permission refused: {err}")));
                }
                Event::DataIndicationOrChannelData(_, peer, data) => {
                    let now = self.now;
                    self.handle_peer(now, Base::Relay(i), peer, &data);
                }
                _ => {}
            }
        }
    }

    /// Queue what TURN client `i` wrote for its server, on that server's transport.
    fn drain_turn_writes(&mut self, i: usize) {
        while let Some(w) = self.turns[i].client.poll_write() {
            let t = &self.turns[i];
            self.out.push(t.via, t.server, &w.message);
        }
    }

    fn permit(&mut self, i: usize, peer: SocketAddr) {
        let now = self.now;
        let t = &mut self.turns[i];
        let Some(relayed) = t.relayed else { return };
        if relayed.is_ipv6() != peer.is_ipv6() {
            return; // an allocation relays to its own address family only (RFC 6156)
        }
        if let Ok(mut relay) = t.client.relay(relayed) {
            let _ = relay.create_permission(now, peer);
        }
        self.pump_turn(i);
    }

    /// Send `data` to `to` from `base`.
    fn send(&mut self, base: Base, to: SocketAddr, data: &[u8]) {
        match base {
            Base::Host => self.out.push(UDP, to, data),
            Base::Relay(i) => {
                let now = self.now;
                let Some(t) = self.turns.get_mut(i) else { return };
                let Some(relayed) = t.relayed else { return };
                let sent = t.client.relay(relayed).and_then(|mut r| r.send_to(now, data, to));
                if sent.is_err() {
                    // No permission yet: a check is retransmitted later; media waits for it.
                    self.ignored += 1;
                }
                self.drain_turn_writes(i);
            }
        }
    }

    /// A datagram from the viewer, arrived on `base`.
    fn handle_peer(&mut self, now: Instant, base: Base, from: SocketAddr, data: &[u8]) {
        match data.first() {
            Some(0..=3) => {
                if !self.ice.handle_stun(now, base, from, data) {
                    self.ignored += 1;
                }
            }
            // DTLS and RTCP only on a pair where the viewer proved itself with an ICE check
            // (RFC 8445 §12): from anywhere else they are dropped, so nobody but the viewer can
            // handshake, and nothing but a new nomination moves where media goes.
            Some(20..=63) if self.ice.is_verified(base, from) => self.handle_dtls(now, base, from, data),
            // RTCP from the viewer (RFC 5761: payload types 192–223 in the second byte).
            Some(128..=191)
                if data.len() > 1 && (192..=223).contains(&data[1]) && self.ice.is_verified(base, from) =>
            {
                self.handle_rtcp(now, data)
            }
            // RTP from the viewer: its audio, when it sends any.
            Some(128..=191) if self.ice.is_verified(base, from) => self.handle_rtp(now, data),
            _ => self.ignored += 1,
        }
    }

    /// Move what the ICE agent and DTLS produced to the output.
    fn pump(&mut self) {
        while let Some(t) = self.ice.poll_transmit() {
            self.send(t.base, t.to, &t.data);
        }
        while let Some(e) = self.ice.poll_event() {
            match e {
                IceEvent::Selected { base, remote, description } => {
                    self.selected = Some((base, remote));
                    self.events.push_back(SessionEvent::IceConnected(description));
                    if self.sender.is_none() && self.dtls_deadline.is_none() {
                        self.dtls_deadline = Some(self.now + DTLS_TIMEOUT);
                    }
                    // As the DTLS client: the ClientHello right behind our answer to the check
                    // that nominated (the viewer is writable once that answer arrives).
                    if let Some(config) = self.dtls_connect.take() {
                        self.dtls_started = true;
                        if self.dtls.connect(self.now, DTLS_KEY, config, None).is_err() {
                            self.close("DTLS: the handshake could not start".into());
                        }
                    }
                }
                IceEvent::Failed(reason) => self.close(reason),
            }
        }
        while let Some(t) = self.dtls.poll_transmit() {
            let (base, to) = self.dtls_from.or(self.selected).unwrap_or((Base::Host, t.transport.peer_addr));
            self.send(base, to, &t.message);
        }
    }

    fn close(&mut self, reason: String) {
        if !self.closed {
            self.closed = true;
            self.events.push_back(SessionEvent::Closed(reason));
        }
    }

    fn handle_dtls(&mut self, now: Instant, base: Base, from: SocketAddr, data: &[u8]) {
        self.dtls_started = true;
        self.dtls_from = Some((base, from));
        match self.dtls.read(now, DTLS_KEY, None, BytesMut::from(data)) {
            Ok(events) => {
                for e in events {
                    match e {
                        EndpointEvent::HandshakeComplete => {
                            self.start_srtp(DTLS_KEY);
                            // The DTLS client sends the SCTP INIT (as RFC 8832 gives it even
                            // stream ids); browsers send theirs too and answer ours either way.
                            if let Some((port, max)) = self.sctp {
                                self.data = Some(if self.dtls_client {
                                    DataChannels::new_client(now, port, crate::data::SCTP_PORT, max)
                                } else {
                                    DataChannels::new(now, port, crate::data::SCTP_PORT, max)
                                });
                            }
                        }
                        EndpointEvent::PeerClosed => self.close("DTLS close_notify from the viewer".into()),
                        EndpointEvent::ApplicationData(packet) => match self.data.as_mut() {
                            Some(d) => d.handle_sctp(now, &packet),
                            None => self.ignored += 1,
                        },
                        _ => {}
                    }
                }
            }
            Err(_) => self.ignored += 1,
        }
        self.pump_data(now);
        if self.fingerprint_mismatch.load(Ordering::Relaxed) {
            self.close("DTLS: the viewer's certificate does not match the fingerprint in its offer".into());
        }
    }
    /// The viewer's audio: only the negotiated payload type, from one SSRC (the first that
    /// decrypted), so a viewer cannot make us keep replay state for many streams.
    fn handle_rtp(&mut self, now: Instant, data: &[u8]) {
        let (Some(pt), Some(srtp)) = (self.audio_in_pt, self.remote_srtp.as_mut()) else {
            self.ignored += 1;
            return;
        };
        if data.len() < 12 || data[1] & 0x7f != pt {
            self.ignored += 1;
            return;
        }
        let ssrc = u32::from_be_bytes([data[8], data[9], data[10], data[11]]);
        if self.audio_in_ssrc.is_some_and(|s| s != ssrc) {
            self.ignored += 1;
            return;
        }
        let Ok(plain) = srtp.decrypt_rtp(data) else {
            self.ignored += 1;
            return;
        };
        self.audio_in_ssrc = Some(ssrc);
        self.rtcp_authenticated_at = Some(now);
        match rtp_payload(&plain) {
            Some((sequence, timestamp, payload)) if !payload.is_empty() && payload.len() <= MAX_AUDIO_IN => {
                self.audio_received += 1;
                self.events.push_back(SessionEvent::Audio { timestamp, sequence, payload: payload.to_vec() });
            }
            _ => self.ignored += 1,
        }
    }

    fn handle_rtcp(&mut self, now: Instant, data: &[u8]) {
        let Some(srtcp) = self.remote_srtp.as_mut() else {
            self.ignored += 1;
            return;
        };
        let Ok(plain) = srtcp.decrypt_rtcp(data) else {
            self.ignored += 1;
            return;
        };
        self.rtcp_authenticated_at = Some(now);
        let mut buf = &plain[..];
        let Ok(packets) = rtc_rtcp::packet::unmarshal(&mut buf) else {
            self.ignored += 1;
            return;
        };
        let mut lost: Vec<u16> = Vec::new();
        let mut estimate_moved = false;
        for p in &packets {
            let any = p.as_any();
            let reports = if let Some(rr) = any.downcast_ref::<rtc_rtcp::receiver_report::ReceiverReport>() {
                Some(&rr.reports)
            } else {
                any.downcast_ref::<rtc_rtcp::sender_report::SenderReport>().map(|sr| &sr.reports)
            };
            for r in reports.into_iter().flatten().filter(|r| r.ssrc == self.ssrc) {
                self.fraction_lost = r.fraction_lost;
                self.total_lost = r.total_lost;
                // RFC 3550 §6.4.1: RTT = arrival − LSR − DLSR.
                if let Some((_, sent)) = self.reports_sent.iter().find(|(mid, _)| *mid == r.last_sender_report) {
                    let held = r.delay as f64 / 65536.0 * 1000.0;
                    let rtt = self.now.saturating_duration_since(*sent).as_secs_f64() * 1000.0 - held;
                    if rtt >= 0.0 {
                        self.rtt_ms = Some(rtt);
                        self.gcc.set_rtt(Duration::from_secs_f64(rtt / 1000.0));
                    }
                }
                if self.twcc_ext.is_none() {
                    // No transport-wide feedback: the loss the viewer reports is what there is.
                    let sent = self.sender.as_ref().map_or(0, |s| s.packets);
                    let (before, _) = self.rr_mark.unwrap_or((sent, r.total_lost));
                    let packets = sent.saturating_sub(before).min(u32::MAX as u64) as u32;
                    self.rr_mark = Some((sent, r.total_lost));
                    if packets > 0 {
                        self.gcc.on_receiver_report_loss(now, r.fraction_lost, packets);
                        estimate_moved = true;
                    }
                }
            }
            if let Some(fb) = any.downcast_ref::<rtc_rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc>() {
                // Browsers report every 25–100 ms; reports beyond the budget are not read, so a
                // viewer flooding them (each can name 2,048 packets) costs a counter.
                let dt = now.saturating_duration_since(self.feedback_at).as_secs_f64();
                self.feedback_at = now;
                self.feedback_tokens = (self.feedback_tokens + dt * FEEDBACK_PER_S).min(FEEDBACK_BURST);
                if self.twcc_ext.is_some() && self.feedback_tokens >= 1.0 {
                    self.feedback_tokens -= 1.0;
                    let results = self.twcc.on_feedback(fb);
                    self.gcc.on_feedback(now, &results);
                    estimate_moved = true;
                } else {
                    self.feedback_refused += 1;
                }
            }
            if let Some(remb) = any
                .downcast_ref::<rtc_rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate>()
            {
                self.gcc.on_remb(remb.bitrate as f64);
                estimate_moved = true;
            }
            if let Some(nack) = any
                .downcast_ref::<rtc_rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack>()
                .filter(|n| n.media_ssrc == self.ssrc)
            {
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
        if estimate_moved {
            self.update_estimate(now, false);
            self.drain_pacer(now);
        }
        if lost.is_empty() {
            return;
        }
        let (Some(sender), Some(_)) = (self.sender.as_mut(), self.selected) else {
            return;
        };
        sender.set_clock(self.now, self.rtt_ms.map(|ms| Duration::from_secs_f64(ms.max(0.0) / 1000.0)));
        let refused = sender.retransmits_refused;
        // Resent packets wait in the pacer like new ones (ahead of them): they count against
        // the same estimate.
        let mut batch = std::mem::take(&mut self.relay_batch);
        batch.clear();
        let n = sender.retransmit_into(&lost, &mut batch, &[]);
        self.queue_batch(now, Class::Retransmission, &batch, 0);
        self.relay_batch = batch;
        self.drain_pacer(now);
        self.retransmitted += n as u64;
        let now_refused = self.sender.as_ref().map_or(0, |s| s.retransmits_refused);
        if refused == 0 && now_refused > 0 {
            // Once per session: the viewer asks for more than a share of the stream again.
            self.events.push_back(SessionEvent::Warning(format!(
                "NACKs ask for more retransmissions than the budget allows ({} in a burst, then {}% \
                 of the stream's packets): the rest are not sent again",
                crate::sender::RTX_BURST,
                crate::sender::RTX_SHARE * 100.0
            )));
        }
    }

    /// Move what the data channels produced: SCTP packets into DTLS records, events out.
    fn pump_data(&mut self, now: Instant) {
        let Some(d) = self.data.as_mut() else { return };
        while let Some(packet) = d.poll_transmit() {
            if self.dtls.write(now, DTLS_KEY, &packet).is_err() {
                self.ignored += 1;
            }
        }
        while let Some(e) = d.poll_event() {
            self.events.push_back(match e {
                DataEvent::Error(m) => SessionEvent::Warning(format!("data channels: {m}")),
                e => SessionEvent::Data(e),
            });
        }
    }

    /// Open a data channel of ours; its id, or why not.
    pub fn data_open(
        &mut self,
        now: Instant,
        label: &str,
        protocol: &str,
        ordered: bool,
        reliability: Reliability,
    ) -> Result<u16, String> {
        self.now = now;
        let Some(d) = self.data.as_mut() else {
            return Err("no data channels: not negotiated, or DTLS is not up yet".into());
        };
        let id = d.open(now, label, protocol, ordered, reliability).map_err(|e| e.to_string())?;
        self.pump_data(now);
        self.pump();
        Ok(id)
    }

    /// Send a message on data channel `id`.
    pub fn data_send(&mut self, now: Instant, id: u16, binary: bool, message: &[u8]) -> Result<(), String> {
        self.now = now;
        let Some(d) = self.data.as_mut() else {
            return Err("no data channels: not negotiated, or DTLS is not up yet".into());
        };
        let sent = d.send(now, id, binary, message).map_err(|e| e.to_string());
        self.pump_data(now);
        self.pump();
        sent
    }

    /// Close data channel `id`.
    pub fn data_close(&mut self, now: Instant, id: u16) {
        self.now = now;
        if let Some(d) = self.data.as_mut() {
            d.close(now, id);
        }
        self.pump_data(now);
        self.pump();
    }

    /// Bytes sent on data channels not yet acknowledged by the viewer.
    pub fn data_buffered(&mut self) -> usize {
        self.data.as_mut().map_or(0, |d| d.buffered_amount())
    }

    fn start_srtp(&mut self, peer: SocketAddr) {
        let Some(state) = self.dtls.get_connection_state(peer) else { return };
        let profile = match state.srtp_protection_profile() {
            SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80 => Profile::AesCm128HmacSha1_80,
            SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm => Profile::AeadAes128Gcm,
            other => {
                self.close(format!("SRTP profile {other:?} unsupported"));
                return;
            }
        };
        let salt_len = if profile == Profile::AeadAes128Gcm { 12 } else { 14 };
        // client key | server key | client salt | server salt (RFC 5764 §4.2).
        let Ok(material) = state.export_keying_material("EXTRACTOR-dtls_srtp", &[], 2 * (16 + salt_len)) else {
            self.close("DTLS-SRTP key export failed".into());
            return;
        };
        let m = material.as_ref();
        let (client_key, server_key) = (&m[0..16], &m[16..32]);
        let (client_salt, server_salt) = (&m[32..32 + salt_len], &m[32 + salt_len..32 + 2 * salt_len]);
        let ((key, salt), (their_key, their_salt)) = if self.dtls_client {
            ((client_key, client_salt), (server_key, server_salt))
        } else {
            ((server_key, server_salt), (client_key, client_salt))
        };
        // The viewer's own keys protect the RTCP it sends us.
        let srtp_profile = match profile {
            Profile::AesCm128HmacSha1_80 => rtc_srtp::protection_profile::ProtectionProfile::Aes128CmHmacSha1_80,
            Profile::AeadAes128Gcm => rtc_srtp::protection_profile::ProtectionProfile::AeadAes128Gcm,
        };
        self.remote_srtp = rtc_srtp::context::Context::new(
            their_key,
            their_salt,
            srtp_profile,
            None,
            None,
            self.provider.crypto(),
        )
        .ok();
        if let Some((ssrc, pt)) = self.audio_out {
            match Sender::opus(profile, key, salt, ssrc, pt, rand_u16(), 1200) {
                Ok(mut s) => {
                    if let Some(id) = self.twcc_ext {
                        s.set_transport_cc(id);
                    }
                    self.audio_sender = Some(s)
                }
                Err(e) => {
                    self.close(e.to_string());
                    return;
                }
            }
        }
        match Sender::new(profile, key, salt, self.ssrc, self.payload_type, rand_u16(), 1200) {
            Ok(mut s) => {
                if let Some(id) = self.twcc_ext {
                    s.set_transport_cc(id);
                }
                if let Some(id) = self.playout_ext {
                    s.set_playout_delay_id(id);
                }
                self.sender = Some(s);
                self.dtls_deadline = None;
                self.events.push_back(SessionEvent::DtlsConnected(profile));
            }
            Err(e) => self.close(e.to_string()),
        }
    }

    /// Drive checks, consent, TURN refreshes, STUN and DTLS retransmissions.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.now = now;
        if self.closed {
            return;
        }
        if self.dtls_started && self.dtls.handle_timeout(DTLS_KEY, now).is_err() {
            self.ignored += 1;
        }
        if self.dtls_deadline.is_some_and(|t| t <= now) {
            let role = if self.dtls_client { "our ClientHello went unanswered" } else { "no ClientHello came" };
            self.close(format!(
                "DTLS: no handshake within {} s of the viewer's nomination ({role})",
                DTLS_TIMEOUT.as_secs()
            ));
            return;
        }
        if let Some(d) = self.data.as_mut() {
            if d.poll_timeout().is_some_and(|t| t <= now) {
                d.handle_timeout(now);
            }
        }
        self.pump_data(now);
        self.ice.handle_timeout(now);
        if self.next_report.is_some_and(|t| t <= now) {
            self.send_report(now);
        }
        self.drain_pacer(now);
        for i in 0..self.turns.len() {
            if self.turns[i].client.handle_timeout(now).is_ok() {
                self.pump_turn(i);
            }
        }
        for i in 0..self.probes.len() {
            let p = &mut self.probes[i];
            if p.done || p.next > now {
                continue;
            }
            if p.tries >= 4 {
                p.done = true;
                let server = p.server;
                self.events.push_back(SessionEvent::Warning(format!("STUN {server}: no answer, no server-reflexive candidate")));
                continue;
            }
            p.tries += 1;
            p.next = now + Duration::from_millis(500 << p.tries);
            let mut m = Message::new();
            if m.build(&[Box::new(BINDING_REQUEST) as Box<dyn Setter>, Box::new(p.tid)]).is_ok() {
                let server = p.server;
                self.out.push(UDP, server, &m.raw);
            }
        }
        self.pump();
    }

    /// When [`Session::handle_timeout`] wants to be called next.
    pub fn poll_timeout(&mut self) -> Option<Instant> {
        if self.closed {
            return None;
        }
        let mut all: Vec<Instant> = Vec::new();
        if self.dtls_started {
            all.extend(self.dtls.poll_timeout(&DTLS_KEY));
        }
        all.extend(self.ice.poll_timeout());
        all.extend(self.dtls_deadline);
        all.extend(self.data.as_ref().and_then(|d| d.poll_timeout()));
        all.extend(self.next_report);
        all.extend(self.pacer.next_time(self.now));
        if !self.video_queue.is_empty() && self.pacer.is_empty() {
            all.push(self.now + crate::pacer::TICK);
        }
        for t in self.turns.iter_mut() {
            all.extend(t.client.poll_timeout());
        }
        all.extend(self.probes.iter().filter(|p| !p.done).map(|p| p.next));
        all.into_iter().min()
    }

    /// The playout delay video frames written from now on carry (None: none): `(0, 0)` asks
    /// the viewer to show each as soon as it is decoded — a catch-up's frames, which arrive
    /// faster than their timestamps say and would otherwise be held back as late. False when
    /// the viewer's offer did not have the extension (frames then carry none).
    pub fn set_playout_delay(&mut self, delay: Option<PlayoutDelay>) -> bool {
        self.playout_now = delay;
        self.playout_ext.is_some()
    }

    /// Send one access unit to the viewer (nothing before ICE and DTLS are up). Returns how many
    /// datagrams were queued.
    pub fn write_frame(&mut self, now: Instant, access_unit: &[u8], rtp_timestamp: u32) -> usize {
        self.write(now, false, access_unit, rtp_timestamp)
    }

    /// Send one Opus frame (48 kHz RTP timestamp) to the viewer, when audio was negotiated.
    /// Returns how many datagrams were queued (0 or 1).
    pub fn write_audio(&mut self, now: Instant, frame: &[u8], rtp_timestamp: u32) -> usize {
        self.write(now, true, frame, rtp_timestamp)
    }

    fn write(&mut self, now: Instant, audio: bool, frame: &[u8], rtp_timestamp: u32) -> usize {
        self.now = now;
        if self.closed || self.selected.is_none() {
            return 0;
        }
        if audio {
            if self.audio_sender.is_none() {
                return 0;
            }
            let n = self.packetize(now, true, frame, rtp_timestamp, now, None);
            if n > 0 {
                self.last_audio = Some((rtp_timestamp, now));
                if self.next_report.is_none() {
                    self.next_report = Some(now + Duration::from_millis(500));
                }
            }
            self.drain_pacer(now);
            return n;
        }
        if self.sender.is_none() {
            return 0;
        }
        if self.video_queue.front().is_some_and(|f| now.saturating_duration_since(f.2) > crate::pacer::MAX_QUEUE_DELAY) {
            // Frames waiting longer than this would only turn into latency: they go, unsent (no
            // sequence number was spent on them, so the viewer sees no gap to ask about), and
            // video resumes at the next IDR (the host is asked for one, and may switch to a
            // lighter rendition).
            while let Some((buf, ..)) = self.video_queue.pop_front() {
                self.frames_dropped += 1;
                self.recycle_frame(buf);
            }
            self.queue_drops += 1;
            self.awaiting_keyframe = true;
            // The estimate first: the host deciding on a lighter rendition reads it.
            self.update_estimate(now, true);
            self.events.push_back(SessionEvent::CongestionKeyframeRequest);
        }
        if self.awaiting_keyframe {
            if !crate::h264::has_idr(frame) {
                self.frames_dropped += 1;
                return 0;
            }
            self.awaiting_keyframe = false;
        }
        self.last_frame = Some((rtp_timestamp, now));
        if self.next_report.is_none() {
            self.next_report = Some(now + Duration::from_millis(500));
        }
        let mut n = 0;
        if self.video_queue.is_empty() && !self.pacer.has_video() {
            // Nothing waits: packetized now, sent as far as the pacer allows.
            n = self.packetize(now, false, frame, rtp_timestamp, now, self.playout_now);
        } else if self.video_queue.len() < MAX_QUEUED_FRAMES {
            let mut buf = self.frame_spare.pop().unwrap_or_default();
            buf.clear();
            buf.extend_from_slice(frame);
            self.video_queue.push_back((buf, rtp_timestamp, now, self.playout_now));
        } else {
            self.frames_dropped += 1;
        }
        self.drain_pacer(now);
        if self.pacer.is_empty() && self.video_queue.is_empty() {
            // A probe goes between frames, when nothing else waits.
            self.maybe_probe(now);
            self.drain_pacer(now);
        } else {
            // Video held back by the estimate: the probe rides on it.
            self.maybe_media_probe(now);
        }
        n
    }

    /// Packetize and protect a frame into the pacer (its datagrams stamped as queued at `at`).
    fn packetize(
        &mut self,
        now: Instant,
        audio: bool,
        frame: &[u8],
        rtp_timestamp: u32,
        at: Instant,
        playout: Option<PlayoutDelay>,
    ) -> usize {
        let sender = if audio { self.audio_sender.as_mut() } else { self.sender.as_mut() };
        let Some(sender) = sender else { return 0 };
        if !audio {
            sender.set_playout_delay(playout);
        }
        sender.set_clock(now, None);
        sender.transport_sequence = self.transport_sequence;
        let mut batch = std::mem::take(&mut self.relay_batch);
        batch.clear();
        let written = sender.write_frame_into(frame, rtp_timestamp, &mut batch, &[]);
        self.transport_sequence = sender.transport_sequence;
        if written.is_ok() {
            self.queue_batch(at, if audio { Class::Audio } else { Class::Video }, &batch, 0);
        }
        self.relay_batch = batch;
        written.unwrap_or(0)
    }

    fn recycle_frame(&mut self, buf: Vec<u8>) {
        if self.frame_spare.len() < 8 {
            self.frame_spare.push(buf);
        }
    }

    /// Queue each datagram of a sender's batch (`[u32 LE length][datagram]…`) in the pacer.
    fn queue_batch(&mut self, now: Instant, class: Class, batch: &[u8], probe: u32) {
        let mut off = 0;
        while off + 4 <= batch.len() {
            let len = u32::from_le_bytes(batch[off..off + 4].try_into().unwrap()) as usize;
            self.pacer.push(now, class, &batch[off + 4..off + 4 + len], probe);
            off += 4 + len;
        }
    }

    /// Send what the pacer lets out now, remembering each transport-wide number's send time.
    fn drain_pacer(&mut self, now: Instant) {
        let Some((base, to)) = self.selected else { return };
        loop {
            if !self.pacer.has_video() && (self.pacer.wants_media() || self.pacer.has_tokens(now)) {
                // The next waiting frame is packetized only when its turn comes.
                if let Some((buf, ts, at, playout)) = self.video_queue.pop_front() {
                    self.packetize(now, false, &buf, ts, at, playout);
                    self.recycle_frame(buf);
                }
            }
            let Some((class, data, probe)) = self.pacer.pop(now) else { break };
            if let Some(seq) = self.twcc_ext.and_then(|id| crate::twcc::read_extension(&data, id)) {
                self.twcc.on_sent(seq, now, data.len(), probe);
            }
            if class != Class::Probe {
                self.sent_window.push_back((now, data.len()));
                self.sent_window_bytes += data.len();
            }
            self.send(base, to, &data);
            self.pacer.recycle(data);
        }
        if self.pacer.wants_media() && self.video_queue.is_empty() {
            self.pacer.end_media_probe();
        }
        if let Some((id, packets)) = self.pacer.finished_probe() {
            self.gcc.probe_sent(id, packets);
        }
        while let Some(&(t, n)) = self.sent_window.front() {
            if now.saturating_duration_since(t) <= Duration::from_secs(1) {
                break;
            }
            self.sent_window.pop_front();
            self.sent_window_bytes -= n;
        }
    }

    /// A bandwidth probe when one is due (padding at a multiple of the estimate, [`crate::gcc`]).
    fn maybe_probe(&mut self, now: Instant) {
        if self.twcc_ext.is_none() {
            return;
        }
        let sending = self.sent_window_bytes as f64 * 8.0;
        let Some((id, rate)) = self.gcc.probe_due(now, sending) else { return };
        let Some(sender) = self.sender.as_mut() else { return };
        let per = crate::sender::PROBE_PADDING + 30;
        let count = ((rate / 8.0 * crate::gcc::PROBE_DURATION.as_secs_f64()) / per as f64).ceil().max(5.0) as usize;
        sender.transport_sequence = self.transport_sequence;
        let mut batch = std::mem::take(&mut self.relay_batch);
        batch.clear();
        if sender.write_padding_into(count.min(400), &mut batch, &[]).is_ok() {
            self.transport_sequence = sender.transport_sequence;
            self.pacer.set_probe_rate(rate);
            self.queue_batch(now, Class::Probe, &batch, id);
            self.gcc.probe_sent(id, count.min(400));
        }
        self.relay_batch = batch;
    }

    /// A probe carried by the video waiting to be sent, when one is due and enough waits to carry
    /// it ([`crate::pacer::Pacer::start_media_probe`]).
    fn maybe_media_probe(&mut self, now: Instant) {
        if self.twcc_ext.is_none() || self.pacer.probing() || self.sender.is_none() {
            return;
        }
        let waiting = self.pacer.video_bytes() + self.video_queue.iter().map(|f| f.0.len()).sum::<usize>();
        let probe_bytes = |rate: f64| (rate / 8.0 * crate::gcc::PROBE_DURATION.as_secs_f64()).max(MEDIA_PROBE_MIN_BYTES);
        let most = (crate::gcc::PROBE_FACTOR * self.gcc.estimate()).min(crate::gcc::PROBE_CEILING_BPS);
        if (waiting as f64) < probe_bytes(most) {
            return;
        }
        let sending = self.sent_window_bytes as f64 * 8.0;
        let Some((id, rate)) = self.gcc.probe_due(now, sending) else { return };
        self.pacer.start_media_probe(now, id, rate, probe_bytes(rate) as usize);
        self.drain_pacer(now);
    }

    /// The estimate moved: pace at it, and tell the host when it moved notably.
    fn update_estimate(&mut self, now: Instant, force: bool) {
        let e = self.gcc.estimate();
        self.pacer.set_rate(e);
        let due = match self.estimate_reported {
            None => true,
            Some((last, at)) => {
                force
                    || ((e - last).abs() >= ESTIMATE_EVENT_CHANGE * last
                        && now.saturating_duration_since(at) >= ESTIMATE_EVENT_GAP)
            }
        };
        if due {
            self.estimate_reported = Some((e, now));
            self.events.push_back(SessionEvent::Estimate(e as u64));
        }
    }

    /// How long the oldest frame waiting for the pacer has waited.
    pub fn video_delay(&self) -> Duration {
        self.video_queue.front().map_or(Duration::ZERO, |f| self.now.saturating_duration_since(f.2))
    }

    /// Media bytes sent over the last second.
    pub fn sending_bps(&self) -> f64 {
        self.sent_window_bytes as f64 * 8.0
    }

    /// An RTCP sender report (with our CNAME, RFC 3550 §6.1) on the selected pair; one a second.
    fn send_report(&mut self, now: Instant) {
        self.next_report = Some(now + Duration::from_secs(1));
        let Some((base, to)) = self.selected else { return };
        let wall = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        // NTP: seconds since 1900 in the high 32 bits, the fraction in the low 32.
        let secs = wall.as_secs() + 2_208_988_800;
        let frac = ((wall.subsec_nanos() as u64) << 32) / 1_000_000_000;
        let ntp = (secs << 32) | frac;
        // One wall-clock instant for both streams: each maps it to its own RTP time from its
        // latest frame, so a browser lines audio and video up (RFC 3550 §6.4.1).
        for audio in [false, true] {
            let (sender, last, rate) = if audio {
                (self.audio_sender.as_mut(), self.last_audio, 48_000.0)
            } else {
                (self.sender.as_mut(), self.last_frame, 90_000.0)
            };
            let (Some(sender), Some((ts, at))) = (sender, last) else { continue };
            let since = now.saturating_duration_since(at).as_secs_f64();
            let sr = rtc_rtcp::sender_report::SenderReport {
                ssrc: sender.ssrc(),
                ntp_time: ntp,
                rtp_time: ts.wrapping_add((since * rate) as u32),
                // RFC 3550 §6.4.1: every RTP data packet, padding-only ones included.
                packet_count: (sender.packets + sender.padding_packets) as u32,
                octet_count: sender.payload_bytes as u32,
                ..Default::default()
            };
            let sdes = rtc_rtcp::source_description::SourceDescription {
                chunks: vec![rtc_rtcp::source_description::SourceDescriptionChunk {
                    source: sender.ssrc(),
                    items: vec![rtc_rtcp::source_description::SourceDescriptionItem {
                        sdes_type: rtc_rtcp::source_description::SdesType::SdesCname,
                        text: bytes::Bytes::from_static(b"kvs-master"),
                    }],
                }],
            };
            use rtc_shared::marshal::Marshal;
            let (Ok(a), Ok(b)) = (sr.marshal(), sdes.marshal()) else { continue };
            let plain = [&a[..], &b[..]].concat();
            if let Ok(protected) = sender.protect_rtcp(&plain) {
                if !audio {
                    self.reports_sent.push_back(((ntp >> 16) as u32, now));
                    if self.reports_sent.len() > 16 {
                        self.reports_sent.pop_front();
                    }
                }
                self.send(base, to, &protected);
            }
        }
    }

    /// Next datagram to send: host transport, destination, bytes.
    pub fn poll_transmit(&mut self) -> Option<(Via, SocketAddr, Vec<u8>)> {
        self.out.pop_datagram()
    }

    /// Next event.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }
}

/// An RTP packet's sequence number, timestamp and payload (after CSRCs, header extension and
/// padding), or None when the header does not hold together.
fn rtp_payload(p: &[u8]) -> Option<(u16, u32, &[u8])> {
    if p.len() < 12 || p[0] >> 6 != 2 {
        return None;
    }
    let sequence = u16::from_be_bytes([p[2], p[3]]);
    let timestamp = u32::from_be_bytes([p[4], p[5], p[6], p[7]]);
    let mut start = 12 + 4 * (p[0] & 0x0f) as usize;
    if p[0] & 0x10 != 0 {
        let ext = p.get(start + 2..start + 4)?;
        start += 4 + 4 * u16::from_be_bytes([ext[0], ext[1]]) as usize;
    }
    let mut end = p.len();
    if p[0] & 0x20 != 0 {
        end = end.checked_sub(*p.last()? as usize)?;
    }
    (start <= end).then(|| (sequence, timestamp, &p[start..end]))
}

/// One message cut from a TURN byte stream.
enum Frame {
    Whole(Vec<u8>),
    Partial,
    Garbage,
}

/// Cut the next STUN message or ChannelData (padded to 4 bytes on streams, RFC 8656 §12.5) from
/// the front of `buf`.
fn next_frame(buf: &mut Vec<u8>) -> Frame {
    if buf.len() < 4 {
        return Frame::Partial;
    }
    let body = u16::from_be_bytes([buf[2], buf[3]]) as usize;
    let (len, keep) = match buf[0] {
        0..=0x3f => (20 + body, 20 + body),
        0x40..=0x7f => ((4 + body + 3) & !3, 4 + body),
        _ => return Frame::Garbage,
    };
    if buf.len() < len {
        return Frame::Partial;
    }
    let frame = buf[..keep].to_vec();
    buf.drain(..len);
    Frame::Whole(frame)
}

fn rand_u16() -> u16 {
    let t = TransactionId::new();
    u16::from_le_bytes([t.0[0], t.0[1]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc_srtp::context::Context;
    use rtc_srtp::protection_profile::ProtectionProfile;
    use std::time::Duration;
    use rtc_stun::integrity::MessageIntegrity;
    use rtc_stun::message::BINDING_SUCCESS;

    const PWD: &str = "serverpassword0123456789";

    fn cert() -> Certificate {
        generate_certificate().unwrap()
    }

    fn digest(c: &Certificate) -> Vec<u8> {
        parse_fingerprint(&fingerprint(c).unwrap()).unwrap()
    }

    fn session(viewer_cert: &Certificate, ssrc: u32) -> Session {
        session_gcm(viewer_cert, ssrc, true)
    }

    fn session_gcm(viewer_cert: &Certificate, ssrc: u32, allow_aes_gcm: bool) -> Session {
        session_as(viewer_cert, ssrc, allow_aes_gcm, false)
    }

    fn session_as(viewer_cert: &Certificate, ssrc: u32, allow_aes_gcm: bool, dtls_client: bool) -> Session {
        let config = SessionConfig {
            certificate: cert(),
            local_ufrag: "srv".into(),
            local_pwd: PWD.into(),
            remote_ufrag: "cli".into(),
            remote_pwd: "clientpassword0123456789".into(),
            remote_fingerprint: digest(viewer_cert),
            ssrc,
            payload_type: 96,
            audio_out: Some((ssrc ^ 1, 111)),
            audio_in_pt: Some(111),
            sctp: Some((5000, 65536)),
            host_allowed: true,
            host_addr: Some("127.0.0.1:6000".parse().unwrap()),
            allow_aes_gcm,
            connect_timeout: None,
            twcc_ext: Some(3),
            start_bps: None,
            dtls_client,
            playout_ext: None,
        };
        Session::new(config, Instant::now()).unwrap()
    }

    fn binding_request(provider: &dyn RTCCryptoProvider, user: &str, pwd: &str) -> Vec<u8> {
        check(provider, user, pwd, true)
    }

    /// A viewer's connectivity check, nominating or not.
    fn check(provider: &dyn RTCCryptoProvider, user: &str, pwd: &str, nominate: bool) -> Vec<u8> {
        ice::viewer_check(provider, user, pwd, nominate)
    }

    /// Everything queued for `to`.
    fn drain(s: &mut Session) -> Vec<(Via, SocketAddr, Vec<u8>)> {
        std::iter::from_fn(|| s.poll_transmit()).collect()
    }

    #[test]
    fn remote_candidates_are_bounded() {
        let mut s = session(&cert(), 1);
        let now = Instant::now();
        for i in 0..MAX_REMOTE_CANDIDATES {
            let line = format!("candidate:{i} 1 udp 2122260223 127.0.0.1 {} typ host", 20000 + i);
            s.add_remote_candidate(now, &line).unwrap();
        }
        // A known one again is fine; a new one is not used, and says why.
        s.add_remote_candidate(now, "candidate:0 1 udp 2122260223 127.0.0.1 20000 typ host").unwrap();
        let more = s.add_remote_candidate(now, "candidate:x 1 udp 2122260223 127.0.0.1 30000 typ host");
        match more {
            Err(CandidateError::Ignored(why)) => assert!(why.contains("64 candidates"), "{why}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn fingerprints_round_trip_and_bad_ones_are_named() {
        let c = cert();
        let text = fingerprint(&c).unwrap();
        assert!(text.starts_with("sha-256 "));
        assert_eq!(parse_fingerprint(&format!("a=fingerprint:{text}")).unwrap().len(), 32);
        assert!(parse_fingerprint("sha-1 AB:CD").unwrap_err().0.contains("sha-1"));
        assert!(parse_fingerprint("sha-256 AB:CD").unwrap_err().0.contains("32"));
        assert!(parse_fingerprint("nonsense").is_err());
        // One certificate per process: exported once, read by every session.
        let again = certificate_from_pem(&certificate_to_pem(&c).unwrap()).unwrap();
        assert_eq!(fingerprint(&again).unwrap(), text);
    }

    #[test]
    fn cuts_stun_and_padded_channel_data_from_a_stream() {
        let mut stun = vec![0u8, 1, 0, 4, 0x21, 0x12, 0xa4, 0x42];
        stun.extend_from_slice(&[0; 12]);
        stun.extend_from_slice(&[1, 2, 3, 4]);
        let chan = vec![0x40, 0, 0, 5, 9, 9, 9, 9, 9, 0, 0, 0];
        let mut buf = Vec::new();
        buf.extend_from_slice(&stun[..10]);
        assert!(matches!(next_frame(&mut buf), Frame::Partial));
        buf.extend_from_slice(&stun[10..]);
        buf.extend_from_slice(&chan);
        match next_frame(&mut buf) {
            Frame::Whole(f) => assert_eq!(f, stun),
            _ => panic!("STUN"),
        }
        match next_frame(&mut buf) {
            Frame::Whole(f) => assert_eq!(f, chan[..9], "ChannelData without its padding"),
            _ => panic!("ChannelData"),
        }
        assert!(buf.is_empty());
        buf.extend_from_slice(&[0xff, 0, 0, 0]);
        assert!(matches!(next_frame(&mut buf), Frame::Garbage));
    }

    #[test]
    fn answers_checks_with_our_password_and_follows_the_nomination() {
        let provider = rtc_dtls::crypto_provider::default_provider().unwrap();
        let mut s = session(&cert(), 1);
        let viewer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let now = Instant::now();
        // Wrong password: ignored, no answer.
        s.handle_datagram(now, UDP, viewer, &binding_request(provider.as_ref(), "srv:cli", "wrong"));
        assert!(s.poll_transmit().is_none());
        // Right one: a success response with our integrity and the viewer's address, and a
        // triggered check of our own.
        s.handle_datagram(now, UDP, viewer, &binding_request(provider.as_ref(), "srv:cli", PWD));
        let out = drain(&mut s);
        assert_eq!(out.len(), 2);
        let (via, to, raw) = out[0].clone();
        assert_eq!((via, to), (UDP, viewer));
        let mut r = Message::new();
        r.raw = raw;
        r.decode().unwrap();
        assert_eq!(r.typ, BINDING_SUCCESS);
        MessageIntegrity::check(&mut r, PWD.as_bytes(), provider.crypto()).unwrap();
        let mut mapped = XorMappedAddress::default();
        mapped.get_from(&r).unwrap();
        assert_eq!(SocketAddr::new(mapped.ip, mapped.port), viewer);
        assert_eq!(s.poll_event(), Some(SessionEvent::IceConnected("host -> prflx 127.0.0.1:5000".into())));
        assert_eq!(s.selected(), Some((Base::Host, viewer)));
        // Garbage is counted, never fatal.
        let before = s.ignored;
        s.handle_datagram(now, UDP, viewer, &[0xff, 1, 2]);
        s.handle_datagram(now, UDP, viewer, &[22, 254, 253, 0, 0]);
        s.handle_datagram(now, 7, NO_ADDR, &[1, 2, 3]);
        assert!(s.ignored >= before + 2);
        // Candidates: used, ignored with a reason, or malformed.
        assert!(s.add_remote_candidate(now, "candidate:1 1 udp 2122260223 127.0.0.1 5002 typ host").is_ok());
        assert!(matches!(s.add_remote_candidate(now, "candidate:1 1 udp 1 x.local 5 typ host"), Err(CandidateError::Ignored(_))));
        assert!(matches!(s.add_remote_candidate(now, "{\"candidate\":1}"), Err(CandidateError::Malformed(_))));
    }

    /// Run a DTLS handshake between `s` and a browser-like client using `client_cert`.
    fn handshake(s: &mut Session, client_cert: Certificate, moved: bool) -> (Endpoint, bool) {
        handshake_with(s, client_cert, moved, SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80)
    }

    fn handshake_with(
        s: &mut Session,
        client_cert: Certificate,
        moved: bool,
        profile: SrtpProtectionProfile,
    ) -> (Endpoint, bool) {
        let provider = rtc_dtls::crypto_provider::default_provider().unwrap();
        let viewer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let server: SocketAddr = "127.0.0.1:6000".parse().unwrap();
        let now = Instant::now();
        s.handle_datagram(now, UDP, viewer, &binding_request(provider.as_ref(), "srv:cli", PWD));
        drain(s);
        let client_config = ConfigBuilder::default()
            .with_crypto_provider(provider.clone())
            .with_certificates(vec![client_cert])
            .with_srtp_protection_profiles(vec![profile])
            .with_extended_master_secret(ExtendedMasterSecretType::Require)
            .with_insecure_skip_verify(true)
            .build(true, Some(server))
            .unwrap();
        let mut client = Endpoint::new(viewer, TransportProtocol::UDP, None);
        client.connect(now, server, Arc::new(client_config), None).unwrap();
        let mut client_done = false;
        // Mid-handshake the viewer's packets may start arriving from another address (another
        // relay or local interface) it checked first: the one association carries on, replies
        // follow the packets.
        let other: SocketAddr = "127.0.0.1:5001".parse().unwrap();
        if moved {
            s.handle_datagram(now, UDP, other, &check(provider.as_ref(), "srv:cli", PWD, false));
            drain(s);
        }
        let mut sent = 0;
        for _ in 0..50 {
            let mut from = viewer;
            while let Some(t) = client.poll_transmit() {
                from = if moved && sent >= 1 { other } else { viewer };
                sent += 1;
                s.handle_datagram(now, UDP, from, &t.message);
            }
            let mut any = false;
            for (_, to, d) in drain(s) {
                any = true;
                assert_eq!(to, from, "DTLS replies go where the viewer's packets came from");
                if let Ok(events) = client.read(now, server, None, BytesMut::from(&d[..])) {
                    client_done |= events.iter().any(|e| matches!(e, EndpointEvent::HandshakeComplete));
                }
            }
            if (client_done && s.sender.is_some()) || (!any && client.poll_transmit().is_none() && sent > 0) {
                break;
            }
        }
        (client, client_done)
    }

    #[test]
    fn a_viewer_that_never_shows_up_ends_the_session() {
        let mut s = session(&cert(), 1);
        let t0 = s.now;
        let wake = s.poll_timeout().expect("a deadline even with nothing received");
        assert!(wake <= t0 + ice::CONNECT_TIMEOUT);
        s.handle_timeout(t0 + ice::CONNECT_TIMEOUT);
        let events: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
        assert!(matches!(events.last(), Some(SessionEvent::Closed(r)) if r.contains("ICE failed")), "{events:?}");
    }

    #[test]
    fn aes_gcm_only_when_allowed() {
        let viewer = cert();
        let mut s = session_gcm(&viewer, 1, true);
        let (_, done) = handshake_with(&mut s, viewer.clone(), false, SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm);
        assert!(done);
        let events: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
        assert!(events.contains(&SessionEvent::DtlsConnected(Profile::AeadAes128Gcm)), "{events:?}");
        // Not allowed: a viewer offering only AES-GCM cannot agree on a profile.
        let mut s = session_gcm(&viewer, 1, false);
        let (_, done) = handshake_with(&mut s, viewer, false, SrtpProtectionProfile::Srtp_Aead_Aes_128_Gcm);
        assert!(!done && s.sender.is_none());
    }

    #[test]
    fn a_viewer_whose_certificate_is_not_in_its_offer_is_refused() {
        let named = cert();
        let mut s = session(&named, 1);
        let (_, _) = handshake(&mut s, cert(), false);
        assert!(s.sender.is_none(), "no SRTP keys");
        let events: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
        assert!(
            events.iter().any(|e| matches!(e, SessionEvent::Closed(r) if r.contains("does not match the fingerprint"))),
            "{events:?}"
        );
        assert_eq!(s.write_frame(Instant::now(), &[0, 0, 0, 1, 0x65, 1], 0), 0, "nothing is sent");
    }

    #[test]
    fn dtls_handshake_gives_srtp_keys_the_viewer_can_decrypt_with() {
        let provider = rtc_dtls::crypto_provider::default_provider().unwrap();
        let viewer_cert = cert();
        let mut s = session(&viewer_cert, 0xabc);
        let viewer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let server: SocketAddr = "127.0.0.1:6000".parse().unwrap();
        let now = Instant::now();
        let (client, client_done) = handshake(&mut s, viewer_cert, true);
        assert!(client_done, "the viewer finished its handshake");
        assert!(matches!(s.poll_event(), Some(SessionEvent::IceConnected(_))));
        assert_eq!(s.poll_event(), Some(SessionEvent::DtlsConnected(Profile::AesCm128HmacSha1_80)));
        assert!(s.dtls.get_connection_state(DTLS_KEY).is_some(), "one association, keyed by DTLS_KEY");
        // The viewer derives the keys on its side and decrypts our media.
        let state = client.get_connection_state(server).unwrap();
        let material = state.export_keying_material("EXTRACTOR-dtls_srtp", &[], 60).unwrap();
        let m = material.as_ref();
        let mut rx = Context::new(&m[16..32], &m[46..60], ProtectionProfile::Aes128CmHmacSha1_80, None, None, provider.crypto()).unwrap();
        let au = [0, 0, 0, 1, 0x65, 0x88, 0x84, 0x21, 0xa0];
        assert_eq!(s.write_frame(now, &au, 3000), 1);
        let (_, to, d) = s.poll_transmit().unwrap();
        assert_eq!(to, viewer, "media goes to the nominated address");
        // Then the first bandwidth probe: padding only (P bit), on the video SSRC.
        let probe: Vec<Vec<u8>> = std::iter::from_fn(|| s.poll_transmit()).map(|(_, _, d)| d).collect();
        assert!(!probe.is_empty() && probe.iter().all(|p| p[0] & 0x20 != 0), "{} probe packets", probe.len());
        let plain = rx.decrypt_rtp(&d).expect("the viewer decrypts it");
        assert_eq!(&plain[12..17], &[0xbe, 0xde, 0, 1, 0x31], "the transport-wide number (extension id 3)");
        assert_eq!(&plain[20..], &au[4..]);

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
        s.handle_datagram(now, UDP, viewer, &protected);
        let (_, to, again) = std::iter::from_fn(|| s.poll_transmit())
            .find(|(_, _, d)| d[0] & 0x20 == 0)
            .expect("the NACKed packet is sent again");
        assert_eq!(to, viewer);
        assert_eq!(again, d, "byte for byte");
        assert_eq!(s.poll_event(), Some(SessionEvent::KeyframeRequest));
        assert_eq!((s.nacks, s.keyframe_requests, s.retransmitted), (1, 1, 1));
        // Transport-wide feedback: read within a budget, so a flood of reports costs a counter.
        let fb = rtc_rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc {
            sender_ssrc: 1,
            media_ssrc: 0xabc,
            base_sequence_number: 0,
            packet_status_count: 1,
            packet_chunks: vec![rtc_rtcp::transport_feedbacks::transport_layer_cc::PacketStatusChunk::RunLengthChunk(
                rtc_rtcp::transport_feedbacks::transport_layer_cc::RunLengthChunk {
                    packet_status_symbol:
                        rtc_rtcp::transport_feedbacks::transport_layer_cc::SymbolTypeTcc::PacketNotReceived,
                    run_length: 1,
                    ..Default::default()
                },
            )],
            ..Default::default()
        };
        for i in 0..50u8 {
            let mut one = fb.clone();
            one.fb_pkt_count = i;
            s.handle_datagram(now, UDP, viewer, &tx.encrypt_rtcp(&one.marshal().unwrap()).unwrap());
        }
        assert_eq!(s.feedback_refused, 50 - FEEDBACK_BURST as u64);
        // Forged RTCP (wrong keys) is ignored.
        let before = s.ignored;
        s.handle_datagram(now, UDP, viewer, &[0x81, 205, 0, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 0]);
        assert_eq!(s.ignored, before + 1);

        // A sender report half a second after the first frame, with our CNAME.
        let t_sr = now + Duration::from_millis(600);
        s.handle_timeout(t_sr);
        let (_, to, protected_sr) = std::iter::from_fn(|| s.poll_transmit())
            .find(|(_, _, d)| d.len() > 1 && d[1] == 200)
            .expect("a sender report");
        assert_eq!(to, viewer);
        let mut rtcp_rx = Context::new(&m[16..32], &m[46..60], ProtectionProfile::Aes128CmHmacSha1_80, None, None, provider.crypto()).unwrap();
        let plain_sr = rtcp_rx.decrypt_rtcp(&protected_sr).expect("the viewer decrypts it");
        let packets = rtc_rtcp::packet::unmarshal(&mut &plain_sr[..]).unwrap();
        let sr = packets[0].as_any().downcast_ref::<rtc_rtcp::sender_report::SenderReport>().expect("SR first");
        let padding = s.sender.as_ref().unwrap().padding_packets;
        assert!(padding >= 5, "the first probe");
        assert_eq!((sr.ssrc, sr.packet_count as u64), (0xabc, 1 + padding));
        assert_eq!(sr.octet_count, (au.len() - 4) as u32, "payload octets");
        assert_eq!(sr.rtp_time.wrapping_sub(3000), 54_000, "the frame's timestamp + 600 ms at 90 kHz");
        assert!(packets[1].as_any().downcast_ref::<rtc_rtcp::source_description::SourceDescription>().is_some());
        // The viewer's receiver report, sent 700 ms later after holding the SR 500 ms: RTT 200 ms.
        let rr = rtc_rtcp::receiver_report::ReceiverReport {
            ssrc: 1,
            reports: vec![rtc_rtcp::reception_report::ReceptionReport {
                ssrc: 0xabc,
                fraction_lost: 12,
                total_lost: 3,
                last_sender_report: (sr.ntp_time >> 16) as u32,
                delay: 32768,
                ..Default::default()
            }],
            ..Default::default()
        };
        let protected_rr = tx.encrypt_rtcp(&rr.marshal().unwrap()).unwrap();
        s.handle_datagram(t_sr + Duration::from_millis(700), UDP, viewer, &protected_rr);
        let rtt = s.rtt_ms.expect("an RTT");
        assert!((rtt - 200.0).abs() < 1.0, "rtt {rtt}");
        assert_eq!((s.fraction_lost, s.total_lost), (12, 3));
    }

    #[test]
    fn audio_both_ways_on_the_same_keys_and_one_clock_for_both_sender_reports() {
        let provider = rtc_dtls::crypto_provider::default_provider().unwrap();
        let viewer_cert = cert();
        let mut s = session(&viewer_cert, 0xabc);
        let viewer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let server: SocketAddr = "127.0.0.1:6000".parse().unwrap();
        let now = Instant::now();
        let (client, _) = handshake(&mut s, viewer_cert, false);
        while s.poll_event().is_some() {}
        let state = client.get_connection_state(server).unwrap();
        let material = state.export_keying_material("EXTRACTOR-dtls_srtp", &[], 60).unwrap();
        let m = material.as_ref();
        let ctx = |key: &[u8], salt: &[u8]| {
            Context::new(key, salt, ProtectionProfile::Aes128CmHmacSha1_80, None, None, provider.crypto()).unwrap()
        };
        let mut rx = ctx(&m[16..32], &m[46..60]);
        let mut tx = ctx(&m[0..16], &m[32..46]);

        // Ours: one packet per Opus frame, its own SSRC and payload type, the frame as it is.
        let opus = [0xfc, 0xff, 0xfe, 0x01, 0x02];
        assert_eq!(s.write_audio(now, &opus, 48_000), 1);
        let (_, to, d) = s.poll_transmit().unwrap();
        assert_eq!(to, viewer);
        let plain = rx.decrypt_rtp(&d).expect("the viewer decrypts our audio");
        assert_eq!(plain[1] & 0x7f, 111);
        assert_eq!(u32::from_be_bytes(plain[8..12].try_into().unwrap()), 0xabc ^ 1);
        assert_eq!(u32::from_be_bytes(plain[4..8].try_into().unwrap()), 48_000);
        assert_eq!(&plain[20..], &opus, "after the transport-wide number");
        assert_eq!(s.write_audio(now, &[], 48_960), 0, "an empty frame is not sent");
        assert_eq!(s.write_audio(now, &[1; 1300], 48_960), 0, "nor one that does not fit a packet");
        assert_eq!(s.audio_packets_sent(), 1);
        // Video at the same instant, 90 kHz.
        let au = [0, 0, 0, 1, 0x65, 0x88, 0x84, 0x21, 0xa0];
        assert_eq!(s.write_frame(now, &au, 90_000), 1);
        while s.poll_transmit().is_some() {}

        // Sender reports for both, one NTP instant, each RTP time advanced by the same 600 ms.
        s.handle_timeout(now + Duration::from_millis(600));
        let mut rtcp_rx = ctx(&m[16..32], &m[46..60]);
        let reports: Vec<(u32, u64, u32)> = std::iter::from_fn(|| s.poll_transmit())
            .filter(|(_, _, d)| d.len() > 1 && d[1] == 200)
            .map(|(_, _, d)| {
                let p = rtcp_rx.decrypt_rtcp(&d).unwrap();
                let packets = rtc_rtcp::packet::unmarshal(&mut &p[..]).unwrap();
                let sr = packets[0].as_any().downcast_ref::<rtc_rtcp::sender_report::SenderReport>().unwrap();
                (sr.ssrc, sr.ntp_time, sr.rtp_time)
            })
            .collect();
        assert_eq!(reports.len(), 2, "{reports:?}");
        assert_eq!(reports[0].1, reports[1].1, "one NTP time for both");
        assert_eq!((reports[0].0, reports[0].2), (0xabc, 90_000 + 54_000));
        assert_eq!((reports[1].0, reports[1].2), (0xabc ^ 1, 48_000 + 28_800));

        // Theirs: the viewer's audio decrypted and handed over with its timestamp; with a header
        // extension and padding.
        let rtp = |ssrc: u32, pt: u8, seq: u16, ts: u32, payload: &[u8]| {
            let mut p = vec![0x90 | 0x20, pt, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
            p[2..4].copy_from_slice(&seq.to_be_bytes());
            p[4..8].copy_from_slice(&ts.to_be_bytes());
            p[8..12].copy_from_slice(&ssrc.to_be_bytes());
            p.extend_from_slice(&[0xbe, 0xde, 0, 1, 0x10, 0xff, 0, 0]);
            p.extend_from_slice(payload);
            p.extend_from_slice(&[0, 0, 3]);
            p
        };
        let later = now + Duration::from_millis(700);
        s.handle_datagram(later, UDP, viewer, &tx.encrypt_rtp(&rtp(77, 111, 9, 960, b"hello")).unwrap());
        assert_eq!(
            s.poll_event(),
            Some(SessionEvent::Audio { timestamp: 960, sequence: 9, payload: b"hello".to_vec() })
        );
        let ignored = s.ignored;
        // Another payload type, another SSRC, wrong keys, an unverified address: all ignored.
        s.handle_datagram(later, UDP, viewer, &tx.encrypt_rtp(&rtp(77, 96, 10, 1920, b"video")).unwrap());
        s.handle_datagram(later, UDP, viewer, &tx.encrypt_rtp(&rtp(78, 111, 1, 1920, b"other")).unwrap());
        s.handle_datagram(later, UDP, viewer, &rx.encrypt_rtp(&rtp(77, 111, 11, 1920, b"forged")).unwrap());
        let stranger: SocketAddr = "127.0.0.1:5999".parse().unwrap();
        s.handle_datagram(later, UDP, stranger, &tx.encrypt_rtp(&rtp(77, 111, 12, 2880, b"moved")).unwrap());
        assert_eq!(s.poll_event(), None);
        assert_eq!(s.ignored, ignored + 4);
        assert_eq!(s.audio_received, 1);
        assert_eq!(s.authenticated_at(), Some(later), "decrypted audio proves the viewer is there");
    }

    #[test]
    fn data_channels_over_the_dtls_association() {
        use crate::data::{DataChannels, DataEvent, Reliability, SCTP_PORT};
        let viewer_cert = cert();
        let mut s = session(&viewer_cert, 0xabc);
        let viewer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let server: SocketAddr = "127.0.0.1:6000".parse().unwrap();
        let (mut client, done) = handshake(&mut s, viewer_cert, false);
        assert!(done);
        while s.poll_event().is_some() {}
        let mut now = Instant::now();
        // The viewer's side: SCTP over its DTLS client, opening `kvsDataChannel` at once.
        let mut theirs = DataChannels::new_client(now, SCTP_PORT, SCTP_PORT, 65536);
        let channel = theirs.open(now, "kvsDataChannel", "", true, Reliability::Reliable).unwrap();
        let mut ours_events = Vec::new();
        let mut their_events = Vec::new();
        let mut sent_ping = false;
        let mut echoed = false;
        for _ in 0..200 {
            while let Some(p) = theirs.poll_transmit() {
                client.write(now, server, &p).unwrap();
            }
            while let Some(t) = client.poll_transmit() {
                s.handle_datagram(now, UDP, viewer, &t.message);
            }
            while let Some(e) = s.poll_event() {
                ours_events.push(e);
            }
            for (_, _, d) in drain(&mut s) {
                if let Ok(events) = client.read(now, server, None, BytesMut::from(&d[..])) {
                    for e in events {
                        if let EndpointEvent::ApplicationData(p) = e {
                            theirs.handle_sctp(now, &p);
                        }
                    }
                }
            }
            while let Some(e) = theirs.poll_event() {
                their_events.push(e);
            }
            if theirs.is_connected() && !sent_ping {
                theirs.send(now, channel, false, b"ping").unwrap();
                sent_ping = true;
            }
            // Echo what arrived, as the CLI does.
            let got: Vec<(u16, Vec<u8>)> = ours_events
                .iter()
                .filter_map(|e| match e {
                    SessionEvent::Data(DataEvent::Message { id, data, .. }) => Some((*id, data.clone())),
                    _ => None,
                })
                .collect();
            if got.len() == 1 && !echoed {
                s.data_send(now, got[0].0, false, &got[0].1).unwrap();
                echoed = true;
            }
            if their_events.iter().any(|e| matches!(e, DataEvent::Message { .. })) {
                break;
            }
            now += Duration::from_millis(10);
            theirs.handle_timeout(now);
            s.handle_timeout(now);
        }
        assert!(
            ours_events.iter().any(|e| matches!(e, SessionEvent::Data(DataEvent::Opened { label, .. }) if label == "kvsDataChannel")),
            "the viewer's channel opened at the master: {ours_events:?}"
        );
        assert!(
            their_events.iter().any(|e| matches!(e, DataEvent::Message { data, binary: false, .. } if data == b"ping")),
            "the echo came back: {their_events:?}"
        );
        // Ours too: opened by the master, acknowledged by the viewer.
        let id = s.data_open(now, "telemetry", "", false, Reliability::MaxRetransmits(0)).unwrap();
        assert_eq!(id % 2, 1, "the DTLS server's stream ids are odd");
        assert!(s.data_send(now, 999, false, b"x").is_err(), "no channel 999");
        assert!(s.data_send(now, id, true, &vec![0; 70_000]).unwrap_err().contains("max-message-size"));
    }

    #[test]
    fn as_the_dtls_client_the_handshake_starts_at_the_nomination() {
        use crate::data::{DataChannels, DataEvent, Reliability, SCTP_PORT};
        let provider = rtc_dtls::crypto_provider::default_provider().unwrap();
        let viewer_cert = cert();
        let mut s = session_as(&viewer_cert, 0xabc, false, true);
        let viewer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let server: SocketAddr = "127.0.0.1:6000".parse().unwrap();
        let mut now = Instant::now();
        // A check that does not nominate: answered, nothing else.
        s.handle_datagram(now, UDP, viewer, &check(provider.as_ref(), "srv:cli", PWD, false));
        assert!(drain(&mut s).iter().all(|(_, _, d)| d[0] < 4), "STUN only before the nomination");
        // The nomination: our answer to it, then our ClientHello right behind.
        s.handle_datagram(now, UDP, viewer, &binding_request(provider.as_ref(), "srv:cli", PWD));
        let out = drain(&mut s);
        let hello = out.iter().position(|(_, _, d)| d[0] == 22).expect("a ClientHello");
        assert!(out[..hello].iter().any(|(_, _, d)| d[..2] == [1, 1]), "after the success response");
        assert_eq!((out[hello].1, out[hello].2[13]), (viewer, 1), "a ClientHello, to the nominated pair");
        // The viewer: a DTLS server (as a browser answering our active role), requiring our
        // certificate, with SCTP answering our INIT.
        let mut dtls = crate::warm::viewer_dtls_server(provider.clone(), viewer_cert, viewer).unwrap();
        let mut theirs = DataChannels::new(now, SCTP_PORT, SCTP_PORT, 65536);
        let mut pending: Vec<Vec<u8>> = out.into_iter().map(|(_, _, d)| d).filter(|d| d[0] == 22).collect();
        let (mut viewer_done, mut their_channel, mut ours_events, mut their_events) = (false, None, vec![], vec![]);
        for _ in 0..200 {
            for d in pending.drain(..) {
                if let Ok(events) = dtls.read(now, server, None, BytesMut::from(&d[..])) {
                    for e in events {
                        match e {
                            EndpointEvent::HandshakeComplete => viewer_done = true,
                            EndpointEvent::ApplicationData(p) => theirs.handle_sctp(now, &p),
                            _ => {}
                        }
                    }
                }
            }
            while let Some(p) = theirs.poll_transmit() {
                dtls.write(now, server, &p).unwrap();
            }
            while let Some(t) = dtls.poll_transmit() {
                s.handle_datagram(now, UDP, viewer, &t.message);
            }
            pending.extend(drain(&mut s).into_iter().map(|(_, _, d)| d).filter(|d| (20..=63).contains(&d[0])));
            ours_events.extend(std::iter::from_fn(|| s.poll_event()));
            their_events.extend(std::iter::from_fn(|| theirs.poll_event()));
            if theirs.is_connected() && their_channel.is_none() {
                their_channel = Some(theirs.open(now, "kvsDataChannel", "", true, Reliability::Reliable).unwrap());
            }
            let opened = ours_events.iter().any(|e| matches!(e, SessionEvent::Data(DataEvent::Opened { .. })));
            if viewer_done && opened && pending.is_empty() {
                break;
            }
            now += Duration::from_millis(10);
            s.handle_timeout(now);
            theirs.handle_timeout(now);
        }
        assert!(viewer_done, "the viewer finished its handshake");
        assert!(ours_events.contains(&SessionEvent::DtlsConnected(Profile::AesCm128HmacSha1_80)), "{ours_events:?}");
        // Our SCTP INIT (the DTLS client's) made the association; the viewer's channel id is odd.
        assert_eq!(their_channel.map(|id| id % 2), Some(1), "the DTLS server's stream ids are odd");
        assert!(
            ours_events.iter().any(|e| matches!(e, SessionEvent::Data(DataEvent::Opened { label, .. }) if label == "kvsDataChannel")),
            "{ours_events:?}"
        );
        assert_eq!(s.data_open(now, "telemetry", "", false, Reliability::Reliable).unwrap() % 2, 0, "ours are even");
        // Keys: we write with the client's, the viewer with the server's (RFC 5764 §4.2).
        let state = dtls.get_connection_state(server).unwrap();
        let material = state.export_keying_material("EXTRACTOR-dtls_srtp", &[], 60).unwrap();
        let m = material.as_ref();
        let mut rx = Context::new(&m[0..16], &m[32..46], ProtectionProfile::Aes128CmHmacSha1_80, None, None, provider.crypto()).unwrap();
        let au = [0, 0, 0, 1, 0x65, 0x88, 0x84, 0x21, 0xa0];
        assert_eq!(s.write_frame(now, &au, 3000), 1);
        let sent: Vec<Vec<u8>> = drain(&mut s).into_iter().map(|(_, _, d)| d).filter(|d| d[0] & 0xc0 == 0x80 && d[0] & 0x20 == 0).collect();
        let plain = sent.iter().find_map(|d| rx.decrypt_rtp(d).ok()).expect("the viewer decrypts our frame");
        assert_eq!(&plain[plain.len() - 5..], &au[4..]);
        let mut tx = Context::new(&m[16..32], &m[46..60], ProtectionProfile::Aes128CmHmacSha1_80, None, None, provider.crypto()).unwrap();
        use rtc_shared::marshal::Marshal;
        let pli = rtc_rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication { sender_ssrc: 1, media_ssrc: 0xabc };
        let before = s.keyframe_requests;
        s.handle_datagram(now, UDP, viewer, &tx.encrypt_rtcp(&pli.marshal().unwrap()).unwrap());
        assert_eq!(s.keyframe_requests, before + 1, "the viewer's SRTCP decrypts with the server's keys");
    }

    #[test]
    fn a_viewer_that_nominates_and_never_handshakes_loses_its_session() {
        let provider = rtc_dtls::crypto_provider::default_provider().unwrap();
        for client in [true, false] {
            let mut s = session_as(&cert(), 1, false, client);
            let viewer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
            let t0 = s.now;
            s.handle_datagram(t0, UDP, viewer, &binding_request(provider.as_ref(), "srv:cli", PWD));
            let mut hellos = drain(&mut s).iter().filter(|(_, _, d)| d[0] == 22).count();
            // Follow the session's own timer through a minute of the viewer checking every
            // second and never handshaking: the timer always moves on; as the client our
            // ClientHello goes out a few times.
            let (mut now, mut wakes, mut checked) = (t0, 0, t0);
            while now < t0 + Duration::from_secs(60) {
                let Some(next) = s.poll_timeout() else { break };
                assert!(next > now || wakes == 0, "the timer moves on ({wakes} wakes)");
                now = next.max(now + Duration::from_millis(1));
                if now >= checked + Duration::from_secs(1) {
                    checked = now;
                    s.handle_datagram(now, UDP, viewer, &check(provider.as_ref(), "srv:cli", PWD, false));
                }
                s.handle_timeout(now);
                hellos += drain(&mut s).iter().filter(|(_, _, d)| d[0] == 22).count();
                wakes += 1;
                assert!(wakes < 10_000, "a busy timer");
            }
            assert!(if client { (2..=20).contains(&hellos) } else { hellos == 0 }, "{hellos} ClientHellos");
            let events: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
            let why = if client { "our ClientHello went unanswered" } else { "no ClientHello came" };
            assert!(
                events.iter().any(|e| matches!(e, SessionEvent::Closed(r) if r.contains("no handshake within 20 s") && r.contains(why))),
                "the seat is given back: {events:?}"
            );
            assert!(now < t0 + DTLS_TIMEOUT + Duration::from_secs(2), "closed at the deadline");
        }
    }

    #[test]
    fn as_the_dtls_client_a_server_certificate_not_in_the_offer_is_refused() {
        let provider = rtc_dtls::crypto_provider::default_provider().unwrap();
        let mut s = session_as(&cert(), 1, false, true);
        let viewer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let server: SocketAddr = "127.0.0.1:6000".parse().unwrap();
        let now = Instant::now();
        let mut dtls = crate::warm::viewer_dtls_server(provider.clone(), cert(), viewer).unwrap();
        s.handle_datagram(now, UDP, viewer, &binding_request(provider.as_ref(), "srv:cli", PWD));
        for _ in 0..10 {
            for (_, _, d) in drain(&mut s) {
                if d[0] == 22 {
                    let _ = dtls.read(now, server, None, BytesMut::from(&d[..]));
                }
            }
            while let Some(t) = dtls.poll_transmit() {
                s.handle_datagram(now, UDP, viewer, &t.message);
            }
        }
        assert!(s.sender.is_none(), "no SRTP keys");
        let events: Vec<_> = std::iter::from_fn(|| s.poll_event()).collect();
        assert!(
            events.iter().any(|e| matches!(e, SessionEvent::Closed(r) if r.contains("does not match the fingerprint"))),
            "{events:?}"
        );
    }

    #[test]
    fn dtls_from_an_address_that_never_passed_an_ice_check_gets_nothing() {
        let provider = rtc_dtls::crypto_provider::default_provider().unwrap();
        let viewer_cert = cert();
        let mut s = session(&viewer_cert, 7);
        let stranger: SocketAddr = "127.0.0.1:5999".parse().unwrap();
        let server: SocketAddr = "127.0.0.1:6000".parse().unwrap();
        let now = Instant::now();
        // A DTLS client holding the very certificate the offer named, but no ICE at all.
        let config = ConfigBuilder::default()
            .with_crypto_provider(provider.clone())
            .with_certificates(vec![viewer_cert])
            .with_srtp_protection_profiles(vec![SrtpProtectionProfile::Srtp_Aes128_Cm_Hmac_Sha1_80])
            .with_extended_master_secret(ExtendedMasterSecretType::Require)
            .with_insecure_skip_verify(true)
            .build(true, Some(server))
            .unwrap();
        let mut client = Endpoint::new(stranger, TransportProtocol::UDP, None);
        client.connect(now, server, Arc::new(config), None).unwrap();
        let before = s.ignored;
        let mut sent = 0;
        while let Some(t) = client.poll_transmit() {
            s.handle_datagram(now, UDP, stranger, &t.message);
            sent += 1;
        }
        assert!(sent > 0);
        assert!(drain(&mut s).is_empty(), "no DTLS reply to an address ICE never verified");
        assert_eq!(s.ignored, before + sent);
        assert!(s.sender.is_none());
        assert_eq!(s.write_frame(now, &[0, 0, 0, 1, 0x65, 1, 2, 3], 0), 0, "no media");
        assert_eq!(s.authenticated_at(), None, "unauthenticated bytes prove nothing");
    }

    #[test]
    fn no_datagram_moves_media_but_the_viewers_own_nomination() {
        let provider = rtc_dtls::crypto_provider::default_provider().unwrap();
        let viewer_cert = cert();
        let mut s = session(&viewer_cert, 9);
        let viewer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
        let attacker: SocketAddr = "127.0.0.1:5009".parse().unwrap();
        let (_client, done) = handshake(&mut s, viewer_cert, false);
        assert!(done);
        drain(&mut s);
        let now = Instant::now();
        let au = [0, 0, 0, 1, 0x65, 0x88, 0x84, 0x21, 0xa0];
        let t0 = s.authenticated_at().expect("the viewer's check authenticated");
        // From another port: DTLS-range bytes, an RTP-looking packet, forged RTCP, a check with a
        // wrong password that nominates, and one with no integrity at all.
        let later = now + Duration::from_millis(10);
        for junk in [
            vec![22, 254, 253, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
            vec![0x80, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 9, 9],
            vec![0x81, 205, 0, 3, 0, 0, 0, 1, 0, 0, 0, 9, 0, 0, 0, 0],
            binding_request(provider.as_ref(), "srv:cli", "wrongpassword0123456789"),
        ] {
            s.handle_datagram(later, UDP, attacker, &junk);
        }
        assert!(drain(&mut s).is_empty(), "nothing answered to the attacker");
        assert_eq!(s.write_frame(later, &au, 3000), 1);
        let (_, to, _) = s.poll_transmit().unwrap();
        assert_eq!(to, viewer, "media still goes to the nominated pair");
        assert_eq!(s.authenticated_at(), Some(t0), "no unauthenticated input counts as the viewer");
        // The viewer itself moving: an authenticated nominating check from its new address.
        let moved: SocketAddr = "127.0.0.1:5002".parse().unwrap();
        s.handle_datagram(later, UDP, moved, &binding_request(provider.as_ref(), "srv:cli", PWD));
        drain(&mut s);
        assert_eq!(s.write_frame(later, &au, 6000), 1);
        assert_eq!(s.poll_transmit().unwrap().1, moved, "a new nomination moves media");
        assert_eq!(s.authenticated_at(), Some(later));
    }
}
