//! One outgoing SRTP stream: a video access unit or an audio frame in, all its protected
//! datagrams out, batched in one buffer (`[u32 little-endian length][datagram]` repeated).

use crate::h264::{H264Error, Packetizer, Payload};
use std::time::{Duration, Instant};
use crate::srtp::SrtpCm;
use rtc_srtp::context::Context;
use rtc_srtp::protection_profile::ProtectionProfile;

/// Largest datagram produced: fits a 1280-byte path MTU with IP/UDP/TURN overhead.
pub const DEFAULT_DATAGRAM: usize = 1200;
const RTP_HEADER: usize = 12;
/// Room kept in every packet for header extensions: the transport-wide number and a playout
/// delay together ([`write_extensions`]).
const EXTENSION_ROOM: usize = 12;

/// The playout delay header extension (`http://www.webrtc.org/experiments/rtp-hdrext/playout-delay`):
/// the least and most delay the receiver may hold frames for, in 10 ms units (12 bits each).
/// `(0, 0)` asks it to show each frame as soon as it is decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlayoutDelay {
    pub min_10ms: u16,
    pub max_10ms: u16,
}

/// Append an RFC 8285 one-byte header block: the transport-wide number (`id`, `seq`) and/or a
/// playout delay (`id`, delay), padded to a whole word. Nothing when both are absent.
pub fn write_extensions(out: &mut Vec<u8>, twcc: Option<(u8, u16)>, playout: Option<(u8, PlayoutDelay)>) {
    let words: u8 = match (twcc.is_some(), playout.is_some()) {
        (false, false) => return,
        (true, true) => 2,
        _ => 1,
    };
    let at = out.len();
    out.extend_from_slice(&[0xbe, 0xde, 0, words]);
    if let Some((id, seq)) = twcc {
        out.push((id << 4) | 1);
        out.extend_from_slice(&seq.to_be_bytes());
    }
    if let Some((id, d)) = playout {
        let (min, max) = (d.min_10ms.min(0xfff), d.max_10ms.min(0xfff));
        out.push((id << 4) | 2);
        out.extend_from_slice(&[(min >> 4) as u8, (((min & 0xf) << 4) | (max >> 8)) as u8, max as u8]);
    }
    out.resize(at + 4 + 4 * words as usize, 0);
}
/// Bytes of padding in a probe packet (RFC 3550 §5.1: the count is one byte).
pub const PROBE_PADDING: usize = 240;

/// SRTP protection profiles, numbered as in DTLS-SRTP (RFC 5764, RFC 7714).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Profile {
    AesCm128HmacSha1_80 = 1,
    AeadAes128Gcm = 7,
}

impl Profile {
    pub fn from_id(id: u32) -> Option<Profile> {
        match id {
            1 => Some(Profile::AesCm128HmacSha1_80),
            7 => Some(Profile::AeadAes128Gcm),
            _ => None,
        }
    }
    fn srtp(self) -> ProtectionProfile {
        match self {
            Profile::AesCm128HmacSha1_80 => ProtectionProfile::Aes128CmHmacSha1_80,
            Profile::AeadAes128Gcm => ProtectionProfile::AeadAes128Gcm,
        }
    }
    /// Bytes SRTP adds to each packet (authentication tag).
    pub fn overhead(self) -> usize {
        match self {
            Profile::AesCm128HmacSha1_80 => 10,
            Profile::AeadAes128Gcm => 16,
        }
    }
}

/// Why a sender could not be made or a frame not sent.
#[derive(Debug)]
pub enum SenderError {
    Key(String),
    H264(H264Error),
    /// An audio frame that cannot be one RTP payload (empty or too large).
    Audio(String),
    Srtp(String),
}

impl std::fmt::Display for SenderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SenderError::Key(m) => write!(f, "SRTP key: {m}"),
            SenderError::H264(e) => write!(f, "{e}"),
            SenderError::Audio(m) => write!(f, "{m}"),
            SenderError::Srtp(m) => write!(f, "SRTP: {m}"),
        }
    }
}

/// What protects the stream's packets.
enum Protection {
    /// AES_CM_128_HMAC_SHA1_80, ours ([`crate::srtp`]).
    Cm(SrtpCm),
    /// Another profile (AEAD_AES_128_GCM), through `rtc-srtp`.
    Other(Context),
}

