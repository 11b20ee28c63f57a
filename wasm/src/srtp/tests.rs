//! Known-answer tests (FIPS-197, RFC 3711 Appendix B, RFC 2202) and byte-for-byte agreement with
//! `rtc-srtp` and the RustCrypto primitives.

use super::aes::{expand_key, sbox_byte, transpose, Aes128};
use super::cm::{derive_key, AesCm};
use super::lanes::{Lane, Native, Portable};
use super::sha1::{sha1, HmacSha1};
use super::*;
use rtc_srtp::context::Context;
use rtc_srtp::protection_profile::ProtectionProfile;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

fn arr<const N: usize>(v: &[u8]) -> [u8; N] {
    v.try_into().unwrap()
}

/// A small deterministic generator for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The S-box from its definition: multiplicative inverse in GF(2^8), then the affine map.
fn reference_sbox(x: u8) -> u8 {
    fn mul(mut a: u8, mut b: u8) -> u8 {
        let mut p = 0u8;
        while b != 0 {
            if b & 1 != 0 {
                p ^= a;
            }
            a = (a << 1) ^ if a & 0x80 != 0 { 0x1b } else { 0 };
            b >>= 1;
        }
        p
    }
    let inv = (1..=255u8).find(|&y| mul(x, y) == 1).unwrap_or(0);
    inv ^ inv.rotate_left(1) ^ inv.rotate_left(2) ^ inv.rotate_left(3) ^ inv.rotate_left(4) ^ 0x63
}

#[test]
fn the_sbox_circuit_is_the_aes_sbox() {
    for x in 0..=255u8 {
        assert_eq!(sbox_byte(x), reference_sbox(x), "S({x:#04x})");
    }
}

#[test]
fn transpose_is_a_bit_matrix_transpose_and_its_own_inverse() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let bytes: Vec<[u8; 16]> = (0..8).map(|_| arr(&rng.bytes(16))).collect();
    let mut x: [Portable; 8] = core::array::from_fn(|k| Portable::load(&bytes[k]));
    transpose(&mut x);
    for b in 0..8 {
        let mut out = [0u8; 16];
        x[b].store(&mut out);
        for j in 0..16 {
            for k in 0..8 {
                assert_eq!((out[j] >> k) & 1, (bytes[k][j] >> b) & 1);
            }
        }
    }
    transpose(&mut x);
    for k in 0..8 {
        assert_eq!(x[k], Portable::load(&bytes[k]));
    }
}

#[test]
fn fips_197_key_expansion_and_aes_128() {
    // Appendix A.1: the last round key.
    let rk = expand_key(&arr(&hex("2b7e151628aed2a6abf7158809cf4f3c")));
    assert_eq!(rk[10].to_vec(), hex("d014f9a8c9ee2589e13f0cc8b6630ca6"));
    // Appendix B and C.1.
    let aes = Aes128::<Native>::new(&arr(&hex("2b7e151628aed2a6abf7158809cf4f3c")));
    let mut block = arr(&hex("3243f6a8885a308d313198a2e0370734"));
    aes.encrypt_block(&mut block);
    assert_eq!(block.to_vec(), hex("3925841d02dc09fbdc118597196a0b32"));
    let aes = Aes128::<Native>::new(&arr(&hex("000102030405060708090a0b0c0d0e0f")));
    let mut blocks = [arr(&hex("00112233445566778899aabbccddeeff")); 8];
    blocks[3] = [0; 16];
    aes.encrypt8(&mut blocks);
    for (k, b) in blocks.iter().enumerate() {
        if k != 3 {
            assert_eq!(b.to_vec(), hex("69c4e0d86a7b0430d8cdb78070b4c55a"));
        }
    }
    // The all-zero block under this key, against RustCrypto.
    use ::aes::cipher::{BlockEncrypt, KeyInit};
    let reference = ::aes::Aes128::new_from_slice(&hex("000102030405060708090a0b0c0d0e0f")).unwrap();
    let mut zero = ::aes::Block::default();
    reference.encrypt_block(&mut zero);
    assert_eq!(blocks[3][..], zero[..]);
}

