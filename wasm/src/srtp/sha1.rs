//! SHA-1 (FIPS 180-4) and HMAC-SHA1 (RFC 2104) with the keyed inner and outer states computed
//! once per key. Data-independent timing: 32-bit additions, rotations and Boolean functions only.

/// SHA-1 initial state.
const IV: [u32; 5] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476, 0xc3d2_e1f0];

macro_rules! round {
    ($a:ident, $b:ident, $c:ident, $d:ident, $e:ident, $w:ident, $i:expr, $f:expr, $k:expr) => {
        if $i >= 16 {
            $w[$i & 15] = ($w[($i + 13) & 15] ^ $w[($i + 8) & 15] ^ $w[($i + 2) & 15] ^ $w[$i & 15]).rotate_left(1);
        }
        $e = $e.wrapping_add($a.rotate_left(5)).wrapping_add($f).wrapping_add($k).wrapping_add($w[$i & 15]);
        $b = $b.rotate_left(30);
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
fn ch(b: u32, c: u32, d: u32) -> u32 {
    d ^ (b & (c ^ d))
}
#[inline(always)]
fn parity(b: u32, c: u32, d: u32) -> u32 {
    b ^ c ^ d
}
#[inline(always)]
fn maj(b: u32, c: u32, d: u32) -> u32 {
    (b & c) | (d & (b | c))
}

/// The SHA-1 compression function: absorb one 64-byte block into `state`.
pub fn compress(state: &mut [u32; 5], block: &[u8; 64]) {
    let mut w = [0u32; 16];
    for i in 0..16 {
        w[i] = u32::from_be_bytes([block[4 * i], block[4 * i + 1], block[4 * i + 2], block[4 * i + 3]]);
    }
    let [mut a, mut b, mut c, mut d, mut e] = *state;
    five!(a, b, c, d, e, w, 0, ch, 0x5a82_7999);
    five!(a, b, c, d, e, w, 5, ch, 0x5a82_7999);
    five!(a, b, c, d, e, w, 10, ch, 0x5a82_7999);
    five!(a, b, c, d, e, w, 15, ch, 0x5a82_7999);
    five!(a, b, c, d, e, w, 20, parity, 0x6ed9_eba1);
    five!(a, b, c, d, e, w, 25, parity, 0x6ed9_eba1);
    five!(a, b, c, d, e, w, 30, parity, 0x6ed9_eba1);
    five!(a, b, c, d, e, w, 35, parity, 0x6ed9_eba1);
    five!(a, b, c, d, e, w, 40, maj, 0x8f1b_bcdc);
    five!(a, b, c, d, e, w, 45, maj, 0x8f1b_bcdc);
    five!(a, b, c, d, e, w, 50, maj, 0x8f1b_bcdc);
    five!(a, b, c, d, e, w, 55, maj, 0x8f1b_bcdc);
    five!(a, b, c, d, e, w, 60, parity, 0xca62_c1d6);
    five!(a, b, c, d, e, w, 65, parity, 0xca62_c1d6);
    five!(a, b, c, d, e, w, 70, parity, 0xca62_c1d6);
    five!(a, b, c, d, e, w, 75, parity, 0xca62_c1d6);
    state[0] = state[0].wrapping_add(a);
    state[1] = state[1].wrapping_add(b);
    state[2] = state[2].wrapping_add(c);
    state[3] = state[3].wrapping_add(d);
    state[4] = state[4].wrapping_add(e);
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