/// How frames become RTP payloads.
pub enum Payloader {
    /// H.264 access units: single NAL units, STAP-A and FU-A (RFC 6184 packetization-mode 1).
    H264(Packetizer),
    /// Opus (RFC 7587): each frame is one payload, as it is; at most this many bytes.
    Opus(usize),
}

impl Payloader {
    fn packetize<F: FnMut(Payload<'_>)>(&mut self, frame: &[u8], mut emit: F) -> Result<usize, SenderError> {
        match self {
            Payloader::H264(p) => p.packetize(frame, emit).map_err(SenderError::H264),
            Payloader::Opus(max) => {
                if frame.is_empty() || frame.len() > *max {
                    return Err(SenderError::Audio(format!(
                        "an Opus frame of {} bytes cannot be sent (1 to {max} bytes fit one packet)",
                        frame.len()
                    )));
                }
                emit(Payload { parts: [frame, &[], &[]], marker: false });
                Ok(1)
            }
        }
    }
}

/// Datagrams kept for retransmission after a NACK (about 2 s of 2.5 Mbit/s video).
pub const HISTORY: usize = 512;

/// Retransmissions allowed in a burst: a NACK can name the whole history at once, and one
/// authenticated 1 KB NACK asking for 512 packets again would otherwise cost 600 KB of output.
pub const RTX_BURST: f64 = 128.0;
/// Retransmissions earned per packet sent for the first time: what is resent stays within a
/// quarter of the stream's own rate, however often a viewer asks.
pub const RTX_SHARE: f64 = 0.25;
/// A packet sent longer ago than this is not sent again: a receiver has played past it.
pub const RTX_MAX_AGE: Duration = Duration::from_millis(1000);
/// A packet resent less than this (or one round trip, if longer) ago is not resent again: the
/// NACK that names it again was sent before the copy could arrive.
pub const RTX_MIN_GAP: Duration = Duration::from_millis(20);

/// An H.264 RTP stream protected with SRTP.
pub struct Sender {
    /// Ring of the last [`HISTORY`] datagrams, indexed by sequence number.
    history: Vec<(u16, Vec<u8>)>,
    /// Datagrams sent again after a NACK.
    pub retransmitted: u64,
    /// NACKed datagrams not sent again: over the retransmission budget.
    pub retransmits_refused: u64,
    /// NACKed datagrams not sent again because a copy was sent within the last round trip or the
    /// packet is too old to be played ([`RTX_MIN_GAP`], [`RTX_MAX_AGE`]).
    pub retransmits_skipped: u64,
    /// The retransmission budget left ([`RTX_BURST`] at most).
    rtx_tokens: f64,
    /// Per history slot, the NACK round that last resent it (each packet once per NACK).
    rtx_marks: Vec<u32>,
    rtx_round: u32,
    /// Per history slot: when it was sent first and last resent (with a clock, see
    /// [`Sender::set_clock`]).
    sent_at: Vec<Option<Instant>>,
    resent_at: Vec<Option<Instant>>,
    /// The caller's time and the latest round-trip time, for the retransmission rules.
    now: Option<Instant>,
    rtt: Duration,
    srtp: Protection,
    packetizer: Payloader,
    ssrc: u32,
    payload_type: u8,
    sequence: u16,
    out: Vec<u8>,
    /// Datagrams produced so far (first transmissions of media).
    pub packets: u64,
    /// Padding-only packets produced (bandwidth probes).
    pub padding_packets: u64,
    /// Bytes of datagrams produced so far.
    pub bytes: u64,
    /// RTP payload bytes sent so far (the sender report's octet count).
    pub payload_bytes: u64,
    /// RTP timestamp of the latest access unit.
    pub last_timestamp: Option<u32>,
    /// Where each packet of the frame being written lies in the output: (start, end of the
    /// packet before its tag).
    spans: Vec<(usize, usize)>,
    /// The transport-wide sequence number extension's id (RFC 8285 one-byte header), when
    /// negotiated; the next number is [`Sender::transport_sequence`] (shared by the streams of
    /// one transport: the caller hands it from one sender to the other).
    twcc: Option<u8>,
    /// The next transport-wide sequence number.
    pub transport_sequence: u16,
    /// The playout delay extension's id (when negotiated) and the delay the frames written now
    /// carry (None: frames carry none).
    playout: Option<(u8, Option<PlayoutDelay>)>,
}