#[test]
fn rfc_3711_b2_keystream() {
    let cm = AesCm::<Native>::new(&arr(&hex("2B7E151628AED2A6ABF7158809CF4F3C")));
    let mut iv = [0u8; 16];
    iv[..14].copy_from_slice(&hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD"));
    let mut ks = [0u8; 16 * 65536 / 4096];
    cm.apply_keystream(&iv, &mut ks);
    assert_eq!(ks[..16].to_vec(), hex("E03EAD0935C95E80E166B16DD92B4EB4"));
    assert_eq!(ks[16..32].to_vec(), hex("D23513162B02D0F72A43A2FE4A5F97AB"));
    assert_eq!(ks[32..48].to_vec(), hex("41E95B3BB0A2E8DD477901E4FCA894C0"));
    // The RFC's last blocks (counter 0xFEFF..0xFF01) need 2^20 bytes of keystream.
    let mut long = vec![0u8; 0xff02 * 16];
    cm.apply_keystream(&iv, &mut long);
    assert_eq!(long[0xfeff * 16..0xff00 * 16].to_vec(), hex("EC8CDF7398607CB0F2D21675EA9EA1E4"));
    assert_eq!(long[0xff00 * 16..0xff01 * 16].to_vec(), hex("362B7C3C6773516318A077D7FC5073AE"));
    assert_eq!(long[0xff01 * 16..].to_vec(), hex("6A2CC3787889374FBEB4C81B17BA6C44"));
}

#[test]
fn rfc_3711_b3_key_derivation() {
    let master = AesCm::<Native>::new(&arr(&hex("E1F97A0D3E018BE0D64FA32C06DE4139")));
    let salt: [u8; 14] = arr(&hex("0EC675AD498AFEEBB6960B3AABE6"));
    let mut key = [0u8; 16];
    derive_key(&master, &salt, 0, &mut key);
    assert_eq!(key.to_vec(), hex("C61E7A93744F39EE10734AFE3FF7A087"));
    let mut s = [0u8; 14];
    derive_key(&master, &salt, 2, &mut s);
    assert_eq!(s.to_vec(), hex("30CBBC08863D8C85D49DB34A9AE1"));
    let mut auth = [0u8; 94];
    derive_key(&master, &salt, 1, &mut auth);
    assert_eq!(
        auth.to_vec(),
        hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA48F0A0ACF3C34E2359E6CDBCE
             E049646C43D9327AD175578EF7227098 6371C10C9A369AC2F94A8C5FBCDDDC25
             6D6E919A48B610EF17C2041E47403576 6B68642C59BBFC2F34DB60DBDFB2")
    );
}

#[test]
fn keystream_matches_rustcrypto_ctr_for_all_lengths() {
    use ::aes::cipher::{KeyIvInit, StreamCipher};
    let mut rng = Rng(42);
    for len in (0..300).chain([1199, 1200, 1201, 1500, 4096]) {
        let key: [u8; 16] = arr(&rng.bytes(16));
        let mut iv: [u8; 16] = arr(&rng.bytes(16));
        iv[14] = 0;
        iv[15] = 0;
        let data = rng.bytes(len);
        let mut ours = data.clone();
        AesCm::<Native>::new(&key).apply_keystream(&iv, &mut ours);
        let mut theirs = data.clone();
        ctr::Ctr128BE::<::aes::Aes128>::new(&key.into(), &iv.into()).apply_keystream(&mut theirs);
        assert_eq!(ours, theirs, "length {len}");
    }
}

/// On WebAssembly with SIMD128, the SIMD registers and the portable ones give the same bytes.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
#[test]
fn simd_and_portable_agree() {
    use super::lanes::Simd;
    let mut rng = Rng(7);
    for len in (0..260).chain([1200, 1500, 9000]) {
        let key: [u8; 16] = arr(&rng.bytes(16));
        let mut iv: [u8; 16] = arr(&rng.bytes(16));
        iv[14] = 0;
        iv[15] = 0;
        let data = rng.bytes(len);
        let mut a = data.clone();
        AesCm::<Simd>::new(&key).apply_keystream(&iv, &mut a);
        let mut b = data.clone();
        AesCm::<Portable>::new(&key).apply_keystream(&iv, &mut b);
        assert_eq!(a, b, "length {len}");
    }
    let mut blocks: [[u8; 16]; 8] = core::array::from_fn(|_| arr(&rng.bytes(16)));
    let mut other = blocks;
    let key: [u8; 16] = arr(&rng.bytes(16));
    Aes128::<Simd>::new(&key).encrypt8(&mut blocks);
    Aes128::<Portable>::new(&key).encrypt8(&mut other);
    assert_eq!(blocks, other);
}

#[test]
fn rfc_2202_hmac_sha1() {
    let cases: [(Vec<u8>, Vec<u8>, &str); 7] = [
        (vec![0x0b; 20], b"Hi There".to_vec(), "b617318655057264e28bc0b6fb378c8ef146be00"),
        (b"Jefe".to_vec(), b"what do ya want for nothing?".to_vec(), "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"),
        (vec![0xaa; 20], vec![0xdd; 50], "125d7342b9ac11cd91a39af48aa17b4f63f175d3"),
        ((1..=25).collect(), vec![0xcd; 50], "4c9007f4026250c6bc8414f9bf50c86c2d7235da"),
        (vec![0x0c; 20], b"Test With Truncation".to_vec(), "4c1a03424b55e07fe7f27be1d58bb9324a9a5a04"),
        (
            vec![0xaa; 80],
            b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(),
            "aa4ae5e15272d00e95705637ce8a3b55ed402112",
        ),
        (
            vec![0xaa; 80],
            b"Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data".to_vec(),
            "e8e99d0f45237d786d6bbaa7965c7808bbff1a91",
        ),
    ];
    for (key, data, digest) in cases {
        assert_eq!(HmacSha1::new(&key).mac(&data).to_vec(), hex(digest));
    }
}

#[test]
fn sha1_and_hmac_match_rustcrypto_for_all_lengths() {
    use hmac::Mac;
    use ::sha1::Digest;
    let mut rng = Rng(99);
    let key = rng.bytes(20);
    let ours = HmacSha1::new(&key);
    for len in 0..400 {
        let data = rng.bytes(len);
        assert_eq!(sha1(&data)[..], ::sha1::Sha1::digest(&data)[..], "length {len}");
        let mut mac = <hmac::Hmac<::sha1::Sha1> as Mac>::new_from_slice(&key).unwrap();
        mac.update(&data);
        assert_eq!(ours.mac(&data)[..], mac.finalize().into_bytes()[..], "length {len}");
    }
}

fn rtc_context(key: &[u8], salt: &[u8]) -> Context {
    let provider = rtc_srtp::crypto::default_provider().unwrap();
    Context::new(key, salt, ProtectionProfile::Aes128CmHmacSha1_80, None, None, provider.crypto()).unwrap()
}

/// An RTP packet: optional CSRCs and a one-byte header extension, then `payload` bytes.
fn rtp_packet(rng: &mut Rng, seq: u16, ssrc: u32, csrcs: usize, extension: bool, payload: usize) -> Vec<u8> {
    let mut p = vec![0x80 | csrcs as u8 | if extension { 0x10 } else { 0 }, 96 | (rng.next() as u8 & 0x80)];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(&(rng.next() as u32).to_be_bytes());
    p.extend_from_slice(&ssrc.to_be_bytes());
    for _ in 0..csrcs {
        p.extend_from_slice(&(rng.next() as u32).to_be_bytes());
    }
    if extension {
        // RFC 8285 one-byte form: id 1 with 2 bytes, id 2 with 3 bytes, then padding.
        p.extend_from_slice(&[0xbe, 0xde, 0, 2, 0x11, 0xaa, 0xbb, 0x22, 1, 2, 3, 0]);
    }
    p.extend(rng.bytes(payload));
    p
}

#[test]
fn rtp_packets_are_rtc_srtp_bytes_across_two_rollovers() {
    let mut rng = Rng(2024);
    let (key, salt) = (rng.bytes(16), rng.bytes(14));
    let mut ours = SrtpCm::new(&arr(&key), &arr(&salt));
    let mut theirs = rtc_context(&key, &salt);
    let ssrc = 0x5501_a0b2;
    let mut seq: u16 = 65_000;
    let mut packet = Vec::new();
    for i in 0..130_000u32 {
        // Every size around the batch boundaries, and full datagrams now and then.
        let payload = if i % 50 == 0 { 1178 } else { rng.below(300) };
        let (csrcs, ext) = if i % 7 == 0 { (rng.below(4), i % 14 == 0) } else { (0, false) };
        let plain = rtp_packet(&mut rng, seq, ssrc, csrcs, ext, payload);
        packet.clear();
        packet.extend_from_slice(&plain);
        ours.protect_rtp(&mut packet).unwrap();
        let expected = theirs.encrypt_rtp(&plain).unwrap();
        assert_eq!(packet[..], expected[..], "packet {i}, sequence {seq}, roc {}", ours.roc());
        seq = seq.wrapping_add(1);
    }
    assert_eq!(ours.roc(), 2);
}

#[test]
fn rtp_packets_of_every_length_are_rtc_srtp_bytes() {
    let mut rng = Rng(5);
    let (key, salt) = (rng.bytes(16), rng.bytes(14));
    let mut ours = SrtpCm::new(&arr(&key), &arr(&salt));
    let mut theirs = rtc_context(&key, &salt);
    for (i, payload) in (0..1500).enumerate() {
        let seq = 65_535u16.wrapping_add(i as u16);
        let plain = rtp_packet(&mut rng, seq, 0xdead_beef, 0, false, payload);
        let mut packet = plain.clone();
        ours.protect_rtp(&mut packet).unwrap();
        assert_eq!(packet[..], theirs.encrypt_rtp(&plain).unwrap()[..], "payload {payload}");
    }
}

#[test]
fn rtcp_packets_are_rtc_srtp_bytes() {
    let mut rng = Rng(77);
    let (key, salt) = (rng.bytes(16), rng.bytes(14));
    let mut ours = SrtpCm::new(&arr(&key), &arr(&salt));
    let mut theirs = rtc_context(&key, &salt);
    for i in 0..2000usize {
        let words = 1 + rng.below(if i % 10 == 0 { 300 } else { 40 });
        let mut plain = vec![0x80, 200];
        plain.extend_from_slice(&((words - 1) as u16).to_be_bytes());
        plain.extend_from_slice(&0x1234_5678u32.to_be_bytes());
        plain.extend(rng.bytes(4 * words - 8 + 4 * (words == 1) as usize));
        let mut packet = plain.clone();
        ours.protect_rtcp(&mut packet).unwrap();
        assert_eq!(packet[..], theirs.encrypt_rtcp(&plain).unwrap()[..], "packet {i}");
        assert_eq!(u32::from_be_bytes(arr(&packet[packet.len() - 14..packet.len() - 10])), 0x8000_0000 | (i as u32 + 1));
    }
}

#[test]
fn srtcp_index_wraps_after_2_pow_31() {
    let mut s = SrtpCm::new(&[1; 16], &[2; 14]);
    s.set_srtcp_index(MAX_SRTCP_INDEX - 1);
    let mut p = vec![0x80, 200, 0, 1, 0, 0, 0, 9];
    s.protect_rtcp(&mut p).unwrap();
    assert_eq!(p[8..12], [0xff, 0xff, 0xff, 0xff]);
    let mut p = vec![0x80, 200, 0, 1, 0, 0, 0, 9];
    s.protect_rtcp(&mut p).unwrap();
    assert_eq!(p[8..12], [0x80, 0, 0, 0]);
}

#[test]
fn malformed_packets_are_errors() {
    let mut s = SrtpCm::new(&[1; 16], &[2; 14]);
    assert_eq!(s.protect_rtp(&mut vec![0x80; 11]), Err(SrtpError::RtpHeader));
    let mut csrc = vec![0x82, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0];
    assert_eq!(s.protect_rtp(&mut csrc), Err(SrtpError::RtpHeader), "one CSRC missing");
    let mut ext = vec![0x90, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0xbe, 0xde, 0, 1];
    assert_eq!(s.protect_rtp(&mut ext), Err(SrtpError::RtpHeader), "extension body missing");
    assert_eq!(s.protect_rtcp(&mut vec![0x80; 7]), Err(SrtpError::RtcpHeader));
}

#[test]
fn four_lane_hmac_is_the_single_lane_one() {
    use super::sha1::Portable4;
    let mut rng = Rng(4444);
    for len in 0..=300 {
        let key = rng.bytes(if len % 37 == 0 { 80 } else { 20 });
        let h = HmacSha1::new(&key);
        let msgs: Vec<Vec<u8>> = (0..4).map(|_| rng.bytes(len)).collect();
        let data: [&[u8]; 4] = core::array::from_fn(|l| &msgs[l][..]);
        let expected: [[u8; 20]; 4] = core::array::from_fn(|l| h.mac(&msgs[l]));
        assert_eq!(h.mac4(data), expected, "length {len}");
        assert_eq!(h.mac4_lanes::<Portable4>(data), expected, "length {len}");
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        assert_eq!(h.mac4_lanes::<super::sha1::Simd4>(data), expected, "length {len}");
    }
    // Four copies of one message, and messages differing in one byte only.
    let h = HmacSha1::new(&[0x0b; 20]);
    let same = [&b"Hi There"[..]; 4];
    assert_eq!(h.mac4(same)[3].to_vec(), hex("b617318655057264e28bc0b6fb378c8ef146be00"));
    let base = rng.bytes(1206);
    let msgs: Vec<Vec<u8>> = (0..4).map(|l| {
        let mut m = base.clone();
        m[l * 300] ^= 1;
        m
    }).collect();
    let data: [&[u8]; 4] = core::array::from_fn(|l| &msgs[l][..]);
    assert_eq!(h.mac4(data), core::array::from_fn(|l| h.mac(&msgs[l])));
}

#[test]
fn batch_protection_is_per_packet_protection() {
    let mut rng = Rng(31337);
    let (key, salt) = (rng.bytes(16), rng.bytes(14));
    let mut batch = SrtpCm::new(&arr(&key), &arr(&salt));
    let mut single = batch.clone();
    let ssrc = 0x0bad_cafe;
    let mut seq: u16 = 65_100;
    for round in 0..400 {
        let n = 1 + rng.below(40);
        // Mostly full-size fragments, some of a few other shared lengths, some of any length.
        let full = 1100 + rng.below(100);
        let other = rng.below(200);
        let lead = rng.below(20);
        let mut buf = rng.bytes(lead);
        let mut spans = Vec::new();
        let mut expected = Vec::new();
        for _ in 0..n {
            let payload = match (round % 4, rng.below(10)) {
                (0, _) => full,
                (_, 0..=5) => full,
                (_, 6 | 7) => other,
                _ => rng.below(1300),
            };
            let (csrcs, ext) = if rng.below(8) == 0 { (rng.below(3), rng.below(2) == 0) } else { (0, false) };
            let plain = rtp_packet(&mut rng, seq, ssrc, csrcs, ext, payload);
            seq = seq.wrapping_add(1 + (rng.below(30) == 0) as u16);
            let start = buf.len();
            buf.extend_from_slice(&plain);
            spans.push((start, buf.len()));
            let room = TAG_LEN + rng.below(3);
            buf.extend(rng.bytes(room));
            let mut p = plain.clone();
            single.protect_rtp(&mut p).unwrap();
            expected.push(p);
        }
        let before = buf.clone();
        batch.protect_rtp_batch(&mut buf, &spans).unwrap();
        let mut covered = vec![false; buf.len()];
        for (i, &(start, end)) in spans.iter().enumerate() {
            assert_eq!(buf[start..end + TAG_LEN], expected[i][..], "round {round}, packet {i} of {n}");
            covered[start..end + TAG_LEN].iter_mut().for_each(|c| *c = true);
        }
        for (k, c) in covered.iter().enumerate() {
            if !*c {
                assert_eq!(buf[k], before[k], "byte {k} outside the packets changed");
            }
        }
        assert_eq!(batch.roc(), single.roc());
    }
    assert!(batch.roc() >= 1, "the batches crossed a sequence number rollover");
}

#[test]
fn batch_checks_every_span_before_changing_anything() {
    let mut s = SrtpCm::new(&[1; 16], &[2; 14]);
    let good = vec![0x80, 96, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 9, 9];
    let mut buf = good.clone();
    buf.extend([0; TAG_LEN]);
    let short = buf.len();
    buf.extend_from_slice(&[0x80; 11]);
    buf.extend([0; TAG_LEN]);
    let before = buf.clone();
    let spans = [(0, good.len()), (short, short + 11)];
    assert_eq!(s.protect_rtp_batch(&mut buf, &spans), Err(SrtpError::RtpHeader));
    assert_eq!(buf, before);
    let len = buf.len();
    assert_eq!(s.protect_rtp_batch(&mut buf, &[(0, len - 5)]), Err(SrtpError::RtpHeader), "no room for the tag");
    assert_eq!(s.protect_rtp_batch(&mut buf, &[(5, 4)]), Err(SrtpError::RtpHeader));
    assert_eq!(buf, before);
    assert_eq!(s.protect_rtp_batch(&mut buf, &[]), Ok(()));
    s.protect_rtp_batch(&mut buf, &spans[..1]).unwrap();
    let mut p = good.clone();
    SrtpCm::new(&[1; 16], &[2; 14]).protect_rtp(&mut p).unwrap();
    assert_eq!(buf[..p.len()], p[..]);
}
