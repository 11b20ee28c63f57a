//! The byte ABI of the media core (`extern "C"`, for WebAssembly): the only file that knows how
//! TypeScript calls in. Everything behind it is plain Rust with native tests.
//!
//! Calls: `kvs_alloc`/`kvs_free` for buffers; `sender_new` → handle (0 on error);
//! `sender_write_frame` → datagram count (negative on error); `sender_retransmit` → the
//! datagrams a NACK names, again; `sender_output_ptr/len` → the
//! batch `[u32 LE length][datagram]…`; `sender_free`; `last_error_ptr/len` → UTF-8 message.

pub mod data;
pub mod gcc;
pub mod h264;
pub mod ice;
pub mod output;
pub mod pacer;
pub mod sender;
pub mod session;
pub mod srtp;
pub mod twcc;
pub mod warm;

use crate::data::{DataEvent, Reliability};
use sender::{Profile, Sender};
use ice::CandidateError;
use session::{Session, SessionConfig, SessionError, SessionEvent, TurnTransport};
use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

struct SessionSlot {
    session: Session,
    fingerprint: String,
    /// `Instant` of the caller's time 0 (milliseconds), fixed at creation.
    base: Instant,
    base_ms: f64,
    /// Counters for `session_stats` (see there).
    stats: [f64; STATS],
}

/// Number of `f64` slots `session_stats` fills.
const STATS: usize = 20;

impl SessionSlot {
    fn at(&self, now_ms: f64) -> Instant {
        self.base + Duration::from_micros(((now_ms - self.base_ms).max(0.0) * 1000.0) as u64)
    }
}

thread_local! {
    static SESSIONS: RefCell<Vec<Option<SessionSlot>>> = const { RefCell::new(Vec::new()) };
    static SENDERS: RefCell<Vec<Option<Sender>>> = const { RefCell::new(Vec::new()) };
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
    static SCRATCH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

fn set_error(message: String) {
    LAST_ERROR.with(|e| *e.borrow_mut() = message);
}

/// Allocate `len` bytes for the caller to fill.
#[no_mangle]
pub extern "C" fn kvs_alloc(len: usize) -> *mut u8 {
    let mut v = Vec::<u8>::with_capacity(len.max(1));
    let p = v.as_mut_ptr();
    std::mem::forget(v);
    p
}

/// Free a buffer from [`kvs_alloc`].
///
/// # Safety
/// `ptr` and `len` must come from one `kvs_alloc` call.
#[no_mangle]
pub unsafe extern "C" fn kvs_free(ptr: *mut u8, len: usize) {
    if !ptr.is_null() {
        drop(Vec::from_raw_parts(ptr, 0, len.max(1)));
    }
}

/// Create a sender. `profile`: 1 AES_CM_128_HMAC_SHA1_80, 7 AEAD_AES_128_GCM.
///
/// # Safety
/// The pointers must address `key_len` and `salt_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn sender_new(
    profile: u32,
    key_ptr: *const u8,
    key_len: usize,
    salt_ptr: *const u8,
    salt_len: usize,
    ssrc: u32,
    payload_type: u32,
    first_sequence: u32,
    max_datagram: u32,
) -> u32 {
    let Some(profile) = Profile::from_id(profile) else {
        set_error(format!("unknown SRTP profile {profile}"));
        return 0;
    };
    let key = std::slice::from_raw_parts(key_ptr, key_len);
    let salt = std::slice::from_raw_parts(salt_ptr, salt_len);
    match Sender::new(
        profile,
        key,
        salt,
        ssrc,
        payload_type as u8,
        first_sequence as u16,
        max_datagram as usize,
    ) {
        Ok(s) => SENDERS.with(|all| {
            let mut all = all.borrow_mut();
            all.push(Some(s));
            all.len() as u32
        }),
        Err(e) => {
            set_error(e.to_string());
            0
        }
    }
}

