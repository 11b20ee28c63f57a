//! SRTP and SRTCP protection with `AES_CM_128_HMAC_SHA1_80` (RFC 3711), for a sender.
//!
//! AES-128 is bitsliced (eight blocks per batch in eight 128-bit registers) and uses WebAssembly
//! SIMD128 when the target has it (`-C target-feature=+simd128`), a portable 128-bit integer
//! version otherwise; neither indexes memory with secret data. HMAC-SHA1 keeps its keyed inner
//! and outer states, so each packet costs only its own blocks plus one outer block.
//!
//! ```
//! # use kvs_media_core::srtp::SrtpCm;
//! let mut srtp = SrtpCm::new(&[7; 16], &[3; 14]);
//! let mut packet = vec![0x80, 96, 0, 1, 0, 0, 0, 0, 0x12, 0x34, 0x56, 0x78, 1, 2, 3];
//! srtp.protect_rtp(&mut packet).unwrap();
//! assert_eq!(packet.len(), 15 + 10);
//! ```

pub mod aes;
pub mod cm;
pub mod lanes;
pub mod sha1;

#[cfg(test)]
mod tests;

use cm::{derive_key, AesCm};
use lanes::Native;
use sha1::HmacSha1;

/// Length of the authentication tag appended to SRTP and SRTCP packets (80 bits).
pub const TAG_LEN: usize = 10;
/// Largest SRTCP index; after it the index starts again at 0.
pub const MAX_SRTCP_INDEX: u32 = 0x7fff_ffff;

/// Why a packet could not be protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SrtpError {
    /// The RTP packet is shorter than its fixed header, CSRC list and header extension.
    RtpHeader,
    /// The RTCP packet is shorter than its 8-byte header.
    RtcpHeader,
}

impl core::fmt::Display for SrtpError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            SrtpError::RtpHeader => write!(f, "RTP packet shorter than its header"),
            SrtpError::RtcpHeader => write!(f, "RTCP packet shorter than 8 bytes"),
        }
    }
}

impl std::error::Error for SrtpError {}

/// The session keys of one direction of SRTP or SRTCP.
#[derive(Clone)]
struct SessionKeys {
    cipher: AesCm<Native>,
    salt: [u8; 14],
    auth: HmacSha1,
}

impl SessionKeys {
    /// Session keys from labels `first`, `first + 1`, `first + 2` (encryption, auth, salt).
    fn derive(master: &AesCm<Native>, master_salt: &[u8; 14], first: u8) -> Self {
        let mut key = [0u8; 16];
        let mut auth = [0u8; 20];
        let mut salt = [0u8; 14];
        derive_key(master, master_salt, first, &mut key);
        derive_key(master, master_salt, first + 1, &mut auth);
        derive_key(master, master_salt, first + 2, &mut salt);
        SessionKeys { cipher: AesCm::new(&key), salt, auth: HmacSha1::new(&auth) }
    }

    /// RFC 3711 §4.1.1 counter block: salt ⊕ SSRC·2^64 ⊕ index·2^16.
    fn iv(&self, ssrc: u32, index: u64) -> [u8; 16] {
        let mut iv = [0u8; 16];
        iv[..14].copy_from_slice(&self.salt);
        for (d, s) in iv[4..8].iter_mut().zip(ssrc.to_be_bytes()) {
            *d ^= s;
        }
        for (d, s) in iv[8..14].iter_mut().zip(&index.to_be_bytes()[2..]) {
            *d ^= s;
        }
        iv
    }
}

/// Length of an RTP packet's header: fixed part, CSRC list and header extension (RFC 3550 §5.1).
pub fn rtp_header_len(packet: &[u8]) -> Result<usize, SrtpError> {
    if packet.len() < 12 {
        return Err(SrtpError::RtpHeader);
    }
    let mut len = 12 + 4 * (packet[0] & 0x0f) as usize;
    if packet[0] & 0x10 != 0 {
        if packet.len() < len + 4 {
            return Err(SrtpError::RtpHeader);
        }
        let words = u16::from_be_bytes([packet[len + 2], packet[len + 3]]) as usize;
        len += 4 + 4 * words;
    }
    if packet.len() < len {
        return Err(SrtpError::RtpHeader);
    }
    Ok(len)
}