impl Sender {
    /// An H.264 stream with the given SRTP master key and salt (16 + 14 bytes for AES-CM, 16 + 12
    /// for AES-GCM), SSRC, payload type, first sequence number and largest datagram size.
    pub fn new(
        profile: Profile,
        key: &[u8],
        salt: &[u8],
        ssrc: u32,
        payload_type: u8,
        first_sequence: u16,
        max_datagram: usize,
    ) -> Result<Sender, SenderError> {
        let max_payload = max_datagram.max(128) - RTP_HEADER - EXTENSION_ROOM - profile.overhead();
        Self::with(profile, key, salt, ssrc, payload_type, first_sequence, Payloader::H264(Packetizer::new(max_payload)))
    }

    /// An Opus stream (one frame per packet), keyed as [`Sender::new`] describes.
    pub fn opus(
        profile: Profile,
        key: &[u8],
        salt: &[u8],
        ssrc: u32,
        payload_type: u8,
        first_sequence: u16,
        max_datagram: usize,
    ) -> Result<Sender, SenderError> {
        let max_payload = max_datagram.max(128) - RTP_HEADER - EXTENSION_ROOM - profile.overhead();
        Self::with(profile, key, salt, ssrc, payload_type, first_sequence, Payloader::Opus(max_payload))
    }

    fn with(
        profile: Profile,
        key: &[u8],
        salt: &[u8],
        ssrc: u32,
        payload_type: u8,
        first_sequence: u16,
        packetizer: Payloader,
    ) -> Result<Sender, SenderError> {
        let srtp = match profile {
            // Ours: bitsliced AES on SIMD128 and keyed HMAC-SHA1 states, protecting in place.
            Profile::AesCm128HmacSha1_80 => {
                let (Ok(k), Ok(s)) = (<&[u8; 16]>::try_from(key), <&[u8; 14]>::try_from(salt)) else {
                    return Err(SenderError::Key(format!(
                        "AES_CM_128_HMAC_SHA1_80 needs a 16-byte key and a 14-byte salt, got {} and {}",
                        key.len(),
                        salt.len()
                    )));
                };
                Protection::Cm(SrtpCm::new(k, s))
            }
            Profile::AeadAes128Gcm => {
                let provider =
                    rtc_srtp::crypto::default_provider().map_err(|e| SenderError::Key(e.to_string()))?;
                Protection::Other(
                    Context::new(key, salt, profile.srtp(), None, None, provider.crypto())
                        .map_err(|e| SenderError::Key(e.to_string()))?,
                )
            }
        };
        Ok(Sender {
            history: (0..HISTORY).map(|_| (0u16, Vec::new())).collect(),
            retransmitted: 0,
            retransmits_refused: 0,
            retransmits_skipped: 0,
            rtx_tokens: RTX_BURST,
            rtx_marks: vec![0; HISTORY],
            rtx_round: 0,
            sent_at: vec![None; HISTORY],
            resent_at: vec![None; HISTORY],
            now: None,
            rtt: Duration::ZERO,
            srtp,
            packetizer,
            ssrc,
            payload_type: payload_type & 0x7f,
            sequence: first_sequence,
            out: Vec::new(),
            packets: 0,
            padding_packets: 0,
            bytes: 0,
            payload_bytes: 0,
            last_timestamp: None,
            spans: Vec::new(),
            twcc: None,
            transport_sequence: 0,
            playout: None,
        })
    }

    /// Packetize and protect one access unit with the given 90 kHz RTP timestamp. The previous
    /// output is replaced. Returns the number of datagrams.
    pub fn write_frame(&mut self, access_unit: &[u8], rtp_timestamp: u32) -> Result<usize, SenderError> {
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        let n = self.write_frame_into(access_unit, rtp_timestamp, &mut out, &[]);
        self.out = out;
        n
    }

