//! SRTP as the RFCs define it. A small reference implementation built here from the RustCrypto
//! primitives is first checked against the RFC test vectors (RFC 3711 B.2 keystream, B.3 key
//! derivation; RFC 7714 §16.1.1 AEAD_AES_128_GCM packet); then every byte our sender puts on the
//! wire, for both profiles, must equal what that reference computes from the same master keys.

use aes::cipher::{KeyIvInit, StreamCipher};
use aes_gcm::aead::{AeadInPlace, KeyInit};
use hmac::Mac;
use kvs_media_core::sender::{Profile, Sender};

type AesCtr = ctr::Ctr128BE<aes::Aes128>;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// AES-CTR keystream XOR `data` from the 16-byte counter block `iv`.
fn ctr(key: &[u8], iv: &[u8; 16], data: &mut [u8]) {
    AesCtr::new(key.into(), iv.into()).apply_keystream(data);
}

/// RFC 3711 §4.3.3 AES-CM PRF, key derivation rate 0: `n` bytes for `label`.
fn derive(master_key: &[u8], master_salt: &[u8], label: u8, n: usize) -> Vec<u8> {
    let mut iv = [0u8; 16];
    iv[..master_salt.len()].copy_from_slice(master_salt);
    iv[7] ^= label;
    let mut out = vec![0u8; n];
    ctr(master_key, &iv, &mut out);
    out
}

/// RFC 3711 §4.1.1 AES-CM counter block for one packet.
fn cm_iv(session_salt: &[u8], ssrc: u32, index: u64) -> [u8; 16] {
    let mut iv = [0u8; 16];
    iv[..14].copy_from_slice(session_salt);
    for (i, b) in ssrc.to_be_bytes().iter().enumerate() {
        iv[4 + i] ^= b;
    }
    for (i, b) in index.to_be_bytes()[2..].iter().enumerate() {
        iv[8 + i] ^= b;
    }
    iv
}

/// Reference AES_CM_128_HMAC_SHA1_80 protection of one RTP packet (ROC 0).
fn protect_cm(master_key: &[u8], master_salt: &[u8], rtp: &[u8]) -> Vec<u8> {
    let key = derive(master_key, master_salt, 0, 16);
    let auth = derive(master_key, master_salt, 1, 20);
    let salt = derive(master_key, master_salt, 2, 14);
    let ssrc = u32::from_be_bytes(rtp[8..12].try_into().unwrap());
    let seq = u16::from_be_bytes([rtp[2], rtp[3]]) as u64;
    let mut out = rtp.to_vec();
    ctr(&key, &cm_iv(&salt, ssrc, seq), &mut out[12..]);
    let mut mac = <hmac::Hmac<sha1::Sha1> as Mac>::new_from_slice(&auth).unwrap();
    mac.update(&out);
    mac.update(&0u32.to_be_bytes());
    out.extend_from_slice(&mac.finalize().into_bytes()[..10]);
    out
}

/// Reference AEAD_AES_128_GCM protection (RFC 7714 §8) with session key and salt.
fn seal_gcm(key: &[u8], salt: &[u8], rtp: &[u8]) -> Vec<u8> {
    let mut iv = [0u8; 12];
    iv[2..6].copy_from_slice(&rtp[8..12]);
    iv[10..12].copy_from_slice(&rtp[2..4]);
    for (d, s) in iv.iter_mut().zip(salt) {
        *d ^= s;
    }
    let cipher = aes_gcm::Aes128Gcm::new(key.into());
    let mut body = rtp[12..].to_vec();
    let tag = cipher.encrypt_in_place_detached((&iv).into(), &rtp[..12], &mut body).unwrap();
    [&rtp[..12], &body[..], &tag[..]].concat()
}