/// Packetize and protect one access unit; returns the number of datagrams, or -1 (see
/// `last_error_*`), or -2 for an unknown handle.
///
/// # Safety
/// `data_ptr` must address `data_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn sender_write_frame(
    handle: u32,
    data_ptr: *const u8,
    data_len: usize,
    rtp_timestamp: u32,
) -> i32 {
    let data = std::slice::from_raw_parts(data_ptr, data_len);
    SENDERS.with(|all| {
        let mut all = all.borrow_mut();
        let Some(Some(s)) = all.get_mut((handle as usize).wrapping_sub(1)) else {
            set_error(format!("unknown sender {handle}"));
            return -2;
        };
        match s.write_frame(data, rtp_timestamp) {
            Ok(n) => n as i32,
            Err(e) => {
                set_error(e.to_string());
                -1
            }
        }
    })
}

/// Put the datagrams a NACK names (`count` sequence numbers, u16 little-endian at `seqs_ptr`)
/// in the output again; returns how many were still in the history, or -2 for an unknown handle.
///
/// # Safety
/// `seqs_ptr` must address `2 * count` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn sender_retransmit(handle: u32, seqs_ptr: *const u8, count: usize) -> i32 {
    let bytes = std::slice::from_raw_parts(seqs_ptr, count * 2);
    let seqs: Vec<u16> = bytes.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])).collect();
    SENDERS.with(|all| {
        let mut all = all.borrow_mut();
        let Some(Some(s)) = all.get_mut((handle as usize).wrapping_sub(1)) else {
            set_error(format!("unknown sender {handle}"));
            return -2;
        };
        s.retransmit(&seqs) as i32
    })
}

fn with_sender<T>(handle: u32, f: impl FnOnce(&Sender) -> T, default: T) -> T {
    SENDERS.with(|all| match all.borrow().get((handle as usize).wrapping_sub(1)) {
        Some(Some(s)) => f(s),
        _ => default,
    })
}

/// Address of the last frame's datagram batch.
#[no_mangle]
pub extern "C" fn sender_output_ptr(handle: u32) -> *const u8 {
    with_sender(handle, |s| s.output().as_ptr(), std::ptr::null())
}

/// Length of the last frame's datagram batch.
#[no_mangle]
pub extern "C" fn sender_output_len(handle: u32) -> usize {
    with_sender(handle, |s| s.output().len(), 0)
}

/// Datagrams sent so far (for stats).
#[no_mangle]
pub extern "C" fn sender_packets(handle: u32) -> u64 {
    with_sender(handle, |s| s.packets, 0)
}

/// Release a sender.
#[no_mangle]
pub extern "C" fn sender_free(handle: u32) {
    SENDERS.with(|all| {
        if let Some(slot) = all.borrow_mut().get_mut((handle as usize).wrapping_sub(1)) {
            *slot = None;
        }
    });
}

/// Address of the last error message (UTF-8).
#[no_mangle]
pub extern "C" fn last_error_ptr() -> *const u8 {
    LAST_ERROR.with(|e| e.borrow().as_ptr())
}

/// Length of the last error message.
#[no_mangle]
pub extern "C" fn last_error_len() -> usize {
    LAST_ERROR.with(|e| e.borrow().len())
}

unsafe fn text<'a>(ptr: *const u8, len: usize) -> &'a str {
    if len == 0 {
        return "";
    }
    std::str::from_utf8(std::slice::from_raw_parts(ptr, len)).unwrap_or("")
}

/// `key value` lines into a lookup.
fn fields(text: &str) -> HashMap<&str, &str> {
    text.lines().filter_map(|l| l.split_once(' ')).collect()
}

fn with_session<T>(handle: u32, default: T, f: impl FnOnce(&mut SessionSlot) -> T) -> T {
    SESSIONS.with(|all| match all.borrow_mut().get_mut((handle as usize).wrapping_sub(1)) {
        Some(Some(s)) => f(s),
        _ => default,
    })
}

