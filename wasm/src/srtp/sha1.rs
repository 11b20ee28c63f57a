//! SHA-1 (FIPS 180-4) and HMAC-SHA1 (RFC 2104) with the keyed inner and outer states computed
//! once per key. Data-independent timing: 32-bit additions, rotations and Boolean functions only.
//!
//! [`HmacSha1::mac4`] authenticates four messages of equal length at once, one per 32-bit lane
//! of a WebAssembly SIMD128 register when the target has it (a loop over [`HmacSha1::mac`]
//! elsewhere).

use core::ops::{BitAnd, BitOr, BitXor};

/// SHA-1 initial state.
const IV: [u32; 5] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476, 0xc3d2_e1f0];

/// A 32-bit SHA-1 word, or four of them side by side (one per message).
pub trait Word: Copy + BitXor<Output = Self> + BitAnd<Output = Self> + BitOr<Output = Self> {
    /// `x` in every lane.
    fn splat(x: u32) -> Self;
    /// Lane-wise addition modulo 2^32.
    fn add(self, o: Self) -> Self;
    /// Lane-wise left rotation by `N` bits (`0 < N < 32`).
    fn rotl<const N: u32>(self) -> Self;
}

impl Word for u32 {
    #[inline(always)]
    fn splat(x: u32) -> Self {
        x
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        self.wrapping_add(o)
    }
    #[inline(always)]
    fn rotl<const N: u32>(self) -> Self {
        self.rotate_left(N)
    }
}

macro_rules! round {
    ($a:ident, $b:ident, $c:ident, $d:ident, $e:ident, $w:ident, $i:expr, $f:expr, $k:expr) => {
        if $i >= 16 {
            $w[$i & 15] = ($w[($i + 13) & 15] ^ $w[($i + 8) & 15] ^ $w[($i + 2) & 15] ^ $w[$i & 15]).rotl::<1>();
        }
        $e = $e.add($a.rotl::<5>()).add($f).add($k).add($w[$i & 15]);
        $b = $b.rotl::<30>();
    };
}

macro_rules! five {
    ($a:ident, $b:ident, $c:ident, $d:ident, $e:ident, $w:ident, $i:expr, $fun:ident, $k:expr) => {
        round!($a, $b, $c, $d, $e, $w, $i, $fun($b, $c, $d), $k);
        round!($e, $a, $b, $c, $d, $w, $i + 1, $fun($a, $b, $c), $k);
        round!($d, $e, $a, $b, $c, $w, $i + 2, $fun($e, $a, $b), $k);
        round!($c, $d, $e, $a, $b, $w, $i + 3, $fun($d, $e, $a), $k);
        round!($b, $c, $d, $e, $a, $w, $i + 4, $fun($c, $d, $e), $k);
    };
}

#[inline(always)]
fn ch<W: Word>(b: W, c: W, d: W) -> W {
    d ^ (b & (c ^ d))
}
#[inline(always)]
fn parity<W: Word>(b: W, c: W, d: W) -> W {
    b ^ c ^ d
}
#[inline(always)]
fn maj<W: Word>(b: W, c: W, d: W) -> W {
    (b & c) | (d & (b | c))
}

/// The SHA-1 compression function on message words `w` (big-endian words of the block), for
/// one message or for several side by side.
#[inline(always)]
pub fn compress_words<W: Word>(state: &mut [W; 5], mut w: [W; 16]) {
    let [mut a, mut b, mut c, mut d, mut e] = *state;
    let k1 = W::splat(0x5a82_7999);
    let k2 = W::splat(0x6ed9_eba1);
    let k3 = W::splat(0x8f1b_bcdc);
    let k4 = W::splat(0xca62_c1d6);
    five!(a, b, c, d, e, w, 0, ch, k1);
    five!(a, b, c, d, e, w, 5, ch, k1);
    five!(a, b, c, d, e, w, 10, ch, k1);
    five!(a, b, c, d, e, w, 15, ch, k1);
    five!(a, b, c, d, e, w, 20, parity, k2);
    five!(a, b, c, d, e, w, 25, parity, k2);
    five!(a, b, c, d, e, w, 30, parity, k2);
    five!(a, b, c, d, e, w, 35, parity, k2);
    five!(a, b, c, d, e, w, 40, maj, k3);
    five!(a, b, c, d, e, w, 45, maj, k3);
    five!(a, b, c, d, e, w, 50, maj, k3);
    five!(a, b, c, d, e, w, 55, maj, k3);
    five!(a, b, c, d, e, w, 60, parity, k4);
    five!(a, b, c, d, e, w, 65, parity, k4);
    five!(a, b, c, d, e, w, 70, parity, k4);
    five!(a, b, c, d, e, w, 75, parity, k4);
    state[0] = state[0].add(a);
    state[1] = state[1].add(b);
    state[2] = state[2].add(c);
    state[3] = state[3].add(d);
    state[4] = state[4].add(e);
}