/// The datagrams of a sender's batch.
fn datagrams(batch: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut i = 0;
    while i + 4 <= batch.len() {
        let n = u32::from_le_bytes(batch[i..i + 4].try_into().unwrap()) as usize;
        out.push(batch[i + 4..i + 4 + n].to_vec());
        i += 4 + n;
    }
    out
}

#[test]
fn the_reference_matches_rfc_3711_b2_and_b3() {
    // B.3 key derivation.
    let mk = hex("E1F97A0D3E018BE0D64FA32C06DE4139");
    let ms = hex("0EC675AD498AFEEBB6960B3AABE6");
    assert_eq!(derive(&mk, &ms, 0, 16), hex("C61E7A93744F39EE10734AFE3FF7A087"));
    assert_eq!(derive(&mk, &ms, 2, 14), hex("30CBBC08863D8C85D49DB34A9AE1"));
    assert_eq!(derive(&mk, &ms, 1, 20), hex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4"));
    // B.2 keystream: session key and salt, SSRC 0, index 0.
    let mut ks = [0u8; 48];
    ctr(&hex("2B7E151628AED2A6ABF7158809CF4F3C"), &cm_iv(&hex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD"), 0, 0), &mut ks);
    assert_eq!(ks[..16], hex("E03EAD0935C95E80E166B16DD92B4EB4")[..]);
    assert_eq!(ks[16..32], hex("D23513162B02D0F72A43A2FE4A5F97AB")[..]);
    assert_eq!(ks[32..], hex("41E95B3BB0A2E8DD477901E4FCA894C0")[..]);
}

#[test]
fn the_reference_matches_rfc_7714_16_1_1() {
    let rtp = hex("8040f17b 8041f8d3 5501a0b2 47616c6c 69612065 7374206f 6d6e6973 20646976 69736120 696e2070 61727465 73207472 6573");
    let expected = hex(
        "8040f17b 8041f8d3 5501a0b2 f24de3a3 fb34de6c acba861c 9d7e4bca be633bd5 0d294e6f 42a5f47a
         51c7d19b 36de3adf 8833899d 7f27beb1 6a9152cf 765ee439 0cce",
    );
    assert_eq!(seal_gcm(&hex("000102030405060708090a0b0c0d0e0f"), &hex("517569642070726f2071756f"), &rtp), expected);
}

/// One small access unit (a single IDR slice NAL: one RTP packet) through our sender.
fn one_packet(profile: Profile, key: &[u8], salt: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let mut s = Sender::new(profile, key, salt, 0x5501a0b2, 96, 0xf17b, 1200).unwrap();
    let nal = b"\x65Gallia est omnis divisa in partes tres";
    let au = [&[0u8, 0, 0, 1][..], &nal[..]].concat();
    assert_eq!(s.write_frame(&au, 0x8041f8d3).unwrap(), 1);
    let wire = datagrams(s.output()).remove(0);
    // The RTP packet that was protected: V=2, M=1 (the access unit's last packet), PT 96.
    let rtp = [&hex("80e0f17b 8041f8d3 5501a0b2")[..], &nal[..]].concat();
    (rtp, wire)
}

#[test]
fn our_aes_cm_packets_are_the_reference_bytes() {
    let (mk, ms) = (hex("E1F97A0D3E018BE0D64FA32C06DE4139"), hex("0EC675AD498AFEEBB6960B3AABE6"));
    let (rtp, wire) = one_packet(Profile::AesCm128HmacSha1_80, &mk, &ms);
    assert_eq!(wire, protect_cm(&mk, &ms, &rtp));
}

#[test]
fn our_aes_gcm_packets_are_the_reference_bytes() {
    let (mk, ms) = (hex("000102030405060708090a0b0c0d0e0f"), hex("517569642070726f2071756f"));
    let (rtp, wire) = one_packet(Profile::AeadAes128Gcm, &mk, &ms);
    // RFC 7714 §11: session key and salt from the master ones with the AES-CM PRF.
    let expected = seal_gcm(&derive(&mk, &ms, 0, 16), &derive(&mk, &ms, 2, 12), &rtp);
    assert_eq!(wire, expected);
}

/// The SRTCP trailer of a protected packet: E flag and index, as sent.
fn srtcp_e_index(wire: &[u8], tag_len: usize) -> u32 {
    let at = wire.len() - tag_len - 4;
    u32::from_be_bytes(wire[at..at + 4].try_into().unwrap())
}

/// A sender report (our SSRC 0x5501a0b2) with its CNAME, as the session sends them.
fn sender_report() -> Vec<u8> {
    hex("80c80006 5501a0b2 e9b3f1c2 4bc6a7ef 8041f8d3 00000019 00002a6e 81ca0005 5501a0b2 010a6b76 732d6d61 73746572 00000000")
}

#[test]
fn our_aes_cm_srtcp_is_the_reference_bytes() {
    let (mk, ms) = (hex("E1F97A0D3E018BE0D64FA32C06DE4139"), hex("0EC675AD498AFEEBB6960B3AABE6"));
    let mut s = Sender::new(Profile::AesCm128HmacSha1_80, &mk, &ms, 0x5501a0b2, 96, 1, 1200).unwrap();
    let plain = sender_report();
    let wire = s.protect_rtcp(&plain).unwrap();
    let e_index = srtcp_e_index(&wire, 10);
    assert_eq!(e_index >> 31, 1, "E flag: encrypted");
    // RFC 3711 §3.4, §4.1.1: labels 3/4/5, the SRTCP index in the counter block.
    let (key, auth, salt) = (derive(&mk, &ms, 3, 16), derive(&mk, &ms, 4, 20), derive(&mk, &ms, 5, 14));
    let mut expected = plain.clone();
    ctr(&key, &cm_iv(&salt, 0x5501a0b2, (e_index & 0x7fff_ffff) as u64), &mut expected[8..]);
    expected.extend_from_slice(&e_index.to_be_bytes());
    let mut mac = <hmac::Hmac<sha1::Sha1> as Mac>::new_from_slice(&auth).unwrap();
    mac.update(&expected);
    expected.extend_from_slice(&mac.finalize().into_bytes()[..10]);
    assert_eq!(wire, expected);
}

#[test]
fn our_aes_gcm_srtcp_is_the_reference_bytes() {
    let (mk, ms) = (hex("000102030405060708090a0b0c0d0e0f"), hex("517569642070726f2071756f"));
    let mut s = Sender::new(Profile::AeadAes128Gcm, &mk, &ms, 0x5501a0b2, 96, 1, 1200).unwrap();
    let plain = sender_report();
    let wire = s.protect_rtcp(&plain).unwrap();
    let e_index = u32::from_be_bytes(wire[wire.len() - 4..].try_into().unwrap());
    assert_eq!(e_index >> 31, 1, "E flag: encrypted");
    // RFC 7714 §9: IV from SSRC and SRTCP index, AAD = first 8 octets ‖ E ‖ index, the trailer
    // after the tag.
    let (key, salt) = (derive(&mk, &ms, 3, 16), derive(&mk, &ms, 5, 12));
    let mut iv = [0u8; 12];
    iv[2..6].copy_from_slice(&plain[4..8]);
    iv[8..12].copy_from_slice(&(e_index & 0x7fff_ffff).to_be_bytes());
    for (d, s) in iv.iter_mut().zip(&salt) {
        *d ^= s;
    }
    let aad = [&plain[..8], &e_index.to_be_bytes()[..]].concat();
    let mut body = plain[8..].to_vec();
    let tag = aes_gcm::Aes128Gcm::new((&key[..]).into())
        .encrypt_in_place_detached((&iv).into(), &aad, &mut body)
        .unwrap();
    let expected = [&plain[..8], &body[..], &tag[..], &e_index.to_be_bytes()[..]].concat();
    assert_eq!(wire, expected);
}
