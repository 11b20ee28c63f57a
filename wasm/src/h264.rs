//! H.264 Annex-B access units to RTP payloads (RFC 6184, packetization-mode 1): single NAL unit
//! packets, STAP-A for the parameter sets, FU-A for NAL units larger than the payload limit.

/// NAL unit types the packetizer treats specially.
const NAL_SPS: u8 = 7;
const NAL_PPS: u8 = 8;
const NAL_AUD: u8 = 9;
const NAL_FILLER: u8 = 12;
const STAP_A: u8 = 24;
const FU_A: u8 = 28;

/// Why an access unit cannot be sent.
#[derive(Debug, PartialEq, Eq)]
pub enum H264Error {
    /// No start code, or only empty NAL units: not Annex-B.
    NoNalUnits,
    /// A NAL unit header has its forbidden_zero_bit set: corrupt or not H.264.
    ForbiddenBit { index: usize },
}

impl std::fmt::Display for H264Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            H264Error::NoNalUnits => write!(f, "no NAL units: the access unit is not Annex-B H.264"),
            H264Error::ForbiddenBit { index } => {
                write!(f, "NAL unit {index} has forbidden_zero_bit set: corrupt or not H.264")
            }
        }
    }
}

/// The NAL units of an Annex-B buffer, without start codes. Bytes before the first start code
/// are ignored; trailing zero bytes of a NAL unit (before the next start code) are trimmed.
pub fn split_annexb(data: &[u8]) -> Vec<&[u8]> {
    let mut nals = Vec::new();
    let mut i = 0;
    let n = data.len();
    // Find the first start code.
    let mut start = None;
    while i + 3 <= n {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            start = Some(i + 3);
            i += 3;
            break;
        }
        i += 1;
    }
    let Some(mut begin) = start else { return nals };
    while i + 3 <= n {
        if data[i] == 0 && data[i + 1] == 0 && data[i + 2] == 1 {
            push_trimmed(&mut nals, &data[begin..i]);
            begin = i + 3;
            i += 3;
        } else {
            i += 1;
        }
    }
    push_trimmed(&mut nals, &data[begin..]);
    nals
}

fn push_trimmed<'a>(nals: &mut Vec<&'a [u8]>, nal: &'a [u8]) {
    let mut end = nal.len();
    while end > 0 && nal[end - 1] == 0 {
        end -= 1;
    }
    if end > 0 {
        nals.push(&nal[..end]);
    }
}

/// Whether an Annex-B access unit holds an IDR slice (NAL type 5): decodable on its own.
pub fn has_idr(access_unit: &[u8]) -> bool {
    split_annexb(access_unit).iter().any(|nal| nal[0] & 0x1f == 5)
}

/// Whether a NAL unit goes on the wire: not access unit delimiters or filler data, and not the
/// types H.264 leaves unspecified (0, 24–31), which RTP uses for STAP/MTAP/FU packets: sent as
/// single NAL unit packets they would be misread by the receiver.
pub fn sendable(nal: &[u8]) -> bool {
    !matches!(nal[0] & 0x1f, 0 | NAL_AUD | NAL_FILLER | 24..=31)
}

/// One RTP payload: up to three slices written one after the other (header bytes, data).
pub struct Payload<'a> {
    pub parts: [&'a [u8]; 3],
    pub marker: bool,
}

/// Packetizes access units with payloads of at most `max_payload` bytes.
pub struct Packetizer {
    max_payload: usize,
    stap: Vec<u8>,
}

impl Packetizer {
    /// `max_payload` is clamped to at least 64 bytes.
    pub fn new(max_payload: usize) -> Self {
        Packetizer { max_payload: max_payload.max(64), stap: Vec::with_capacity(512) }
    }

