//! 128-bit registers for the bitsliced AES: WebAssembly SIMD128 when the target has it, and a
//! portable `u128` version with the same semantics everywhere else.
//!
//! A register holds 16 bytes; byte `j` is an AES state byte (column-major, as in FIPS-197, up
//! to the byte order the rounds keep) and its 8 bits belong to 8 different blocks. Every byte
//! permutation below uses constant indices only, so no operation depends on secret data for its
//! timing.

use core::ops::{BitAnd, BitXor};

/// Operations the bitsliced AES needs from a 128-bit register.
pub trait Lane: Copy + BitXor<Output = Self> + BitAnd<Output = Self> {
    /// A register from 16 bytes.
    fn load(bytes: &[u8; 16]) -> Self;
    /// The register's 16 bytes.
    fn store(self, out: &mut [u8; 16]);
    /// Logical right shift by `n` bits; bits may cross byte boundaries (callers mask them).
    fn shr(self, n: u32) -> Self;
    /// Logical left shift by `n` bits; bits may cross byte boundaries (callers mask them).
    fn shl(self, n: u32) -> Self;
    /// Every byte set to `b`.
    fn splat(b: u8) -> Self;
    /// The MixColumns row rotation `R1` seen through ShiftRows applied `-M` times
    /// (`SR^-M ∘ R1 ∘ SR^M`; `R1` rotates each 4-byte column up by one row). Byte indices in
    /// [`ROT1`].
    fn rot1<const M: usize>(self) -> Self;
    /// The same for the rotation by two rows, `R2 = R1 ∘ R1`. Byte indices in [`ROT2`].
    fn rot2<const M: usize>(self) -> Self;
    /// ShiftRows applied twice: output byte `4c + r` is input byte `4((c + 2r) mod 4) + r`.
    fn shift_rows2(self) -> Self;
}

/// Byte indices of [`Lane::rot1`] for `M = 0..4`: output byte `i` is input byte `ROT1[M][i]`.
pub const ROT1: [[usize; 16]; 4] = [
    [1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12],
    [5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12, 1, 2, 3, 0],
    [9, 10, 11, 8, 13, 14, 15, 12, 1, 2, 3, 0, 5, 6, 7, 4],
    [13, 14, 15, 12, 1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8],
];
/// Byte indices of [`Lane::rot2`] for `M = 0..4`.
pub const ROT2: [[usize; 16]; 4] = [[2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13], [10, 11, 8, 9, 14, 15, 12, 13, 2, 3, 0, 1, 6, 7, 4, 5], [2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13], [10, 11, 8, 9, 14, 15, 12, 13, 2, 3, 0, 1, 6, 7, 4, 5]];
/// Byte indices of [`Lane::shift_rows2`].
pub const SHIFT_ROWS2: [usize; 16] = [0, 9, 2, 11, 4, 13, 6, 15, 8, 1, 10, 3, 12, 5, 14, 7];

/// The portable register: a little-endian `u128` (byte `j` is bits `8j..8j+8`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Portable(pub u128);

impl BitXor for Portable {
    type Output = Self;
    #[inline(always)]
    fn bitxor(self, o: Self) -> Self {
        Portable(self.0 ^ o.0)
    }
}

impl BitAnd for Portable {
    type Output = Self;
    #[inline(always)]
    fn bitand(self, o: Self) -> Self {
        Portable(self.0 & o.0)
    }
}

impl Portable {
    #[inline(always)]
    fn permute(self, idx: [usize; 16]) -> Self {
        let b = self.0.to_le_bytes();
        let mut o = [0u8; 16];
        for i in 0..16 {
            o[i] = b[idx[i]];
        }
        Portable(u128::from_le_bytes(o))
    }
}