/// The SHA-1 compression function: absorb one 64-byte block into `state`.
pub fn compress(state: &mut [u32; 5], block: &[u8; 64]) {
    let w: [u32; 16] = core::array::from_fn(|i| {
        u32::from_be_bytes([block[4 * i], block[4 * i + 1], block[4 * i + 2], block[4 * i + 3]])
    });
    compress_words(state, w);
}

/// Absorb `data` (whose first byte is message byte `prefix_len`, a multiple of 64) into `state`
/// and finish with the padding; returns the digest.
fn finish(mut state: [u32; 5], prefix_len: u64, data: &[u8]) -> [u8; 20] {
    let mut blocks = data.chunks_exact(64);
    for block in &mut blocks {
        compress(&mut state, block.try_into().unwrap());
    }
    let tail = blocks.remainder();
    let mut last = [0u8; 128];
    last[..tail.len()].copy_from_slice(tail);
    last[tail.len()] = 0x80;
    let n = if tail.len() < 56 { 64 } else { 128 };
    let bits = (prefix_len + data.len() as u64) * 8;
    last[n - 8..n].copy_from_slice(&bits.to_be_bytes());
    compress(&mut state, last[..64].try_into().unwrap());
    if n == 128 {
        compress(&mut state, last[64..].try_into().unwrap());
    }
    let mut out = [0u8; 20];
    for (i, word) in state.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&word.to_be_bytes());
    }
    out
}

/// The SHA-1 digest of `data`.
pub fn sha1(data: &[u8]) -> [u8; 20] {
    finish(IV, 0, data)
}

/// HMAC-SHA1 with its key absorbed: the states after the inner (`key ⊕ ipad`) and outer
/// (`key ⊕ opad`) blocks.
#[derive(Clone)]
pub struct HmacSha1 {
    inner: [u32; 5],
    outer: [u32; 5],
}

impl HmacSha1 {
    /// Absorb `key` (keys longer than 64 bytes are hashed first, as RFC 2104 says).
    pub fn new(key: &[u8]) -> Self {
        let mut k = [0u8; 64];
        if key.len() > 64 {
            k[..20].copy_from_slice(&sha1(key));
        } else {
            k[..key.len()].copy_from_slice(key);
        }
        let mut ipad = [0x36u8; 64];
        let mut opad = [0x5cu8; 64];
        for i in 0..64 {
            ipad[i] ^= k[i];
            opad[i] ^= k[i];
        }
        let mut inner = IV;
        compress(&mut inner, &ipad);
        let mut outer = IV;
        compress(&mut outer, &opad);
        HmacSha1 { inner, outer }
    }

    /// The 20-byte HMAC of `data`.
    pub fn mac(&self, data: &[u8]) -> [u8; 20] {
        let inner = finish(self.inner, 64, data);
        finish(self.outer, 64, &inner)
    }
}

/// Four SHA-1 words side by side, lane `l` belonging to message `l`.
pub trait Word4: Word {
    /// The message words of one 64-byte block of each of the four messages.
    fn gather(blocks: [&[u8; 64]; 4]) -> [Self; 16];
    /// The four lanes.
    fn lanes(self) -> [u32; 4];
}