    /// Packetize and protect one access unit, appending each datagram to `out` as
    /// `prefix | u32 LE length | datagram` (the datagram is built and protected where it lies:
    /// written once). On error nothing of this frame stays in `out`. Returns the number of
    /// datagrams.
    pub fn write_frame_into(
        &mut self,
        access_unit: &[u8],
        rtp_timestamp: u32,
        out: &mut Vec<u8>,
        prefix: &[u8],
    ) -> Result<usize, SenderError> {
        let mark = out.len();
        let (first_sequence, first_payload_bytes) = (self.sequence, self.payload_bytes);
        let mut failure: Option<String> = None;
        self.last_timestamp = Some(rtp_timestamp);
        let batched = matches!(self.srtp, Protection::Cm(_));
        self.spans.clear();
        let first_transport = self.transport_sequence;
        let playout = self.playout.and_then(|(id, d)| d.map(|d| (id, d)));
        let Sender { srtp, packetizer, ssrc, payload_type, sequence, payload_bytes, spans, twcc, transport_sequence, .. } =
            self;
        let packetized = packetizer.packetize(access_unit, |payload| {
            if failure.is_some() {
                return;
            }
            out.extend_from_slice(prefix);
            let len_at = out.len();
            out.extend_from_slice(&[0; 4]);
            let start = out.len();
            out.push(if twcc.is_some() || playout.is_some() { 0x90 } else { 0x80 });
            out.push(if payload.marker { 0x80 } else { 0 } | *payload_type);
            out.extend_from_slice(&sequence.to_be_bytes());
            out.extend_from_slice(&rtp_timestamp.to_be_bytes());
            out.extend_from_slice(&ssrc.to_be_bytes());
            write_extensions(out, twcc.map(|id| (id, *transport_sequence)), playout);
            if twcc.is_some() {
                *transport_sequence = transport_sequence.wrapping_add(1);
            }
            let header_len = out.len() - start;
            for part in payload.parts {
                out.extend_from_slice(part);
            }
            *payload_bytes += (out.len() - start - header_len) as u64;
            let end = out.len();
            match srtp {
                // AES-CM: room for the tag now; the frame's packets are protected together
                // below (their tags four at a time).
                Protection::Cm(_) => out.extend_from_slice(&[0; crate::srtp::TAG_LEN]),
                Protection::Other(ctx) => {
                    let header = match header_of(&out[start..]) {
                        Ok(h) => h,
                        Err(e) => {
                            failure = Some(e);
                            return;
                        }
                    };
                    match ctx.encrypt_rtp_with_header(&out[start..], &header) {
                        Ok(datagram) => {
                            out.truncate(start);
                            out.extend_from_slice(&datagram);
                        }
                        Err(e) => failure = Some(e.to_string()),
                    }
                }
            }
            let len = out.len() - start;
            out[len_at..start].copy_from_slice(&(len as u32).to_le_bytes());
            // AES-CM: the packet before its tag room; otherwise the whole protected datagram.
            spans.push((start, if batched { end } else { out.len() }));
            *sequence = sequence.wrapping_add(1);
        });
        let result = match (packetized, failure) {
            (Err(e), _) => Err(e),
            (Ok(_), Some(m)) => Err(SenderError::Srtp(m)),
            (Ok(n), None) if batched => match &mut self.srtp {
                Protection::Cm(cm) => cm
                    .protect_rtp_batch(out, &self.spans)
                    .map(|_| n)
                    .map_err(|e| SenderError::Srtp(e.to_string())),
                Protection::Other(_) => Ok(n),
            },
            (Ok(n), None) => Ok(n),
        };
        if result.is_err() {
            // Nothing of this frame leaves, and no sequence number is skipped.
            out.truncate(mark);
            self.sequence = first_sequence;
            self.transport_sequence = first_transport;
            self.payload_bytes = first_payload_bytes;
            self.spans.clear();
            return result;
        }
        let tag = if batched { crate::srtp::TAG_LEN } else { 0 };
        for &(start, end) in &self.spans {
            let datagram = &out[start..end + tag];
            let seq = u16::from_be_bytes([datagram[2], datagram[3]]);
            let i = seq as usize % HISTORY;
            let slot = &mut self.history[i];
            slot.0 = seq;
            slot.1.clear();
            slot.1.extend_from_slice(datagram);
            self.sent_at[i] = self.now;
            self.resent_at[i] = None;
            self.packets += 1;
            self.rtx_tokens = (self.rtx_tokens + RTX_SHARE).min(RTX_BURST);
            self.bytes += datagram.len() as u64;
        }
        result
    }

