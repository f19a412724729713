//! The engine's one pseudo-random generator: xorshift64*, seeded, so that sampling and
//! eviction repeat exactly for a given seed.

#[derive(Debug, Clone)]
pub(crate) struct XorShift64Star(u64);

impl XorShift64Star {
    /// A generator starting from `seed`; 0 (a fixed point of xorshift) is replaced by a
    /// fixed non-zero seed.
    pub(crate) fn new(seed: u64) -> XorShift64Star {
        XorShift64Star(if seed == 0 {
            0x2545_F491_4F6C_DD1D
        } else {
            seed
        })
    }

    pub(crate) fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}