/// Four words in an array: the portable 4-lane word (used to test the 4-lane algorithm on any
/// target).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Portable4(pub [u32; 4]);

impl BitXor for Portable4 {
    type Output = Self;
    #[inline(always)]
    fn bitxor(self, o: Self) -> Self {
        Portable4(core::array::from_fn(|l| self.0[l] ^ o.0[l]))
    }
}

impl BitAnd for Portable4 {
    type Output = Self;
    #[inline(always)]
    fn bitand(self, o: Self) -> Self {
        Portable4(core::array::from_fn(|l| self.0[l] & o.0[l]))
    }
}

impl BitOr for Portable4 {
    type Output = Self;
    #[inline(always)]
    fn bitor(self, o: Self) -> Self {
        Portable4(core::array::from_fn(|l| self.0[l] | o.0[l]))
    }
}

impl Word for Portable4 {
    #[inline(always)]
    fn splat(x: u32) -> Self {
        Portable4([x; 4])
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        Portable4(core::array::from_fn(|l| self.0[l].wrapping_add(o.0[l])))
    }
    #[inline(always)]
    fn rotl<const N: u32>(self) -> Self {
        Portable4(self.0.map(|x| x.rotate_left(N)))
    }
}

impl Word4 for Portable4 {
    #[inline(always)]
    fn gather(blocks: [&[u8; 64]; 4]) -> [Self; 16] {
        core::array::from_fn(|i| {
            Portable4(core::array::from_fn(|l| {
                let b = blocks[l];
                u32::from_be_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]])
            }))
        })
    }
    #[inline(always)]
    fn lanes(self) -> [u32; 4] {
        self.0
    }
}

/// The WebAssembly SIMD128 4-lane word.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub use simd::Simd4;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd {
    use super::{Word, Word4};
    use core::arch::wasm32::*;
    use core::ops::{BitAnd, BitOr, BitXor};

    /// A `v128` register as four `u32` lanes.
    #[derive(Clone, Copy, Debug)]
    pub struct Simd4(pub v128);

    impl BitXor for Simd4 {
        type Output = Self;
        #[inline(always)]
        fn bitxor(self, o: Self) -> Self {
            Simd4(v128_xor(self.0, o.0))
        }
    }

    impl BitAnd for Simd4 {
        type Output = Self;
        #[inline(always)]
        fn bitand(self, o: Self) -> Self {
            Simd4(v128_and(self.0, o.0))
        }
    }

    impl BitOr for Simd4 {
        type Output = Self;
        #[inline(always)]
        fn bitor(self, o: Self) -> Self {
            Simd4(v128_or(self.0, o.0))
        }
    }

    impl Word for Simd4 {
        #[inline(always)]
        fn splat(x: u32) -> Self {
            Simd4(u32x4_splat(x))
        }
        #[inline(always)]
        fn add(self, o: Self) -> Self {
            Simd4(i32x4_add(self.0, o.0))
        }
        #[inline(always)]
        fn rotl<const N: u32>(self) -> Self {
            Simd4(v128_or(i32x4_shl(self.0, N), u32x4_shr(self.0, 32 - N)))
        }
    }

    /// The four 32-bit words at byte `at` of `bytes`, each read big-endian.
    #[inline(always)]
    fn load_be(bytes: &[u8; 64], at: usize) -> v128 {
        debug_assert!(at <= 48);
        // SAFETY: `at + 16 <= 64` bytes are readable; v128_load has no alignment requirement.
        let x = unsafe { v128_load(bytes.as_ptr().add(at) as *const v128) };
        i8x16_shuffle::<3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12>(x, x)
    }

    impl Word4 for Simd4 {
        #[inline(always)]
        fn gather(blocks: [&[u8; 64]; 4]) -> [Self; 16] {
            let mut w = [Simd4(u32x4_splat(0)); 16];
            for q in 0..4 {
                // Rows: message l's words 4q..4q+4; transpose to word-major.
                let r0 = load_be(blocks[0], 16 * q);
                let r1 = load_be(blocks[1], 16 * q);
                let r2 = load_be(blocks[2], 16 * q);
                let r3 = load_be(blocks[3], 16 * q);
                let t0 = i32x4_shuffle::<0, 4, 1, 5>(r0, r1); // a0 b0 a1 b1
                let t1 = i32x4_shuffle::<2, 6, 3, 7>(r0, r1); // a2 b2 a3 b3
                let t2 = i32x4_shuffle::<0, 4, 1, 5>(r2, r3); // c0 d0 c1 d1
                let t3 = i32x4_shuffle::<2, 6, 3, 7>(r2, r3); // c2 d2 c3 d3
                w[4 * q] = Simd4(i64x2_shuffle::<0, 2>(t0, t2));
                w[4 * q + 1] = Simd4(i64x2_shuffle::<1, 3>(t0, t2));
                w[4 * q + 2] = Simd4(i64x2_shuffle::<0, 2>(t1, t3));
                w[4 * q + 3] = Simd4(i64x2_shuffle::<1, 3>(t1, t3));
            }
            w
        }
        #[inline(always)]
        fn lanes(self) -> [u32; 4] {
            [
                u32x4_extract_lane::<0>(self.0),
                u32x4_extract_lane::<1>(self.0),
                u32x4_extract_lane::<2>(self.0),
                u32x4_extract_lane::<3>(self.0),
            ]
        }
    }
}