impl Lane for Portable {
    #[inline(always)]
    fn load(bytes: &[u8; 16]) -> Self {
        Portable(u128::from_le_bytes(*bytes))
    }
    #[inline(always)]
    fn store(self, out: &mut [u8; 16]) {
        *out = self.0.to_le_bytes();
    }
    #[inline(always)]
    fn shr(self, n: u32) -> Self {
        Portable(self.0 >> n)
    }
    #[inline(always)]
    fn shl(self, n: u32) -> Self {
        Portable(self.0 << n)
    }
    #[inline(always)]
    fn splat(b: u8) -> Self {
        Portable(u128::from_le_bytes([b; 16]))
    }
    #[inline(always)]
    fn rot1<const M: usize>(self) -> Self {
        self.permute(ROT1[M])
    }
    #[inline(always)]
    fn rot2<const M: usize>(self) -> Self {
        self.permute(ROT2[M])
    }
    #[inline(always)]
    fn shift_rows2(self) -> Self {
        self.permute(SHIFT_ROWS2)
    }
}

/// The WebAssembly SIMD128 register.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub use simd::Simd;

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
mod simd {
    use super::Lane;
    use core::arch::wasm32::*;
    use core::ops::{BitAnd, BitXor};

    /// A `v128` register.
    #[derive(Clone, Copy, Debug)]
    pub struct Simd(pub v128);

    impl BitXor for Simd {
        type Output = Self;
        #[inline(always)]
        fn bitxor(self, o: Self) -> Self {
            Simd(v128_xor(self.0, o.0))
        }
    }

    impl BitAnd for Simd {
        type Output = Self;
        #[inline(always)]
        fn bitand(self, o: Self) -> Self {
            Simd(v128_and(self.0, o.0))
        }
    }

    impl Lane for Simd {
        #[inline(always)]
        fn load(bytes: &[u8; 16]) -> Self {
            // SAFETY: 16 readable bytes; v128_load has no alignment requirement.
            Simd(unsafe { v128_load(bytes.as_ptr() as *const v128) })
        }
        #[inline(always)]
        fn store(self, out: &mut [u8; 16]) {
            // SAFETY: 16 writable bytes; v128_store has no alignment requirement.
            unsafe { v128_store(out.as_mut_ptr() as *mut v128, self.0) }
        }
        #[inline(always)]
        fn shr(self, n: u32) -> Self {
            Simd(u64x2_shr(self.0, n))
        }
        #[inline(always)]
        fn shl(self, n: u32) -> Self {
            Simd(i64x2_shl(self.0, n))
        }
        #[inline(always)]
        fn splat(b: u8) -> Self {
            Simd(u8x16_splat(b))
        }
        #[inline(always)]
        fn rot1<const M: usize>(self) -> Self {
            Simd(match M {
                0 => i8x16_shuffle::<1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12>(self.0, self.0),
                1 => i8x16_shuffle::<5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12, 1, 2, 3, 0>(self.0, self.0),
                2 => i8x16_shuffle::<9, 10, 11, 8, 13, 14, 15, 12, 1, 2, 3, 0, 5, 6, 7, 4>(self.0, self.0),
                _ => i8x16_shuffle::<13, 14, 15, 12, 1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8>(self.0, self.0),
            })
        }
        #[inline(always)]
        fn rot2<const M: usize>(self) -> Self {
            Simd(if M & 1 == 0 {
                i8x16_shuffle::<2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13>(self.0, self.0)
            } else {
                i8x16_shuffle::<10, 11, 8, 9, 14, 15, 12, 13, 2, 3, 0, 1, 6, 7, 4, 5>(self.0, self.0)
            })
        }
        #[inline(always)]
        fn shift_rows2(self) -> Self {
            Simd(i8x16_shuffle::<0, 9, 2, 11, 4, 13, 6, 15, 8, 1, 10, 3, 12, 5, 14, 7>(self.0, self.0))
        }
    }
}

/// The register type the fast path uses on this target.
#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub type Native = Simd;
/// The register type the fast path uses on this target.
#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
pub type Native = Portable;