    /// Give the sender the caller's time and the latest round-trip time: packets written from
    /// now on remember when they left, and NACKs are answered by the time rules
    /// ([`RTX_MAX_AGE`], one resend per round trip). Without a clock only the budget applies.
    pub fn set_clock(&mut self, now: Instant, rtt: Option<Duration>) {
        self.now = Some(now);
        if let Some(rtt) = rtt {
            self.rtt = rtt;
        }
    }

    /// Put the datagrams with these sequence numbers (from a NACK) in the output again, as they
    /// were first sent; numbers no longer in the history are skipped. Returns how many.
    pub fn retransmit(&mut self, sequences: &[u16]) -> usize {
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        let n = self.retransmit_into(sequences, &mut out, &[]);
        self.out = out;
        n
    }

    /// Append the datagrams with these sequence numbers (from a NACK) to `out` as
    /// `prefix | u32 LE length | datagram`, in the NACK's order, each once however often
    /// it is named; numbers no longer in the history are skipped, and those over the
    /// retransmission budget ([`RTX_BURST`], refilled by [`RTX_SHARE`] per packet sent) are
    /// counted in [`Sender::retransmits_refused`]. Returns how many were appended.
    pub fn retransmit_into(&mut self, sequences: &[u16], out: &mut Vec<u8>, prefix: &[u8]) -> usize {
        self.rtx_round = self.rtx_round.wrapping_add(1);
        let mut n = 0;
        for &seq in sequences {
            let slot = seq as usize % HISTORY;
            let (stored, datagram) = &self.history[slot];
            if *stored != seq || datagram.is_empty() || self.rtx_marks[slot] == self.rtx_round {
                continue;
            }
            self.rtx_marks[slot] = self.rtx_round;
            if let Some(now) = self.now {
                // Too old to be played, or resent within the last round trip: nothing to gain.
                let old = self.sent_at[slot].is_some_and(|t| now.saturating_duration_since(t) > RTX_MAX_AGE);
                let gap = self.rtt.max(RTX_MIN_GAP);
                let recent = self.resent_at[slot].is_some_and(|t| now.saturating_duration_since(t) < gap);
                if old || recent {
                    self.retransmits_skipped += 1;
                    continue;
                }
                self.resent_at[slot] = Some(now);
            }
            if self.rtx_tokens < 1.0 {
                self.retransmits_refused += 1;
                continue;
            }
            self.rtx_tokens -= 1.0;
            out.extend_from_slice(prefix);
            out.extend_from_slice(&(datagram.len() as u32).to_le_bytes());
            out.extend_from_slice(datagram);
            n += 1;
        }
        self.retransmitted += n as u64;
        n
    }

    /// The datagrams of the last frame: `[u32 LE length][bytes]` repeated.
    pub fn output(&self) -> &[u8] {
        &self.out
    }

    /// Protect an RTCP compound packet of this stream (a sender report) with its SRTCP keys.
    pub fn protect_rtcp(&mut self, plain: &[u8]) -> Result<Vec<u8>, SenderError> {
        match &mut self.srtp {
            Protection::Cm(cm) => {
                let mut packet = plain.to_vec();
                cm.protect_rtcp(&mut packet).map_err(|e| SenderError::Srtp(e.to_string()))?;
                Ok(packet)
            }
            Protection::Other(ctx) => {
                ctx.encrypt_rtcp(plain).map(|b| b.to_vec()).map_err(|e| SenderError::Key(e.to_string()))
            }
        }
    }

    /// The stream's SSRC.
    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    /// Put the transport-wide sequence number extension (id 1–14) in every packet from now on.
    pub fn set_transport_cc(&mut self, id: u8) {
        if (1..=14).contains(&id) {
            self.twcc = Some(id);
        }
    }

    /// The playout delay extension's id (1–14), when negotiated: frames can then carry one.
    pub fn set_playout_delay_id(&mut self, id: u8) {
        if (1..=14).contains(&id) {
            self.playout = Some((id, None));
        }
    }

    /// The playout delay the frames written from now on carry (None: none); ignored unless the
    /// extension was negotiated. Returns whether frames can carry it.
    pub fn set_playout_delay(&mut self, delay: Option<PlayoutDelay>) -> bool {
        match self.playout.as_mut() {
            Some((_, d)) => {
                *d = delay;
                true
            }
            None => false,
        }
    }

