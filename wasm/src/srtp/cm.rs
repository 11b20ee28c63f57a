//! AES in counter mode as SRTP uses it (RFC 3711 §4.1.1, AES-CM), and the AES-CM key
//! derivation function (RFC 3711 §4.3.3).

use super::aes::{bit_mask, broadcast_planes, transpose, Aes128};
use super::lanes::Lane;

/// Bit planes of the low three bits of blocks 0–7 of a batch (block `k` has counter `base + k`).
const COUNTER_LOW_BITS: [u8; 8] = [0xaa, 0xcc, 0xf0, 0, 0, 0, 0, 0];

/// An AES-128 counter-mode keystream generator, eight blocks per batch.
#[derive(Clone)]
pub struct AesCm<L: Lane> {
    aes: Aes128<L>,
}

impl<L: Lane> AesCm<L> {
    /// A generator for this AES-128 key.
    pub fn new(key: &[u8; 16]) -> Self {
        AesCm { aes: Aes128::new(key) }
    }

    /// XOR `data` with the keystream of counter blocks `iv`, `iv + 1`, … . The last two bytes of
    /// `iv` must be zero (as in every SRTP/SRTCP counter block and the key derivation): the block
    /// number is written there, so `data` may be at most 2^20 bytes long.
    pub fn apply_keystream(&self, iv: &[u8; 16], data: &mut [u8]) {
        debug_assert!(iv[14] == 0 && iv[15] == 0, "the block counter occupies the last two bytes");
        debug_assert!(data.len() <= 1 << 20, "at most 2^16 blocks");
        let rk0 = &self.aes.rk0;
        let mut first = [0u8; 16];
        for j in 0..16 {
            first[j] = iv[j] ^ rk0[j];
        }
        // Counter block plus round key 0, as planes; bytes 14 and 15 are set per batch.
        let mut planes = broadcast_planes(&first);
        let mut counter: u32 = 0;
        let mut chunks = data.chunks_exact_mut(128);
        for chunk in &mut chunks {
            let ks = self.batch(&mut planes, counter);
            for (k, block) in chunk.chunks_exact_mut(16).enumerate() {
                let block: &mut [u8; 16] = block.try_into().unwrap();
                (L::load(block) ^ ks[k]).store(block);
            }
            counter += 8;
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let ks = self.batch(&mut planes, counter);
            let mut bytes = [[0u8; 16]; 8];
            for k in 0..8 {
                ks[k].store(&mut bytes[k]);
            }
            for (i, d) in rest.iter_mut().enumerate() {
                *d ^= bytes[i / 16][i % 16];
            }
        }
    }

    /// Keystream blocks `counter .. counter + 8` (`counter` a multiple of 8).
    #[inline(always)]
    fn batch(&self, planes: &mut [[u8; 16]; 8], counter: u32) -> [L; 8] {
        let rk0 = &self.aes.rk0;
        let hi = (counter >> 8) as u8 ^ rk0[14];
        let lo = counter as u8 ^ rk0[15];
        let mut s = [L::splat(0); 8];
        for b in 0..8 {
            planes[b][14] = bit_mask(hi, b);
            planes[b][15] = bit_mask(lo, b) ^ COUNTER_LOW_BITS[b];
            s[b] = L::load(&planes[b]);
        }
        self.aes.rounds(&mut s);
        transpose(&mut s);
        s
    }
}

/// RFC 3711 §4.3 key derivation with key derivation rate 0: fill `out` with the AES-CM PRF
/// output for `label` (0/1/2: SRTP encryption key, authentication key, salt; 3/4/5: the same for
/// SRTCP).
pub fn derive_key<L: Lane>(master: &AesCm<L>, master_salt: &[u8; 14], label: u8, out: &mut [u8]) {
    let mut iv = [0u8; 16];
    iv[..14].copy_from_slice(master_salt);
    iv[7] ^= label;
    out.fill(0);
    master.apply_keystream(&iv, out);
}