/// A new DTLS certificate (ECDSA P-256) with its key, as PEM in the scratch buffer; returns its
/// length, 0 on error. The host keeps it and gives it to every `session_new`: one certificate
/// per process.
#[no_mangle]
pub extern "C" fn certificate_new() -> usize {
    match session::generate_certificate().and_then(|c| session::certificate_to_pem(&c)) {
        Ok(pem) => SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            s.clear();
            s.extend_from_slice(pem.as_bytes());
            s.len()
        }),
        Err(e) => {
            set_error(e.to_string());
            0
        }
    }
}

/// Warm start: play one session in memory with the process certificate (PEM at `cert_ptr`) and
/// `frames` frames (see `warm.rs`). Returns the media datagrams it made, or -1
/// (`last_error_*`).
///
/// # Safety
/// `cert_ptr` must address `cert_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn warm_up(cert_ptr: *const u8, cert_len: usize, frames: u32) -> i32 {
    match session::certificate_from_pem(text(cert_ptr, cert_len)).and_then(|c| warm::warm_up(&c, frames as usize)) {
        Ok(n) => n as i32,
        Err(e) => {
            set_error(e.to_string());
            -1
        }
    }
}

/// Address of the scratch buffer.
#[no_mangle]
pub extern "C" fn scratch_ptr() -> *const u8 {
    SCRATCH.with(|s| s.borrow().as_ptr())
}

/// Create a session at caller time `now_ms`. `config`: `key value` lines — `ufrag`, `pwd` (ours),
/// `remote_ufrag`, `remote_pwd`, `fingerprint` (the viewer's `sha-256 AB:…`), `ssrc`, `pt`,
/// `audio_ssrc` and `audio_pt` (Opus to the viewer; absent or 0: none), `audio_in_pt` (the
/// viewer's Opus payload type when it sends audio; absent: its audio is not read), `sctp_port`
/// and `sctp_max_message` (data channels: the viewer's SCTP port and `a=max-message-size`;
/// absent: no data channels),
/// `host` (the IPv4 UDP socket's `ip:port`), `host6` (the IPv6 UDP socket's `[ip]:port`, when the
/// host has one; datagrams to IPv6 addresses then leave on it), `policy` (`all` or `relay`), `srtp` (`any`: AES-GCM
/// too; otherwise AES-CM only), `dtls` (`client`: we start the DTLS handshake once the
/// viewer nominates a pair, `a=setup:active`; otherwise we wait for the viewer's, `a=setup:passive`), `connect_timeout_ms` (fail when nothing is nominated by then;
/// default 30 000). `certificate`: PEM from
/// `certificate_new`. Returns a handle, 0 on error (`last_error_*`).
///
/// # Safety
/// The pointers must address the given numbers of readable bytes.
#[no_mangle]
pub unsafe extern "C" fn session_new(
    config_ptr: *const u8,
    config_len: usize,
    cert_ptr: *const u8,
    cert_len: usize,
    now_ms: f64,
) -> u32 {
    let f = fields(text(config_ptr, config_len));
    let get = |k: &str| f.get(k).copied().unwrap_or("");
    let base = Instant::now();
    let made = (|| {
        let certificate = session::certificate_from_pem(text(cert_ptr, cert_len))?;
        let fingerprint = session::fingerprint(&certificate)?;
        let config = SessionConfig {
            certificate,
            local_ufrag: get("ufrag").to_owned(),
            local_pwd: get("pwd").to_owned(),
            remote_ufrag: get("remote_ufrag").to_owned(),
            remote_pwd: get("remote_pwd").to_owned(),
            remote_fingerprint: session::parse_fingerprint(get("fingerprint"))?,
            ssrc: get("ssrc").parse().map_err(|_| SessionError("ssrc is not a number".into()))?,
            payload_type: get("pt").parse().map_err(|_| SessionError("pt is not a number".into()))?,
            audio_out: match (get("audio_ssrc").parse::<u32>(), get("audio_pt").parse::<u8>()) {
                (Ok(ssrc), Ok(pt)) if pt > 0 => Some((ssrc, pt)),
                _ => None,
            },
            audio_in_pt: get("audio_in_pt").parse::<u8>().ok().filter(|pt| *pt > 0),
            sctp: get("sctp_port")
                .parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .map(|p| (p, get("sctp_max_message").parse::<usize>().unwrap_or(65536))),
            host_allowed: get("policy") != "relay",
            host_addr: get("host").parse().ok(),
            allow_aes_gcm: get("srtp") == "any",
            connect_timeout: get("connect_timeout_ms")
                .parse::<u64>()
                .ok()
                .filter(|ms| *ms > 0)
                .map(Duration::from_millis),
            twcc_ext: get("twcc_ext").parse::<u8>().ok().filter(|id| (1..=14).contains(id)),
            start_bps: get("start_bps").parse::<f64>().ok().filter(|b| b.is_finite() && *b > 0.0),
            dtls_client: get("dtls") == "client",
            playout_ext: get("playout_ext").parse::<u8>().ok().filter(|id| (1..=14).contains(id)),
        };
        if config.local_ufrag.is_empty() || config.remote_ufrag.is_empty() || config.remote_pwd.is_empty() {
            return Err(SessionError("ICE ufrag and pwd of both sides are required".into()));
        }
        let mut session = Session::new(config, base)?;
        if let Ok(addr) = get("host6").parse::<SocketAddr>() {
            session.set_host_ipv6(addr);
        }
        Ok((session, fingerprint))
    })();
    match made {
        Ok((session, fingerprint)) => SESSIONS.with(|all| {
            let mut all = all.borrow_mut();
            let slot = SessionSlot { session, fingerprint, base, base_ms: now_ms, stats: [0.0; STATS] };
            // Reuse a freed slot: an instance may serve many sessions in turn.
            if let Some(i) = all.iter().position(|s| s.is_none()) {
                all[i] = Some(slot);
                i as u32 + 1
            } else {
                all.push(Some(slot));
                all.len() as u32
            }
        }),
        Err(e) => {
            set_error(e.to_string());
            0
        }
    }
}