    /// Append `count` padding-only packets (a bandwidth probe, RFC 3550 §5.1: no payload,
    /// [`PROBE_PADDING`] bytes of padding) to `out` as [`Sender::write_frame_into`] does, after
    /// the frames written so far (their sequence numbers continue the stream's, their timestamp is
    /// the latest frame's). Not kept for retransmission. Returns how many.
    pub fn write_padding_into(&mut self, count: usize, out: &mut Vec<u8>, prefix: &[u8]) -> Result<usize, SenderError> {
        let mark = out.len();
        let (first_sequence, first_transport) = (self.sequence, self.transport_sequence);
        let timestamp = self.last_timestamp.unwrap_or(0);
        self.spans.clear();
        let batched = matches!(self.srtp, Protection::Cm(_));
        let mut failure = None;
        for _ in 0..count {
            out.extend_from_slice(prefix);
            let len_at = out.len();
            out.extend_from_slice(&[0; 4]);
            let start = out.len();
            out.push(if self.twcc.is_some() { 0xb0 } else { 0xa0 });
            out.push(self.payload_type);
            out.extend_from_slice(&self.sequence.to_be_bytes());
            out.extend_from_slice(&timestamp.to_be_bytes());
            out.extend_from_slice(&self.ssrc.to_be_bytes());
            write_extensions(out, self.twcc.map(|id| (id, self.transport_sequence)), None);
            if self.twcc.is_some() {
                self.transport_sequence = self.transport_sequence.wrapping_add(1);
            }
            out.extend(std::iter::repeat_n(0u8, PROBE_PADDING - 1));
            out.push(PROBE_PADDING as u8);
            let end = out.len();
            match &mut self.srtp {
                Protection::Cm(_) => out.extend_from_slice(&[0; crate::srtp::TAG_LEN]),
                Protection::Other(ctx) => match header_of(&out[start..]) {
                    Ok(header) => match ctx.encrypt_rtp_with_header(&out[start..], &header) {
                        Ok(datagram) => {
                            out.truncate(start);
                            out.extend_from_slice(&datagram);
                        }
                        Err(e) => failure = Some(e.to_string()),
                    },
                    Err(e) => failure = Some(e),
                },
            }
            let len = out.len() - start;
            out[len_at..start].copy_from_slice(&(len as u32).to_le_bytes());
            self.spans.push((start, if batched { end } else { out.len() }));
            self.sequence = self.sequence.wrapping_add(1);
            if failure.is_some() {
                break;
            }
        }
        let protected = match (&mut self.srtp, failure) {
            (_, Some(m)) => Err(SenderError::Srtp(m)),
            (Protection::Cm(cm), None) => cm.protect_rtp_batch(out, &self.spans).map_err(|e| SenderError::Srtp(e.to_string())),
            (Protection::Other(_), None) => Ok(()),
        };
        self.spans.clear();
        if let Err(e) = protected {
            out.truncate(mark);
            self.sequence = first_sequence;
            self.transport_sequence = first_transport;
            return Err(e);
        }
        self.padding_packets += count as u64;
        Ok(count)
    }
}