/// A sending SRTP/SRTCP context for `AES_CM_128_HMAC_SHA1_80`: session keys derived from the
/// master key and salt (key derivation rate 0), the rollover counter of the RTP stream and the
/// SRTCP index. One context serves one SSRC for RTP (the rollover counter is shared).
#[derive(Clone)]
pub struct SrtpCm {
    rtp: SessionKeys,
    rtcp: SessionKeys,
    /// Rollover counter and highest sequence number sent (RFC 3711 §3.3.1), once a packet went out.
    roc: u32,
    highest: Option<u16>,
    srtcp_index: u32,
}

impl SrtpCm {
    /// Derive the SRTP (labels 0, 1, 2) and SRTCP (labels 3, 4, 5) session keys (RFC 3711 §4.3).
    pub fn new(master_key: &[u8; 16], master_salt: &[u8; 14]) -> Self {
        let master = AesCm::<Native>::new(master_key);
        SrtpCm {
            rtp: SessionKeys::derive(&master, master_salt, 0),
            rtcp: SessionKeys::derive(&master, master_salt, 3),
            roc: 0,
            highest: None,
            srtcp_index: 0,
        }
    }

    /// The rollover counter for `seq`, updating the sender's state (RFC 3711 Appendix A): the
    /// counter moves on when the sequence number wraps from 65535 to 0.
    fn rollover(&mut self, seq: u16) -> u32 {
        let Some(s_l) = self.highest else {
            self.highest = Some(seq);
            return self.roc;
        };
        let v = if s_l < 0x8000 {
            if seq > s_l && seq - s_l > 0x8000 {
                self.roc.saturating_sub(1)
            } else {
                self.roc
            }
        } else if s_l - 0x8000 > seq {
            self.roc.wrapping_add(1)
        } else {
            self.roc
        };
        if v == self.roc.wrapping_add(1) {
            self.roc = v;
            self.highest = Some(seq);
        } else if v == self.roc && seq > s_l {
            self.highest = Some(seq);
        }
        v
    }

    /// The current rollover counter.
    pub fn roc(&self) -> u32 {
        self.roc
    }