/// The session's DTLS fingerprint (`sha-256 AB:…`) into the scratch buffer; returns its length
/// (read it at `scratch_ptr`).
#[no_mangle]
pub extern "C" fn session_fingerprint(handle: u32) -> usize {
    with_session(handle, 0, |s| {
        SCRATCH.with(|b| {
            let mut b = b.borrow_mut();
            b.clear();
            b.extend_from_slice(s.fingerprint.as_bytes());
            b.len()
        })
    })
}

/// Counters as `f64` slots; returns their address (null for an unknown handle): NACKs received,
/// datagrams resent, keyframe requests (PLI/FIR), datagrams ignored, round-trip time ms (NaN
/// before the first receiver report), fraction lost (0–255), packets lost, RTP packets sent,
/// when the viewer last proved it is there (caller ms; -1: never) — an ICE check or response
/// that authenticated, or SRTP/SRTCP that decrypted —, audio packets sent, audio packets
/// received, the bandwidth estimate (bits/s), how long the oldest queued video waited in the
/// pacer (ms), times waiting frames were dropped (they waited over a second), video frames not
/// sent (dropped, or while waiting for an IDR after a drop), probes sent, the viewer's REMB (bits/s; NaN: none), the loss fraction of
/// the latest second of transport-wide feedback, the rate the viewer acknowledged (bits/s; NaN:
/// not yet), media bits sent over the last second.
#[no_mangle]
pub extern "C" fn session_stats(handle: u32) -> *const f64 {
    with_session(handle, std::ptr::null(), |s| {
        let x = &s.session;
        s.stats = [
            x.nacks as f64,
            x.retransmitted as f64,
            x.keyframe_requests as f64,
            x.ignored as f64,
            x.rtt_ms.unwrap_or(f64::NAN),
            x.fraction_lost as f64,
            x.total_lost as f64,
            x.packets_sent() as f64,
            x.authenticated_at()
                .map(|t| s.base_ms + t.saturating_duration_since(s.base).as_secs_f64() * 1000.0)
                .unwrap_or(-1.0),
            x.audio_packets_sent() as f64,
            x.audio_received as f64,
            x.gcc.estimate(),
            x.video_delay().as_secs_f64() * 1000.0,
            x.queue_drops as f64,
            x.frames_dropped as f64,
            x.gcc.probes as f64,
            x.gcc.remb.unwrap_or(f64::NAN),
            x.gcc.loss,
            x.gcc.acked_bps().unwrap_or(f64::NAN),
            x.sending_bps(),
        ];
        s.stats.as_ptr()
    })
}

