//! The byte ABI of the media core (`extern "C"`, for WebAssembly): the only file that knows how
//! TypeScript calls in. Everything behind it is plain Rust with native tests.
//!
//! Calls: `kvs_alloc`/`kvs_free` for buffers; `sender_new` → handle (0 on error);
//! `sender_write_frame` → datagram count (negative on error); `sender_retransmit` → the
//! datagrams a NACK names, again; `sender_output_ptr/len` → the
//! batch `[u32 LE length][datagram]…`; `sender_free`; `last_error_ptr/len` → UTF-8 message.

pub mod h264;
pub mod ice;
pub mod sender;
pub mod session;

use sender::{Profile, Sender};
use session::{Session, SessionEvent};
use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

struct SessionSlot {
    session: Session,
    fingerprint: String,
    /// `Instant` of the caller's time 0 (milliseconds), fixed at creation.
    base: Instant,
    base_ms: f64,
    out: Vec<u8>,
}

impl SessionSlot {
    fn at(&self, now_ms: f64) -> Instant {
        self.base + Duration::from_micros(((now_ms - self.base_ms).max(0.0) * 1000.0) as u64)
    }
}

thread_local! {
    static SESSIONS: RefCell<Vec<Option<SessionSlot>>> = const { RefCell::new(Vec::new()) };
    static SENDERS: RefCell<Vec<Option<Sender>>> = const { RefCell::new(Vec::new()) };
    static LAST_ERROR: RefCell<String> = const { RefCell::new(String::new()) };
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
    std::str::from_utf8(std::slice::from_raw_parts(ptr, len)).unwrap_or("")
}

fn with_session<T>(handle: u32, default: T, f: impl FnOnce(&mut SessionSlot) -> T) -> T {
    SESSIONS.with(|all| match all.borrow_mut().get_mut((handle as usize).wrapping_sub(1)) {
        Some(Some(s)) => f(s),
        _ => default,
    })
}

/// Create a session (new DTLS certificate, ICE ufrag/pwd given as UTF-8), at caller time
/// `now_ms`. Returns a handle, 0 on error (`last_error_*`).
///
/// # Safety
/// The pointers must address the given numbers of readable bytes.
#[no_mangle]
pub unsafe extern "C" fn session_new(
    ufrag_ptr: *const u8,
    ufrag_len: usize,
    pwd_ptr: *const u8,
    pwd_len: usize,
    ssrc: u32,
    payload_type: u32,
    now_ms: f64,
) -> u32 {
    let made = session::generate_certificate().and_then(|cert| {
        let fingerprint = session::fingerprint(&cert)?;
        let s = Session::new(cert, text(ufrag_ptr, ufrag_len), text(pwd_ptr, pwd_len), ssrc, payload_type as u8)?;
        Ok((s, fingerprint))
    });
    match made {
        Ok((session, fingerprint)) => SESSIONS.with(|all| {
            let mut all = all.borrow_mut();
            all.push(Some(SessionSlot { session, fingerprint, base: Instant::now(), base_ms: now_ms, out: Vec::new() }));
            all.len() as u32
        }),
        Err(e) => {
            set_error(e.to_string());
            0
        }
    }
}

/// The session's DTLS fingerprint (`sha-256 AB:…`) into the output buffer; returns its length.
#[no_mangle]
pub extern "C" fn session_fingerprint(handle: u32) -> usize {
    with_session(handle, 0, |s| {
        s.out.clear();
        s.out.extend_from_slice(s.fingerprint.as_bytes());
        s.out.len()
    })
}

/// Feed a datagram from `addr` (UTF-8 `ip:port`) at `now_ms`.
///
/// # Safety
/// The pointers must address the given numbers of readable bytes.
#[no_mangle]
pub unsafe extern "C" fn session_handle_datagram(
    handle: u32,
    now_ms: f64,
    addr_ptr: *const u8,
    addr_len: usize,
    data_ptr: *const u8,
    data_len: usize,
) {
    let Ok(from) = text(addr_ptr, addr_len).parse::<SocketAddr>() else { return };
    let data = std::slice::from_raw_parts(data_ptr, data_len);
    with_session(handle, (), |s| {
        let now = s.at(now_ms);
        s.session.handle_datagram(now, from, data)
    });
}

/// Drive timers at `now_ms`.
#[no_mangle]
pub extern "C" fn session_handle_timeout(handle: u32, now_ms: f64) {
    with_session(handle, (), |s| {
        let now = s.at(now_ms);
        s.session.handle_timeout(now)
    });
}

/// Send one access unit; returns the datagrams queued.
///
/// # Safety
/// `data_ptr` must address `data_len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn session_write_frame(handle: u32, data_ptr: *const u8, data_len: usize, rtp_timestamp: u32) -> u32 {
    let data = std::slice::from_raw_parts(data_ptr, data_len);
    with_session(handle, 0, |s| s.session.write_frame(data, rtp_timestamp) as u32)
}

/// Everything the session has for the caller, in the output buffer; returns its length.
/// Records: `1, u16 addr_len, addr, u32 len, datagram` or `2, u8 kind, u16 len, text` (kind 1
/// ICE connected, 2 DTLS connected, 3 closed, 4 keyframe request), then `3, f64 next timeout in caller ms (or -1)`.
#[no_mangle]
pub extern "C" fn session_poll(handle: u32) -> usize {
    with_session(handle, 0, |s| {
        s.out.clear();
        while let Some((to, d)) = s.session.poll_transmit() {
            let addr = to.to_string();
            s.out.push(1);
            s.out.extend_from_slice(&(addr.len() as u16).to_le_bytes());
            s.out.extend_from_slice(addr.as_bytes());
            s.out.extend_from_slice(&(d.len() as u32).to_le_bytes());
            s.out.extend_from_slice(&d);
        }
        while let Some(e) = s.session.poll_event() {
            let (kind, text) = match e {
                SessionEvent::IceConnected(a) => (1u8, a.to_string()),
                SessionEvent::DtlsConnected(p) => (2u8, format!("{p:?}")),
                SessionEvent::Closed(r) => (3u8, r),
                SessionEvent::KeyframeRequest => (4u8, String::new()),
            };
            s.out.push(2);
            s.out.push(kind);
            s.out.extend_from_slice(&(text.len() as u16).to_le_bytes());
            s.out.extend_from_slice(text.as_bytes());
        }
        let next = s
            .session
            .poll_timeout()
            .map(|t| s.base_ms + t.saturating_duration_since(s.base).as_secs_f64() * 1000.0)
            .unwrap_or(-1.0);
        s.out.push(3);
        s.out.extend_from_slice(&next.to_le_bytes());
        s.out.len()
    })
}

/// Address of the session's output buffer.
#[no_mangle]
pub extern "C" fn session_output_ptr(handle: u32) -> *const u8 {
    with_session(handle, std::ptr::null(), |s| s.out.as_ptr())
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
