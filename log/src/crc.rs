//! CRC32C of concatenations without the bytes: the CRC of `a ‖ b` from
//! the CRCs of `a` and `b` and the length of `b`.
//!
//! Appending `n` bytes to a message multiplies its CRC register by
//! x^(8n) modulo the CRC polynomial (the init and final xor cancel, as
//! for zlib's CRC-32); x^(8n) is a product of the powers x^(2^k) for the
//! bits of 8n, taken from a table built at compile time. About 32 shifts
//! per set bit of the length, where the `crc32c` crate's combine squares
//! 32×32 bit matrices per bit and costs tens of microseconds.

/// The CRC32C (Castagnoli) polynomial, bit-reflected.
const POLYNOMIAL: u32 = 0x82F6_3B78;

/// x^0 in the bit-reflected representation.
const ONE: u32 = 1 << 31;

/// `a * b` modulo the polynomial, both bit-reflected.
const fn multiply(a: u32, mut b: u32) -> u32 {
    let mut product = 0;
    let mut bit = ONE;
    while bit != 0 {
        if a & bit != 0 {
            product ^= b;
        }
        bit >>= 1;
        b = if b & 1 != 0 {
            (b >> 1) ^ POLYNOMIAL
        } else {
            b >> 1
        };
    }
    product
}

/// `POWERS[k]` = x^(2^k) modulo the polynomial.
const POWERS: [u32; 64] = {
    let mut powers = [0u32; 64];
    powers[0] = ONE >> 1; // x^1
    let mut k = 1;
    while k < 64 {
        powers[k] = multiply(powers[k - 1], powers[k - 1]);
        k += 1;
    }
    powers
};

/// x^(8 * bytes) modulo the polynomial.
fn shift_for_bytes(bytes: u64) -> u32 {
    let mut shift = ONE;
    let mut rest = bytes;
    let mut k = 3; // 8 = 2^3
    while rest != 0 {
        if rest & 1 != 0 {
            shift = multiply(POWERS[k % 64], shift);
        }
        rest >>= 1;
        k += 1;
    }
    shift
}

/// The CRC32C of `a ‖ b`, given `crc_a` = crc32c(a), `crc_b` = crc32c(b)
/// and `len_b` = b's length in bytes.
pub fn crc32c_combine(crc_a: u32, crc_b: u32, len_b: u64) -> u32 {
    if len_b == 0 {
        return crc_a;
    }
    multiply(shift_for_bytes(len_b), crc_a) ^ crc_b
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn combining_with_nothing_keeps_the_crc() {
        assert_eq!(crc32c_combine(0x1234_5678, 0, 0), 0x1234_5678);
    }

    #[test]
    fn lengths_around_powers_of_two_combine_like_the_whole() {
        let data: Vec<u8> = (0..70_000u32).map(|i| (i * 31 + 7) as u8).collect();
        for split in [
            0usize, 1, 2, 3, 7, 8, 21, 255, 256, 4095, 4096, 65_535, 65_536,
        ] {
            let (a, b) = data.split_at(split.min(data.len()));
            assert_eq!(
                crc32c_combine(crc32c::crc32c(a), crc32c::crc32c(b), b.len() as u64),
                crc32c::crc32c(&data),
                "split at {split}"
            );
        }
    }

    proptest! {
        #[test]
        fn a_combined_crc_is_the_crc_of_the_concatenation(
            a in proptest::collection::vec(any::<u8>(), 0..300),
            b in proptest::collection::vec(any::<u8>(), 0..3000),
        ) {
            let whole: Vec<u8> = a.iter().chain(&b).copied().collect();
            prop_assert_eq!(
                crc32c_combine(crc32c::crc32c(&a), crc32c::crc32c(&b), b.len() as u64),
                crc32c::crc32c(&whole)
            );
        }
    }
}