/// Add a remote candidate line. Returns 0 if used, 1 if ignored, -1 if malformed (the reason in
/// `last_error_*` for both), -2 for an unknown handle.
///
/// # Safety
/// The pointer must address `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn session_add_candidate(handle: u32, now_ms: f64, ptr: *const u8, len: usize) -> i32 {
    let line = text(ptr, len);
    with_session(handle, -2, |s| {
        s.session.out.clear();
        let now = s.at(now_ms);
        match s.session.add_remote_candidate(now, line) {
            Ok(()) => 0,
            Err(CandidateError::Ignored(why)) => {
                set_error(why);
                1
            }
            Err(CandidateError::Malformed(why)) => {
                set_error(why);
                -1
            }
        }
    })
}

/// Ask the STUN server at `ip:port` for our server-reflexive address. Returns 0, or -1.
///
/// # Safety
/// The pointer must address `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn session_add_stun(handle: u32, now_ms: f64, ptr: *const u8, len: usize) -> i32 {
    let Ok(server) = text(ptr, len).parse::<SocketAddr>() else {
        set_error(format!("STUN server {:?} is not ip:port", text(ptr, len)));
        return -1;
    };
    with_session(handle, -2, |s| {
        s.session.out.clear();
        let now = s.at(now_ms);
        s.session.add_stun_server(now, server);
        0
    })
}

/// Allocate on a TURN server. `config`: `key value` lines — `url` (for messages), `transport`
/// (`udp`: over the UDP socket; `stream`: over host stream `via`), `via`, `server` (`ip:port`),
/// `username`, `password`, optionally `refresh_seconds` (refresh the allocation at least this
/// often). Returns the server's index, or -1 (`last_error_*`).
///
/// # Safety
/// The pointer must address `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn session_add_turn(handle: u32, now_ms: f64, ptr: *const u8, len: usize) -> i32 {
    let f = fields(text(ptr, len));
    let get = |k: &str| f.get(k).copied().unwrap_or("");
    let Ok(server) = get("server").parse::<SocketAddr>() else {
        set_error(format!("TURN server {:?} is not ip:port", get("server")));
        return -1;
    };
    let transport = if get("transport") == "stream" { TurnTransport::Stream } else { TurnTransport::Udp };
    let via: u32 = get("via").parse().unwrap_or(0);
    with_session(handle, -2, |s| {
        s.session.out.clear();
        let now = s.at(now_ms);
        let refresh = get("refresh_seconds").parse::<f64>().ok().filter(|x| *x > 0.0).map(Duration::from_secs_f64);
        match s.session.add_turn_server(now, get("url"), transport, via, server, get("username"), get("password"), refresh) {
            Ok(i) => i as i32,
            Err(e) => {
                set_error(e.to_string());
                -1
            }
        }
    })
}

