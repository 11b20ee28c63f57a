//! Constant-time AES-128 encryption, bitsliced: eight blocks at a time in eight 128-bit
//! registers (register `b`, byte `j`, bit `k` is bit `b` of state byte `j` of block `k`).
//!
//! SubBytes is a Boolean circuit (the Boyar–Peralta depth-16 S-box: XOR and AND only), ShiftRows
//! and MixColumns are constant byte permutations and XORs, so nothing indexes memory with secret
//! data and no branch depends on it. The S-box's affine constant `0x63` is folded into the round
//! keys of rounds 1–10.

use super::lanes::Lane;
use core::ops::{BitAnd, BitXor};

/// The AES S-box on eight bit planes (`x[0]` holds the least significant bits), without its
/// affine constant `0x63` (callers add it). Works on any bitwise type: one byte per bit as
/// `0`/`1`, or whole registers of bitsliced bytes.
#[inline(always)]
pub(crate) fn sbox_planes<T: Copy + BitXor<Output = T> + BitAnd<Output = T>>(x: &mut [T; 8]) {
    let (u0, u1, u2, u3, u4, u5, u6, u7) = (x[7], x[6], x[5], x[4], x[3], x[2], x[1], x[0]);
    // Top linear layer.
    let t1 = u0 ^ u3;
    let t2 = u0 ^ u5;
    let t3 = u0 ^ u6;
    let t4 = u3 ^ u5;
    let t5 = u4 ^ u6;
    let t6 = t1 ^ t5;
    let t7 = u1 ^ u2;
    let t8 = u7 ^ t6;
    let t9 = u7 ^ t7;
    let t10 = t6 ^ t7;
    let t11 = u1 ^ u5;
    let t12 = u2 ^ u5;
    let t13 = t3 ^ t4;
    let t14 = t6 ^ t11;
    let t15 = t5 ^ t11;
    let t16 = t5 ^ t12;
    let t17 = t9 ^ t16;
    let t18 = u3 ^ u7;
    let t19 = t7 ^ t18;
    let t20 = t1 ^ t19;
    let t21 = u6 ^ u7;
    let t22 = t7 ^ t21;
    let t23 = t2 ^ t22;
    let t24 = t2 ^ t10;
    let t25 = t20 ^ t17;
    let t26 = t3 ^ t16;
    let t27 = t1 ^ t12;
    // Shared non-linear middle (inversion in GF(2^4)^2).
    let m1 = t13 & t6;
    let m2 = t23 & t8;
    let m3 = t14 ^ m1;
    let m4 = t19 & u7;
    let m5 = m4 ^ m1;
    let m6 = t3 & t16;
    let m7 = t22 & t9;
    let m8 = t26 ^ m6;
    let m9 = t20 & t17;
    let m10 = m9 ^ m6;
    let m11 = t1 & t15;
    let m12 = t4 & t27;
    let m13 = m12 ^ m11;
    let m14 = t2 & t10;
    let m15 = m14 ^ m11;
    let m16 = m3 ^ m2;
    let m17 = m5 ^ t24;
    let m18 = m8 ^ m7;
    let m19 = m10 ^ m15;
    let m20 = m16 ^ m13;
    let m21 = m17 ^ m15;
    let m22 = m18 ^ m13;
    let m23 = m19 ^ t25;
    let m24 = m22 ^ m23;
    let m25 = m22 & m20;
    let m26 = m21 ^ m25;
    let m27 = m20 ^ m21;
    let m28 = m23 ^ m25;
    let m29 = m28 & m27;
    let m30 = m26 & m24;
    let m31 = m20 & m23;
    let m32 = m27 & m31;
    let m33 = m27 ^ m25;
    let m34 = m21 & m22;
    let m35 = m24 & m34;
    let m36 = m24 ^ m25;
    let m37 = m21 ^ m29;
    let m38 = m32 ^ m33;
    let m39 = m23 ^ m30;
    let m40 = m35 ^ m36;
    let m41 = m38 ^ m40;
    let m42 = m37 ^ m39;
    let m43 = m37 ^ m38;
    let m44 = m39 ^ m40;
    let m45 = m42 ^ m41;
    let m46 = m44 & t6;
    let m47 = m40 & t8;
    let m48 = m39 & u7;
    let m49 = m43 & t16;
    let m50 = m38 & t9;
    let m51 = m37 & t17;
    let m52 = m42 & t15;
    let m53 = m45 & t27;
    let m54 = m41 & t10;
    let m55 = m44 & t13;
    let m56 = m40 & t23;
    let m57 = m39 & t19;
    let m58 = m43 & t3;
    let m59 = m38 & t22;
    let m60 = m37 & t20;
    let m61 = m42 & t1;
    let m62 = m45 & t4;
    let m63 = m41 & t2;
    // Bottom linear layer.
    let l0 = m61 ^ m62;
    let l1 = m50 ^ m56;
    let l2 = m46 ^ m48;
    let l3 = m47 ^ m55;
    let l4 = m54 ^ m58;
    let l5 = m49 ^ m61;
    let l6 = m62 ^ l5;
    let l7 = m46 ^ l3;
    let l8 = m51 ^ m59;
    let l9 = m52 ^ m53;
    let l10 = m53 ^ l4;
    let l11 = m60 ^ l2;
    let l12 = m48 ^ m51;
    let l13 = m50 ^ l0;
    let l14 = m52 ^ m61;
    let l15 = m55 ^ l1;
    let l16 = m56 ^ l0;
    let l17 = m57 ^ l1;
    let l18 = m58 ^ l8;
    let l19 = m63 ^ l4;
    let l20 = l0 ^ l1;
    let l21 = l1 ^ l7;
    let l22 = l3 ^ l12;
    let l23 = l18 ^ l2;
    let l24 = l15 ^ l9;
    let l25 = l6 ^ l10;
    let l26 = l7 ^ l9;
    let l27 = l8 ^ l10;
    let l28 = l11 ^ l14;
    let l29 = l11 ^ l17;
    x[7] = l6 ^ l24;
    x[6] = l16 ^ l26;
    x[5] = l19 ^ l28;
    x[4] = l6 ^ l21;
    x[3] = l20 ^ l22;
    x[2] = l25 ^ l29;
    x[1] = l13 ^ l27;
    x[0] = l6 ^ l23;
}

