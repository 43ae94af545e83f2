//! The size classes a drop's plaintext is padded to, so that the hub (and
//! anyone who sees the ciphertext's length) learns only a coarse size.
//!
//! The plaintext of a drop is a tar archive; the sender appends zero bytes
//! after the archive's end-of-archive marker until the whole plaintext is
//! [`padded_len`] of the archive's length. Stock `tar` stops reading at the
//! marker, so `age -d | tar -x` still opens every drop; the recipient's
//! client checks that what follows the marker is only zeros.
//!
//! The rule: at least [`MIN_PADDED`] (32 KiB: 120 rows of up to 250 bytes
//! each, so every pupil list from 1 to 120 rows has the same size; 16 KiB
//! held 120 rows of the sample generator's lists only for boroughs with
//! short names), and above it
//! Padmé (Nikitin et al., "Reducing Metadata Leakage from Encrypted Files
//! and Communication with PURBs", PETS 2019): a length whose binary form
//! has `E = floor(log2 L)` as top bit position keeps only its top
//! `floor(log2 E) + 1` bits, the rest rounded up. That leaks O(log log L)
//! bits of the length and costs less than 1/2^(floor(log2 E)+1) of it:
//! under 6.25 % above 32 KiB, under 3.2 % from 64 KiB, under 1.6 % from
//! 4 GiB. Every class above the floor is a multiple of 2 KiB, so a tar
//! archive (a whole number of 512-byte blocks) is padded with whole blocks.

/// The smallest padded plaintext: every drop is at least this long.
pub const MIN_PADDED: u64 = 32 * 1024;

/// The size class of a plaintext of `len` bytes: the length it is padded
/// to. Never less than `len`; [`MIN_PADDED`] for anything up to it; Padmé
/// above it. A length whose class would not fit in a `u64` (within 1/64 of
/// 16 EiB) is its own class.
pub fn padded_len(len: u64) -> u64 {
    if len <= MIN_PADDED {
        return MIN_PADDED;
    }
    // len > 2^15, so e >= 15 and the mask below clears at least 11 bits.
    let e = u64::from(63 - len.leading_zeros());
    let s = u64::from(64 - e.leading_zeros());
    let mask = (1u64 << (e - s)) - 1;
    len.checked_add(mask).map_or(len, |l| l & !mask)
}

/// Zero bytes to append to a plaintext of `len` bytes to reach its class.
pub fn padding_for(len: u64) -> u64 {
    padded_len(len) - len
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        for (len, class) in [
            (0, 32_768),
            (1, 32_768),
            (16_385, 32_768),
            (31_232, 32_768),
            (32_768, 32_768),
            // E = 15, S = 4: multiples of 2^11.
            (32_769, 34_816),
            (34_816, 34_816),
            (34_817, 36_864),
            // E = 16, S = 5: multiples of 2^11.
            (65_536, 65_536),
            (65_537, 67_584),
            (100_000, 100_352),
            // E = 20, S = 5: multiples of 2^15.
            (1_048_577, 1_081_344),
            // E = 29, S = 5: multiples of 2^24.
            (1_000_000_000, 1_006_632_960),
            // E = 30, S = 5: multiples of 2^25.
            (1_073_741_825, 1_107_296_256),
            // 1 GiB of file in a tar archive (header and end marker).
            (1_073_743_360, 1_107_296_256),
            // E = 32, S = 6: multiples of 2^26.
            (4_294_967_297, 4_362_076_160),
        ] {
            assert_eq!(padded_len(len), class, "padded_len({len})");
            assert_eq!(padding_for(len), class - len);
        }
        assert_eq!(padded_len(u64::MAX), u64::MAX, "no overflow at the top");
    }

    /// Every class is at least the length, within the stated overhead,
    /// monotonic, a whole number of tar blocks, and a fixed point.
    #[test]
    fn the_overhead_stays_within_its_bound_up_to_terabytes() {
        let mut lengths: Vec<u64> = Vec::new();
        for bit in 10..44 {
            let p = 1u64 << bit;
            for d in [0, 1, 511, 512, 513, 1000, p / 3, p / 2 + 7] {
                lengths.extend([p.saturating_sub(d), p + d]);
            }
        }
        // Every tar-sized length from the floor to 1 MiB.
        lengths.extend((MIN_PADDED / 512..2048).map(|b| b * 512));
        lengths.sort_unstable();
        let mut last = 0;
        for len in lengths {
            let class = padded_len(len);
            assert!(class >= len && class >= MIN_PADDED, "{len} -> {class}");
            assert!(class >= last, "not monotonic at {len}");
            last = class;
            assert_eq!(padded_len(class), class, "a class is its own class ({len})");
            if len % 512 == 0 {
                assert_eq!(class % 512, 0, "{len} -> {class} is not a whole number of tar blocks");
            }
            if len > MIN_PADDED {
                let bound = if len >= 1 << 32 {
                    1.0 / 64.0
                } else if len >= 1 << 16 {
                    1.0 / 32.0
                } else {
                    1.0 / 16.0
                };
                let overhead = (class - len) as f64 / len as f64;
                assert!(overhead < bound, "{len} -> {class}: {overhead:.4} over {bound}");
            }
        }
    }

    #[test]
    fn classes_are_few() {
        // Above 1 MiB, up to 2 MiB, there are 2^S = 32 classes:
        // a file's exact size is hidden within ~32 KiB.
        let classes: std::collections::BTreeSet<u64> =
            ((1u64 << 20) + 512..=(1u64 << 21)).step_by(512).map(padded_len).collect();
        assert_eq!(classes.len(), 32);
    }
}