/// Read a binary socket address: `u8 family (4 or 6) | 16 address bytes | u16 LE port`.
fn socket_addr(b: &[u8]) -> Option<SocketAddr> {
    if b.len() < 19 {
        return None;
    }
    let port = u16::from_le_bytes([b[17], b[18]]);
    match b[0] {
        4 => Some(SocketAddr::from(([b[1], b[2], b[3], b[4]], port))),
        6 => Some(SocketAddr::from((<[u8; 16]>::try_from(&b[1..17]).ok()?, port))),
        _ => None,
    }
}

/// Feed bytes that arrived on host transport `via` at `now_ms` (0: the UDP socket, from the
/// 19-byte binary address at `addr_ptr`: `u8 family | 16 bytes | u16 LE port`; n: TURN stream n,
/// no address), then return the output as `session_poll` does: one crossing per datagram.
///
/// # Safety
/// `addr_ptr` must address 19 readable bytes (or be null for streams) and `data_ptr` `data_len`.
#[no_mangle]
pub unsafe extern "C" fn session_handle_datagram(
    handle: u32,
    now_ms: f64,
    via: u32,
    addr_ptr: *const u8,
    data_ptr: *const u8,
    data_len: usize,
) -> *const u8 {
    let from = if addr_ptr.is_null() {
        None
    } else {
        socket_addr(std::slice::from_raw_parts(addr_ptr, 19))
    };
    let data = std::slice::from_raw_parts(data_ptr, data_len);
    with_session(handle, std::ptr::null(), |s| {
        s.session.out.clear();
        let now = s.at(now_ms);
        s.session.handle_datagram(now, via, from.unwrap_or(session::NO_ADDR), data);
        finish(s)
    })
}

/// Drive timers at `now_ms`; returns the output as `session_poll` does.
#[no_mangle]
pub extern "C" fn session_handle_timeout(handle: u32, now_ms: f64) -> *const u8 {
    with_session(handle, std::ptr::null(), |s| {
        s.session.out.clear();
        let now = s.at(now_ms);
        s.session.handle_timeout(now);
        finish(s)
    })
}

/// Send one access unit at `now_ms`: packetized, protected and written once into the output,
/// which is returned as `session_poll` does — one crossing per frame.
///
/// # Safety
/// `data_ptr` must address `data_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn session_write_frame(
    handle: u32,
    now_ms: f64,
    data_ptr: *const u8,
    data_len: usize,
    rtp_timestamp: u32,
) -> *const u8 {
    let data = std::slice::from_raw_parts(data_ptr, data_len);
    with_session(handle, std::ptr::null(), |s| {
        s.session.out.clear();
        let now = s.at(now_ms);
        s.session.write_frame(now, data, rtp_timestamp);
        finish(s)
    })
}

/// The playout delay the video frames written from now on carry, in 10 ms units (0–4095 each;
/// a negative `min_10ms`: none). Returns 1 when the viewer negotiated the extension, else 0.
#[no_mangle]
pub extern "C" fn session_set_playout_delay(handle: u32, min_10ms: i32, max_10ms: i32) -> u32 {
    let delay = (min_10ms >= 0).then(|| session::PlayoutDelay {
        min_10ms: min_10ms.clamp(0, 4095) as u16,
        max_10ms: max_10ms.clamp(min_10ms.clamp(0, 4095), 4095) as u16,
    });
    with_session(handle, 0, |s| s.session.set_playout_delay(delay) as u32)
}

/// Send one Opus frame (48 kHz `rtp_timestamp`) at `now_ms` when audio was negotiated;
/// returns the output as `session_poll` does.
///
/// # Safety
/// `data_ptr` must address `data_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn session_write_audio(
    handle: u32,
    now_ms: f64,
    data_ptr: *const u8,
    data_len: usize,
    rtp_timestamp: u32,
) -> *const u8 {
    let data = std::slice::from_raw_parts(data_ptr, data_len);
    with_session(handle, std::ptr::null(), |s| {
        s.session.out.clear();
        let now = s.at(now_ms);
        s.session.write_audio(now, data, rtp_timestamp);
        finish(s)
    })
}