/// The AES S-box of one byte, computed with the circuit (constant time; for the key schedule).
pub(crate) fn sbox_byte(v: u8) -> u8 {
    let mut p = [0u8; 8];
    for (b, plane) in p.iter_mut().enumerate() {
        *plane = (v >> b) & 1;
    }
    sbox_planes(&mut p);
    let mut out = 0u8;
    for (b, plane) in p.iter().enumerate() {
        out |= plane << b;
    }
    out ^ 0x63
}

/// FIPS-197 key expansion of an AES-128 key: the 11 round keys.
pub(crate) fn expand_key(key: &[u8; 16]) -> [[u8; 16]; 11] {
    let mut rk = [[0u8; 16]; 11];
    rk[0] = *key;
    let mut rcon = 1u8;
    for r in 1..11 {
        let prev = rk[r - 1];
        let mut t = [prev[13], prev[14], prev[15], prev[12]];
        for b in t.iter_mut() {
            *b = sbox_byte(*b);
        }
        t[0] ^= rcon;
        // rcon is public: xtime on it needs no masking.
        rcon = (rcon << 1) ^ (((rcon >> 7) & 1) * 0x1b);
        for i in 0..4 {
            for j in 0..4 {
                let w = if i == 0 { t[j] } else { rk[r][4 * (i - 1) + j] };
                rk[r][4 * i + j] = prev[4 * i + j] ^ w;
            }
        }
    }
    rk
}

/// `0xff` if bit `b` of `v` is set, else `0`, without branching.
#[inline(always)]
pub(crate) fn bit_mask(v: u8, b: usize) -> u8 {
    0u8.wrapping_sub((v >> b) & 1)
}

/// The bitsliced form of one 16-byte value applied to all eight blocks (a round key, a common
/// counter prefix): plane `b`, byte `j` is `0xff` when bit `b` of `v[j]` is set.
#[inline(always)]
pub(crate) fn broadcast_planes(v: &[u8; 16]) -> [[u8; 16]; 8] {
    let mut p = [[0u8; 16]; 8];
    for (b, plane) in p.iter_mut().enumerate() {
        for j in 0..16 {
            plane[j] = bit_mask(v[j], b);
        }
    }
    p
}

/// Exchange the bits of `a` at positions `mask << n` with those of `b` at positions `mask`.
#[inline(always)]
fn swap_move<L: Lane>(a: &mut L, b: &mut L, mask: L, n: u32) {
    let t = (a.shr(n) ^ *b) & mask;
    *b = *b ^ t;
    *a = *a ^ t.shl(n);
}

/// Transpose the 8×8 bit matrix held in each byte position of eight registers: afterwards
/// register `b`, byte `j`, bit `k` is what register `k`, byte `j`, bit `b` was. Its own inverse:
/// it turns eight blocks into bit planes and back.
#[inline(always)]
pub(crate) fn transpose<L: Lane>(x: &mut [L; 8]) {
    let m4 = L::splat(0x0f);
    let m2 = L::splat(0x33);
    let m1 = L::splat(0x55);
    let [x0, x1, x2, x3, x4, x5, x6, x7] = x;
    swap_move(x0, x4, m4, 4);
    swap_move(x1, x5, m4, 4);
    swap_move(x2, x6, m4, 4);
    swap_move(x3, x7, m4, 4);
    swap_move(x0, x2, m2, 2);
    swap_move(x1, x3, m2, 2);
    swap_move(x4, x6, m2, 2);
    swap_move(x5, x7, m2, 2);
    swap_move(x0, x1, m1, 1);
    swap_move(x2, x3, m1, 1);
    swap_move(x4, x5, m1, 1);
    swap_move(x6, x7, m1, 1);
}