    /// Call `emit` for every RTP payload of the access unit, in order; the last one has the
    /// marker bit. Returns the number of payloads.
    pub fn packetize<F: FnMut(Payload<'_>)>(
        &mut self,
        access_unit: &[u8],
        mut emit: F,
    ) -> Result<usize, H264Error> {
        let nals: Vec<&[u8]> = split_annexb(access_unit).into_iter().filter(|n| sendable(n)).collect();
        if nals.is_empty() {
            return Err(H264Error::NoNalUnits);
        }
        if let Some(index) = nals.iter().position(|n| n[0] & 0x80 != 0) {
            return Err(H264Error::ForbiddenBit { index });
        }
        let mut count = 0;
        let mut i = 0;
        while i < nals.len() {
            let nal = nals[i];
            let kind = nal[0] & 0x1f;
            // Consecutive SPS/PPS (and what follows them while it fits) go in one STAP-A.
            if (kind == NAL_SPS || kind == NAL_PPS) && i + 1 < nals.len() {
                let mut j = i;
                let mut size = 1;
                while j < nals.len()
                    && matches!(nals[j][0] & 0x1f, NAL_SPS | NAL_PPS)
                    && size + 2 + nals[j].len() <= self.max_payload
                {
                    size += 2 + nals[j].len();
                    j += 1;
                }
                if j - i >= 2 {
                    self.stap.clear();
                    let nri = nals[i..j].iter().map(|n| n[0] & 0x60).max().unwrap_or(0);
                    self.stap.push(nri | STAP_A);
                    for n in &nals[i..j] {
                        self.stap.extend_from_slice(&(n.len() as u16).to_be_bytes());
                        self.stap.extend_from_slice(n);
                    }
                    let last = j == nals.len();
                    emit(Payload { parts: [&self.stap, &[], &[]], marker: last });
                    count += 1;
                    i = j;
                    continue;
                }
            }
            let last_nal = i + 1 == nals.len();
            if nal.len() <= self.max_payload {
                emit(Payload { parts: [nal, &[], &[]], marker: last_nal });
                count += 1;
            } else {
                let indicator = (nal[0] & 0xe0) | FU_A;
                let chunk = self.max_payload - 2;
                let body = &nal[1..];
                let mut off = 0;
                while off < body.len() {
                    let end = (off + chunk).min(body.len());
                    let start_bit = if off == 0 { 0x80 } else { 0 };
                    let end_bit = if end == body.len() { 0x40 } else { 0 };
                    let header = [indicator, start_bit | end_bit | kind];
                    emit(Payload {
                        parts: [&header, &body[off..end], &[]],
                        marker: last_nal && end == body.len(),
                    });
                    count += 1;
                    off = end;
                }
            }
            i += 1;
        }
        Ok(count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(p: &mut Packetizer, au: &[u8]) -> Vec<(Vec<u8>, bool)> {
        let mut out = Vec::new();
        p.packetize(au, |pl| out.push((pl.parts.concat(), pl.marker))).unwrap();
        out
    }

    #[test]
    fn splits_three_and_four_byte_start_codes_and_ignores_leading_garbage() {
        let au = [0xff, 0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 0, 1, 0x65, 4, 5, 0];
        let nals = split_annexb(&au);
        assert_eq!(nals, vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 4, 5][..]]);
        assert!(split_annexb(&[1, 2, 3]).is_empty());
    }

    #[test]
    fn nal_types_that_rtp_reserves_are_not_sent() {
        let mut p = Packetizer::new(1200);
        // Type 24 (unspecified in H.264) would read as a STAP-A on the wire.
        let au = [0, 0, 1, 0x18, 0xff, 0xff, 0, 0, 1, 0x41, 0x9a];
        let out = collect(&mut p, &au);
        assert_eq!(out, vec![(vec![0x41, 0x9a], true)]);
        assert_eq!(p.packetize(&[0, 0, 1, 0x1c, 1], |_| {}), Err(H264Error::NoNalUnits));
    }

    #[test]
    fn sps_pps_in_one_stap_a_then_the_slice_with_the_marker() {
        let au = [0, 0, 0, 1, 9, 0xf0, 0, 0, 0, 1, 0x67, 0x42, 0, 0, 0, 1, 0x68, 0xce, 0, 0, 0, 1, 0x65, 0x88, 0x84];
        let out = collect(&mut Packetizer::new(1200), &au);
        assert_eq!(out.len(), 2, "the AUD is not sent");
        assert_eq!(out[0].0, vec![0x60 | 24, 0, 2, 0x67, 0x42, 0, 2, 0x68, 0xce]);
        assert!(!out[0].1);
        assert_eq!(out[1], (vec![0x65, 0x88, 0x84], true));
    }

    #[test]
    fn fu_a_fragments_cover_the_nal_unit_exactly_once() {
        let mut nal = vec![0x65u8];
        nal.extend((0..5000u32).map(|i| (i % 251) as u8 + 1));
        let mut au = vec![0, 0, 0, 1];
        au.extend_from_slice(&nal);
        let out = collect(&mut Packetizer::new(1000), &au);
        assert_eq!(out.len(), 6);
        let mut rebuilt = vec![(out[0].0[0] & 0xe0) | (out[0].0[1] & 0x1f)];
        for (i, (p, marker)) in out.iter().enumerate() {
            assert!(p.len() <= 1000);
            assert_eq!(p[0] & 0x1f, 28);
            assert_eq!(p[1] & 0x80 != 0, i == 0, "start bit only first");
            assert_eq!(p[1] & 0x40 != 0, i == out.len() - 1, "end bit only last");
            assert_eq!(*marker, i == out.len() - 1);
            rebuilt.extend_from_slice(&p[2..]);
        }
        assert_eq!(rebuilt, nal);
    }

    #[test]
    fn garbage_and_truncated_input_is_an_error_not_a_panic() {
        let mut p = Packetizer::new(1200);
        assert_eq!(p.packetize(&[], |_| {}), Err(H264Error::NoNalUnits));
        assert_eq!(p.packetize(&[0, 0, 1], |_| {}), Err(H264Error::NoNalUnits));
        assert_eq!(p.packetize(&[0, 0, 1, 0xe5, 1], |_| {}), Err(H264Error::ForbiddenBit { index: 0 }));
        // Every prefix of a real access unit either packetizes or fails cleanly.
        let au = [0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1f, 0, 0, 0, 1, 0x68, 0xce, 0x3c, 0x80, 0, 0, 0, 1, 0x65, 0x88];
        for n in 0..=au.len() {
            let _ = p.packetize(&au[..n], |_| {});
        }
    }
}