/// Open a data channel of ours (`reliability`: 0 reliable, 1 at most `value` retransmissions,
/// 2 at most `value` ms; `label` and `protocol` UTF-8). Returns its stream id, -1 when refused
/// (the reason in `last_error_*`), -2 for an unknown handle. The output is then at
/// `session_poll`.
///
/// # Safety
/// The pointers must address the given numbers of readable bytes.
#[no_mangle]
pub unsafe extern "C" fn session_data_open(
    handle: u32,
    now_ms: f64,
    ordered: u32,
    reliability: u32,
    value: u32,
    label_ptr: *const u8,
    label_len: usize,
    protocol_ptr: *const u8,
    protocol_len: usize,
) -> i32 {
    let label = text(label_ptr, label_len);
    let protocol = text(protocol_ptr, protocol_len);
    let value = value.min(u16::MAX as u32) as u16;
    let reliability = match reliability {
        1 => Reliability::MaxRetransmits(value),
        2 => Reliability::MaxLifetimeMs(value),
        _ => Reliability::Reliable,
    };
    with_session(handle, -2, |s| {
        s.session.out.clear();
        let now = s.at(now_ms);
        match s.session.data_open(now, label, protocol, ordered != 0, reliability) {
            Ok(id) => id as i32,
            Err(e) => {
                set_error(e);
                -1
            }
        }
    })
}

/// Send a message (`binary` 0: text) on data channel `id`. Returns 0, -1 when refused (the
/// reason in `last_error_*`), -2 for an unknown handle. The output is then at `session_poll`.
///
/// # Safety
/// `data_ptr` must address `data_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn session_data_send(
    handle: u32,
    now_ms: f64,
    id: u32,
    binary: u32,
    data_ptr: *const u8,
    data_len: usize,
) -> i32 {
    let data = std::slice::from_raw_parts(data_ptr, data_len);
    with_session(handle, -2, |s| {
        s.session.out.clear();
        let now = s.at(now_ms);
        match s.session.data_send(now, id as u16, binary != 0, data) {
            Ok(()) => 0,
            Err(e) => {
                set_error(e);
                -1
            }
        }
    })
}

/// Close data channel `id`; the output is then at `session_poll`.
#[no_mangle]
pub extern "C" fn session_data_close(handle: u32, now_ms: f64, id: u32) {
    with_session(handle, (), |s| {
        s.session.out.clear();
        let now = s.at(now_ms);
        s.session.data_close(now, id as u16);
    })
}

/// Bytes sent on the session's data channels not yet acknowledged (-1 for an unknown handle).
#[no_mangle]
pub extern "C" fn session_data_buffered(handle: u32) -> f64 {
    with_session(handle, -1.0, |s| s.session.data_buffered() as f64)
}