/// Inverse ShiftRows as byte indices: output byte `i` is input byte `INV_SHIFT_ROWS[i]`.
const INV_SHIFT_ROWS: [usize; 16] = [0, 13, 10, 7, 4, 1, 14, 11, 8, 5, 2, 15, 12, 9, 6, 3];

/// An expanded AES-128 key in bitsliced form.
#[derive(Clone)]
pub struct Aes128<L: Lane> {
    /// Round key 0 as bytes (counter-mode callers add it to their counter blocks directly).
    pub(crate) rk0: [u8; 16],
    /// Round keys 0–10 as bit planes; 1–10 include the S-box constant.
    planes: [[L; 8]; 11],
}

impl<L: Lane> Aes128<L> {
    /// Expand `key`.
    pub fn new(key: &[u8; 16]) -> Self {
        let rk = expand_key(key);
        let mut planes = [[L::splat(0); 8]; 11];
        for r in 0..11 {
            let mut k = rk[r];
            if r > 0 && r < 10 {
                // Stored in the `SR^-r` byte order the rounds keep the state in.
                let mut order: [usize; 16] = core::array::from_fn(|i| i);
                for _ in 0..r % 4 {
                    order = core::array::from_fn(|i| order[INV_SHIFT_ROWS[i]]);
                }
                k = core::array::from_fn(|i| rk[r][order[i]]);
            }
            if r > 0 {
                for b in k.iter_mut() {
                    *b ^= 0x63;
                }
            }
            let p = broadcast_planes(&k);
            for b in 0..8 {
                planes[r][b] = L::load(&p[b]);
            }
        }
        Aes128 { rk0: rk[0], planes }
    }

    /// Rounds 1–10 on a bitsliced state to which round key 0 has already been added.
    ///
    /// ShiftRows is never applied as such: after round `r` the state is kept with its bytes
    /// permuted by `SR^-r`, so each MixColumns uses row rotations conjugated by that permutation
    /// ([`Lane::rot1`], [`Lane::rot2`]) and round key `r` is stored permuted the same way; the
    /// last round's `SR^10 = SR^2` puts the bytes back in order.
    #[inline(always)]
    pub(crate) fn rounds(&self, s: &mut [L; 8]) {
        self.round::<1>(s, 1);
        self.round::<2>(s, 2);
        self.round::<3>(s, 3);
        self.round::<0>(s, 4);
        self.round::<1>(s, 5);
        self.round::<2>(s, 6);
        self.round::<3>(s, 7);
        self.round::<0>(s, 8);
        self.round::<1>(s, 9);
        sbox_planes(s);
        let k = &self.planes[10];
        for b in 0..8 {
            s[b] = s[b].shift_rows2() ^ k[b];
        }
    }

    /// Round `r` (1–9, `M = r mod 4`): SubBytes, MixColumns in the `SR^-r` byte order, AddRoundKey.
    #[inline(always)]
    fn round<const M: usize>(&self, s: &mut [L; 8], r: usize) {
        sbox_planes(s);
        let k = &self.planes[r];
        let mut r1 = [L::splat(0); 8];
        let mut t = [L::splat(0); 8];
        for b in 0..8 {
            r1[b] = s[b].rot1::<M>();
            t[b] = s[b] ^ r1[b];
        }
        // MixColumns: 2·(a ⊕ R1 a) ⊕ R1 a ⊕ R2(a ⊕ R1 a), then AddRoundKey.
        let x7 = t[7];
        s[0] = x7 ^ r1[0] ^ t[0].rot2::<M>() ^ k[0];
        s[1] = t[0] ^ x7 ^ r1[1] ^ t[1].rot2::<M>() ^ k[1];
        s[2] = t[1] ^ r1[2] ^ t[2].rot2::<M>() ^ k[2];
        s[3] = t[2] ^ x7 ^ r1[3] ^ t[3].rot2::<M>() ^ k[3];
        s[4] = t[3] ^ x7 ^ r1[4] ^ t[4].rot2::<M>() ^ k[4];
        s[5] = t[4] ^ r1[5] ^ t[5].rot2::<M>() ^ k[5];
        s[6] = t[5] ^ r1[6] ^ t[6].rot2::<M>() ^ k[6];
        s[7] = t[6] ^ r1[7] ^ t[7].rot2::<M>() ^ k[7];
    }

    /// Encrypt eight blocks in place.
    pub fn encrypt8(&self, blocks: &mut [[u8; 16]; 8]) {
        let mut s = [L::splat(0); 8];
        for k in 0..8 {
            s[k] = L::load(&blocks[k]);
        }
        transpose(&mut s);
        for b in 0..8 {
            s[b] = s[b] ^ self.planes[0][b];
        }
        self.rounds(&mut s);
        transpose(&mut s);
        for k in 0..8 {
            s[k].store(&mut blocks[k]);
        }
    }

    /// Encrypt one block (runs a full eight-block batch).
    pub fn encrypt_block(&self, block: &mut [u8; 16]) {
        let mut blocks = [[0u8; 16]; 8];
        blocks[0] = *block;
        self.encrypt8(&mut blocks);
        *block = blocks[0];
    }
}