/// The RTP header at the start of `packet` (extensions included), for the AEAD path.
fn header_of(packet: &[u8]) -> Result<rtc_rtp::Header, String> {
    use rtc_shared::marshal::Unmarshal;
    rtc_rtp::Header::unmarshal(&mut &packet[..]).map_err(|e| format!("RTP header: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datagrams(buf: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < buf.len() {
            let n = u32::from_le_bytes(buf[i..i + 4].try_into().unwrap()) as usize;
            out.push(buf[i + 4..i + 4 + n].to_vec());
            i += 4 + n;
        }
        out
    }

    fn round_trip(profile: Profile, salt_len: usize) {
        let key = [7u8; 16];
        let salt = vec![3u8; salt_len];
        let mut tx = Sender::new(profile, &key, &salt, 0x1234_5678, 102, 65534, 1200).unwrap();
        let provider = rtc_srtp::crypto::default_provider().unwrap();
        let mut rx = Context::new(&key, &salt, profile.srtp(), None, None, provider.crypto()).unwrap();
        let mut nal = vec![0x65u8];
        nal.extend((0..3000u32).map(|i| (i % 200) as u8 + 1));
        let mut au = vec![0, 0, 0, 1, 0x67, 0x42, 0, 0, 0, 1, 0x68, 0xce, 0, 0, 0, 1];
        au.extend_from_slice(&nal);
        let n = tx.write_frame(&au, 90_000).unwrap();
        let dgrams = datagrams(tx.output());
        assert_eq!(dgrams.len(), n);
        assert_eq!(n, 4, "STAP-A + 3 FU-A");
        for (i, d) in dgrams.iter().enumerate() {
            assert!(d.len() <= 1200);
            let plain = rx.decrypt_rtp(d).expect("decrypts");
            let seq = u16::from_be_bytes([plain[2], plain[3]]);
            assert_eq!(seq, 65534u16.wrapping_add(i as u16), "sequence wraps");
            assert_eq!(plain[1] & 0x7f, 102);
            assert_eq!(plain[1] & 0x80 != 0, i == 3, "marker on the last packet");
            assert_eq!(u32::from_be_bytes(plain[4..8].try_into().unwrap()), 90_000);
        }
        // Tampering is detected by the receiver.
        let mut bad = dgrams[1].clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(rx.decrypt_rtp(&bad).is_err());
    }

    #[test]
    fn aes_cm_round_trip() {
        round_trip(Profile::AesCm128HmacSha1_80, 14);
    }

    #[test]
    fn aes_gcm_round_trip() {
        round_trip(Profile::AeadAes128Gcm, 12);
    }

    #[test]
    fn frames_carry_a_playout_delay_beside_the_transport_wide_number_when_asked() {
        use rtc_shared::marshal::Unmarshal;
        let (key, salt) = ([7u8; 16], [3u8; 14]);
        let provider = rtc_srtp::crypto::default_provider().unwrap();
        let mut rx = Context::new(&key, &salt, Profile::AesCm128HmacSha1_80.srtp(), None, None, provider.crypto()).unwrap();
        let mut tx = Sender::new(Profile::AesCm128HmacSha1_80, &key, &salt, 5, 96, 0, 1200).unwrap();
        let mut au = vec![0, 0, 0, 1, 0x65];
        au.extend(std::iter::repeat(9u8).take(5000));
        let headers = |tx: &mut Sender, rx: &mut Context| -> Vec<(rtc_rtp::Header, usize)> {
            tx.write_frame(&au, 0).unwrap();
            datagrams(&tx.out)
                .iter()
                .map(|d| {
                    assert!(d.len() <= 1200, "within the datagram size with both extensions");
                    let plain = rx.decrypt_rtp(d).unwrap();
                    (rtc_rtp::Header::unmarshal(&mut &plain[..]).unwrap(), plain.len())
                })
                .collect()
        };
        // Not negotiated: asking changes nothing.
        assert!(!tx.set_playout_delay(Some(PlayoutDelay { min_10ms: 0, max_10ms: 0 })));
        assert!(headers(&mut tx, &mut rx).iter().all(|(h, _)| !h.extension));
        tx.set_transport_cc(3);
        tx.set_playout_delay_id(5);
        // Negotiated, no delay asked: the transport-wide number alone.
        for (h, _) in headers(&mut tx, &mut rx) {
            assert_eq!(h.extensions.iter().map(|e| e.id).collect::<Vec<_>>(), vec![3]);
        }
        // (0, 0), then (0, 10 s): 12 bits each, in 10 ms units, after the transport-wide number.
        for (min, max, bytes) in [(0u16, 0u16, [0u8, 0, 0]), (0, 1000, [0x00, 0x03, 0xe8])] {
            assert!(tx.set_playout_delay(Some(PlayoutDelay { min_10ms: min, max_10ms: max })));
            let all = headers(&mut tx, &mut rx);
            assert!(all.len() >= 5);
            for (h, _) in all {
                assert_eq!(h.extensions.iter().map(|e| e.id).collect::<Vec<_>>(), vec![3, 5]);
                assert_eq!(&h.extensions[1].payload[..], &bytes);
            }
        }
        assert!(tx.set_playout_delay(None));
        assert!(headers(&mut tx, &mut rx).iter().all(|(h, _)| h.extensions.len() == 1));
    }

    #[test]
    fn retransmissions_stay_within_the_budget_however_often_a_viewer_asks() {
        let mut tx = Sender::new(Profile::AesCm128HmacSha1_80, &[1; 16], &[2; 14], 9, 96, 0, 1200).unwrap();
        let mut au = vec![0, 0, 0, 1, 0x65];
        au.extend(std::iter::repeat(7u8).take(1100 * 450));
        tx.write_frame(&au, 0).unwrap();
        let sent = tx.packets;
        assert!(sent >= 400);
        // One NACK naming every packet of the history, each of them ten times.
        let every: Vec<u16> = (0..sent as u16).flat_map(|s| std::iter::repeat(s).take(10)).collect();
        let first = tx.retransmit(&every);
        assert_eq!(first, RTX_BURST as usize, "each packet at most once, the burst at most");
        assert_eq!(tx.retransmits_refused, sent - RTX_BURST as u64);
        // Asked again and again: nothing more until packets are sent for the first time.
        assert_eq!(tx.retransmit(&every), 0);
        // Four new packets earn one retransmission.
        let mut small = vec![0, 0, 0, 1, 0x41];
        small.extend(std::iter::repeat(7u8).take(1100 * 4));
        tx.write_frame(&small, 3000).unwrap();
        assert_eq!(tx.packets - sent, 4);
        let recent: Vec<u16> = (sent as u16..sent as u16 + 4).collect();
        assert_eq!(tx.retransmit(&recent), 1);
        assert_eq!(tx.retransmitted, RTX_BURST as u64 + 1);
    }

    #[test]
    fn a_packet_is_resent_once_per_round_trip_and_never_when_too_old_to_play() {
        let mut tx = Sender::new(Profile::AesCm128HmacSha1_80, &[1; 16], &[2; 14], 9, 96, 0, 1200).unwrap();
        let mut au = vec![0, 0, 0, 1, 0x65];
        au.extend(std::iter::repeat(7u8).take(3000));
        let t0 = Instant::now();
        let rtt = Duration::from_millis(50);
        tx.set_clock(t0, Some(rtt));
        tx.write_frame(&au, 0).unwrap();
        // The viewer asks for packet 1 in three NACKs 10 ms apart: one copy in the round trip.
        let mut sent = 0;
        for ms in [10, 20, 30] {
            tx.set_clock(t0 + Duration::from_millis(ms), None);
            sent += tx.retransmit(&[1]);
        }
        assert_eq!((sent, tx.retransmits_skipped), (1, 2));
        // A round trip later its copy may have been lost too: once more.
        tx.set_clock(t0 + Duration::from_millis(70), None);
        assert_eq!(tx.retransmit(&[1]), 1);
        // Past the age a receiver still plays: never again.
        tx.set_clock(t0 + RTX_MAX_AGE + Duration::from_millis(1), None);
        assert_eq!(tx.retransmit(&[0, 1, 2]), 0);
        assert_eq!(tx.retransmits_skipped, 5);
        assert_eq!(tx.retransmits_refused, 0, "the budget was never the limit here");
    }

    #[test]
    fn nacked_packets_are_sent_again_as_they_were() {
        let mut tx = Sender::new(Profile::AesCm128HmacSha1_80, &[1; 16], &[2; 14], 9, 96, 100, 1200).unwrap();
        let mut au = vec![0, 0, 0, 1, 0x65];
        au.extend(std::iter::repeat(7u8).take(5000));
        tx.write_frame(&au, 0).unwrap();
        let first = datagrams(tx.output());
        assert_eq!(first.len(), 5);
        assert_eq!(tx.retransmit(&[101, 103, 99, 5000]), 2, "unknown numbers are skipped");
        assert_eq!(datagrams(tx.output()), vec![first[1].clone(), first[3].clone()]);
        assert_eq!(tx.retransmitted, 2);
        // After HISTORY more packets, the old ones are gone.
        for i in 0..(HISTORY / 5 + 1) {
            tx.write_frame(&au, i as u32).unwrap();
        }
        assert_eq!(tx.retransmit(&[101]), 0);
    }

    #[test]
    fn wrong_key_sizes_are_errors() {
        assert!(Sender::new(Profile::AesCm128HmacSha1_80, &[0; 15], &[0; 14], 1, 96, 0, 1200).is_err());
        assert!(Sender::new(Profile::AeadAes128Gcm, &[0; 16], &[0; 14], 1, 96, 0, 1200).is_err());
    }
}