/// Complete the output buffer: the datagram records the call wrote, then the events, then the
/// next timeout; its total length in the first 4 bytes. Returns its address.
fn finish(s: &mut SessionSlot) -> *const u8 {
    let next = s
        .session
        .poll_timeout()
        .map(|t| s.base_ms + t.saturating_duration_since(s.base).as_secs_f64() * 1000.0)
        .unwrap_or(-1.0);
    while let Some(e) = s.session.poll_event() {
        let (kind, text) = match e {
            SessionEvent::Audio { timestamp, sequence, payload } => {
                let out = &mut s.session.out.buf;
                out.push(4);
                out.extend_from_slice(&timestamp.to_le_bytes());
                out.extend_from_slice(&sequence.to_le_bytes());
                out.extend_from_slice(&(payload.len() as u16).to_le_bytes());
                out.extend_from_slice(&payload);
                continue;
            }
            SessionEvent::Data(DataEvent::Message { id, binary, data }) => {
                let out = &mut s.session.out.buf;
                out.push(5);
                out.extend_from_slice(&id.to_le_bytes());
                out.push(binary as u8);
                out.extend_from_slice(&(data.len() as u32).to_le_bytes());
                out.extend_from_slice(&data);
                continue;
            }
            SessionEvent::Data(DataEvent::Opened { id, label, protocol, ordered, reliability }) => {
                let (kind, value) = match reliability {
                    Reliability::Reliable => (0, 0),
                    Reliability::MaxRetransmits(n) => (1, n),
                    Reliability::MaxLifetimeMs(ms) => (2, ms),
                };
                // id, ordered, reliability kind and value, protocol length; then protocol, label.
                let head = format!("{id} {} {kind} {value} {} ", ordered as u8, protocol.len());
                (7u8, format!("{head}{protocol}{label}"))
            }
            SessionEvent::Data(DataEvent::Closed { id }) => (8u8, id.to_string()),
            SessionEvent::Data(DataEvent::Error(m)) => (6u8, m),
            SessionEvent::IceConnected(pair) => (1u8, pair),
            SessionEvent::DtlsConnected(p) => (2u8, format!("{p:?}")),
            SessionEvent::Closed(r) => (3u8, r),
            SessionEvent::KeyframeRequest => (4u8, String::new()),
            SessionEvent::CongestionKeyframeRequest => (4u8, "congestion".to_string()),
            SessionEvent::LocalCandidate(line) => (5u8, line),
            SessionEvent::Estimate(bps) => (9u8, bps.to_string()),
            SessionEvent::Warning(w) => (6u8, w),
        };
        // A record's text is at most 65,535 bytes (a data channel's label could be longer).
        let mut text = text;
        if text.len() > u16::MAX as usize {
            let mut end = u16::MAX as usize;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        let out = &mut s.session.out.buf;
        out.push(2);
        out.push(kind);
        out.extend_from_slice(&(text.len() as u16).to_le_bytes());
        out.extend_from_slice(text.as_bytes());
    }
    let out = &mut s.session.out.buf;
    out.push(3);
    out.extend_from_slice(&next.to_le_bytes());
    let len = out.len() as u32;
    out[..session::OUTPUT_ROOM].copy_from_slice(&len.to_le_bytes());
    out.as_ptr()
}

/// Everything the session has for the caller since the last call, in its output buffer;
/// returns the buffer's address. Layout: `u32 total length` (these 4 bytes included), then
/// datagram records (`1, u32 via, u8 family, 16 address bytes, u16 port, u32 len, datagram`:
/// see `output.rs`; via 0: the UDP socket to the address; n: TURN stream n), then event records
/// `2, u8 kind, u16 len, text` (kind 1 ICE connected, 2 DTLS connected, 3 closed, 4 keyframe
/// request (text `congestion` when video that waited too long was dropped, empty for the
/// viewer's PLI/FIR), 5 local candidate, 6 warning, 9 bandwidth estimate in bits/s), audio records from the viewer `4, u32 RTP timestamp,
/// u16 sequence, u16 len, Opus packet`, data channel messages `5, u16 id, u8 binary, u32 len,
/// bytes` (kind 7 data channel opened: `id ordered reliability value protocol-length
/// protocol label`; kind 8 closed: `id`), then `3, f64 next timeout in caller ms (or -1)`.
/// Valid until the next call into the session. Null for an unknown handle.
#[no_mangle]
pub extern "C" fn session_poll(handle: u32) -> *const u8 {
    with_session(handle, std::ptr::null(), finish)
}

/// Release a session.
#[no_mangle]
pub extern "C" fn session_free(handle: u32) {
    SESSIONS.with(|all| {
        if let Some(slot) = all.borrow_mut().get_mut((handle as usize).wrapping_sub(1)) {
            *slot = None;
        }
    });
}

/// Test hook: panic inside the module (a trap on the TypeScript side).
#[no_mangle]
pub extern "C" fn debug_trap() {
    panic!("trap requested");
}