    /// Protect an RTP packet in place: encrypt its payload (after the header, CSRCs and
    /// extension) and append the 10-byte tag over the packet and the rollover counter.
    pub fn protect_rtp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        self.protect_rtp_at(packet, 0)
    }

    /// [`SrtpCm::protect_rtp`] for the packet that ends `buf` and starts at `start` (so a
    /// packet is protected where it was written, in a buffer holding others before it).
    pub fn protect_rtp_at(&mut self, buf: &mut Vec<u8>, start: usize) -> Result<(), SrtpError> {
        let packet = buf.get(start..).ok_or(SrtpError::RtpHeader)?;
        let header = rtp_header_len(packet)?;
        let seq = u16::from_be_bytes([packet[2], packet[3]]);
        let ssrc = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]);
        let roc = self.rollover(seq);
        let index = (roc as u64) << 16 | seq as u64;
        let iv = self.rtp.iv(ssrc, index);
        self.rtp.cipher.apply_keystream(&iv, &mut buf[start + header..]);
        let len = buf.len();
        buf.reserve(4 + TAG_LEN);
        buf.extend_from_slice(&roc.to_be_bytes());
        let tag = self.rtp.auth.mac(&buf[start..]);
        buf.truncate(len);
        buf.extend_from_slice(&tag[..TAG_LEN]);
        Ok(())
    }

    /// Protect several RTP packets of `buf` in place. `spans[i] = (start, end)`: packet `i` is
    /// `buf[start..end]` and `buf[end..end + TAG_LEN]` is room reserved for its tag (any bytes
    /// before, the tag after). Packets are given in sending order (sequence numbers increasing,
    /// for the rollover counter). The result is that of [`SrtpCm::protect_rtp`] on each packet in
    /// turn, except that every span is checked first: on an error nothing has been changed.
    ///
    /// Packets of equal length are authenticated four at a time ([`HmacSha1::mac4`]).
    pub fn protect_rtp_batch(&mut self, buf: &mut [u8], spans: &[(usize, usize)]) -> Result<(), SrtpError> {
        for &(start, end) in spans {
            if start > end || end.checked_add(TAG_LEN).map_or(true, |e| e > buf.len()) {
                return Err(SrtpError::RtpHeader);
            }
            rtp_header_len(&buf[start..end])?;
        }
        for &(start, end) in spans {
            let header = rtp_header_len(&buf[start..end])?;
            let packet = &buf[start..end];
            let seq = u16::from_be_bytes([packet[2], packet[3]]);
            let ssrc = u32::from_be_bytes([packet[8], packet[9], packet[10], packet[11]]);
            let roc = self.rollover(seq);
            let index = (roc as u64) << 16 | seq as u64;
            let iv = self.rtp.iv(ssrc, index);
            self.rtp.cipher.apply_keystream(&iv, &mut buf[start + header..end]);
            // The authenticated message is packet || ROC: the ROC goes where the tag will be.
            buf[end..end + 4].copy_from_slice(&roc.to_be_bytes());
        }
        // Open groups of packets of one length: (length, members, count). A full group is
        // authenticated four at a time; when all slots are taken, the smallest group is flushed
        // one packet at a time, and so are the groups left at the end.
        const SLOTS: usize = 4;
        let mut groups = [(0usize, [0usize; 4], 0usize); SLOTS];
        for (i, &(start, end)) in spans.iter().enumerate() {
            let len = end - start;
            let slot = match groups.iter().position(|g| g.2 > 0 && g.0 == len) {
                Some(slot) => slot,
                None => {
                    let slot = groups.iter().position(|g| g.2 == 0).unwrap_or_else(|| {
                        let slot = (0..SLOTS).min_by_key(|&s| groups[s].2).unwrap_or(0);
                        let (_, members, count) = groups[slot];
                        self.tag_singles(buf, spans, &members[..count]);
                        groups[slot].2 = 0;
                        slot
                    });
                    groups[slot].0 = len;
                    slot
                }
            };
            let g = &mut groups[slot];
            g.1[g.2] = i;
            g.2 += 1;
            if g.2 == 4 {
                let members = g.1;
                g.2 = 0;
                self.tag_four(buf, members.map(|m| spans[m]));
            }
        }
        for (_, members, count) in groups {
            self.tag_singles(buf, spans, &members[..count]);
        }
        Ok(())
    }

    /// Replace the ROC after each packet `spans[m]` (`m` in `members`) by the packet's tag.
    fn tag_singles(&self, buf: &mut [u8], spans: &[(usize, usize)], members: &[usize]) {
        for &m in members {
            let (start, end) = spans[m];
            let tag = self.rtp.auth.mac(&buf[start..end + 4]);
            buf[end..end + TAG_LEN].copy_from_slice(&tag[..TAG_LEN]);
        }
    }

    /// [`SrtpCm::tag_singles`] for four packets of equal length at once.
    fn tag_four(&self, buf: &mut [u8], spans: [(usize, usize); 4]) {
        let buf_ref: &[u8] = buf;
        let tags = self.rtp.auth.mac4(spans.map(|(start, end)| &buf_ref[start..end + 4]));
        for ((_, end), tag) in spans.into_iter().zip(tags) {
            buf[end..end + TAG_LEN].copy_from_slice(&tag[..TAG_LEN]);
        }
    }

    /// The SRTCP index the next [`SrtpCm::protect_rtcp`] will use.
    pub fn next_srtcp_index(&self) -> u32 {
        if self.srtcp_index >= MAX_SRTCP_INDEX {
            0
        } else {
            self.srtcp_index + 1
        }
    }

    /// Set the SRTCP index of the last packet sent (the next one gets the one after it). A new
    /// context behaves as if index 0 had been sent, so its first packet carries index 1.
    pub fn set_srtcp_index(&mut self, last: u32) {
        self.srtcp_index = last & MAX_SRTCP_INDEX;
    }

    /// Protect a (compound) RTCP packet in place: encrypt everything after the first 8 bytes,
    /// append the E flag with the 31-bit SRTCP index, then the 10-byte tag over all of it.
    pub fn protect_rtcp(&mut self, packet: &mut Vec<u8>) -> Result<(), SrtpError> {
        if packet.len() < 8 {
            return Err(SrtpError::RtcpHeader);
        }
        let index = self.next_srtcp_index();
        self.srtcp_index = index;
        let ssrc = u32::from_be_bytes([packet[4], packet[5], packet[6], packet[7]]);
        let iv = self.rtcp.iv(ssrc, index as u64);
        self.rtcp.cipher.apply_keystream(&iv, &mut packet[8..]);
        packet.reserve(4 + TAG_LEN);
        packet.extend_from_slice(&(index | 0x8000_0000).to_be_bytes());
        let tag = self.rtcp.auth.mac(packet);
        packet.extend_from_slice(&tag[..TAG_LEN]);
        Ok(())
    }
}