/// The 4-lane word the fast path uses on this target.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub type Native4 = Simd4;

/// [`finish`] without the digest bytes, for four messages of one length side by side.
#[inline(always)]
fn absorb4<W: Word4>(state: &mut [W; 5], prefix_len: u64, data: [&[u8]; 4]) {
    let len = data[0].len();
    assert!(data.iter().all(|d| d.len() == len), "the four messages must have one length");
    let full = len / 64;
    for b in 0..full {
        let blocks: [&[u8; 64]; 4] = core::array::from_fn(|l| data[l][64 * b..64 * b + 64].try_into().unwrap());
        compress_words(state, W::gather(blocks));
    }
    let tail = len - 64 * full;
    let mut last = [[0u8; 128]; 4];
    let n = if tail < 56 { 64 } else { 128 };
    let bits = (prefix_len + len as u64) * 8;
    for l in 0..4 {
        last[l][..tail].copy_from_slice(&data[l][64 * full..]);
        last[l][tail] = 0x80;
        last[l][n - 8..n].copy_from_slice(&bits.to_be_bytes());
    }
    for half in 0..n / 64 {
        let blocks: [&[u8; 64]; 4] = core::array::from_fn(|l| last[l][64 * half..64 * half + 64].try_into().unwrap());
        compress_words(state, W::gather(blocks));
    }
}

impl HmacSha1 {
    /// The 20-byte HMACs of four messages of equal length, computed side by side in the lanes
    /// of `W`.
    pub fn mac4_lanes<W: Word4>(&self, data: [&[u8]; 4]) -> [[u8; 20]; 4] {
        let mut inner = self.inner.map(W::splat);
        absorb4(&mut inner, 64, data);
        // The outer message is the 20-byte inner digest: one padded block, already in words.
        let mut w = [W::splat(0); 16];
        w[..5].copy_from_slice(&inner);
        w[5] = W::splat(0x8000_0000);
        w[15] = W::splat((64 + 20) * 8);
        let mut outer = self.outer.map(W::splat);
        compress_words(&mut outer, w);
        let mut out = [[0u8; 20]; 4];
        for (i, word) in outer.iter().enumerate() {
            for (l, x) in word.lanes().into_iter().enumerate() {
                out[l][4 * i..4 * i + 4].copy_from_slice(&x.to_be_bytes());
            }
        }
        out
    }

    /// The 20-byte HMACs of four messages of equal length (panics if the lengths differ).
    pub fn mac4(&self, data: [&[u8]; 4]) -> [[u8; 20]; 4] {
        #[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
        {
            self.mac4_lanes::<Native4>(data)
        }
        #[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
        {
            let len = data[0].len();
            assert!(data.iter().all(|d| d.len() == len), "the four messages must have one length");
            data.map(|d| self.mac(d))
        }
    }
}
