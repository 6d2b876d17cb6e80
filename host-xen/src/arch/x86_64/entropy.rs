//! Entropy from the CPU: RDSEED (a conditioned hardware source) when present,
//! else RDRAND (a DRBG reseeded from it). Both are in `-cpu max` and every
//! x86_64 server of the last decade.
//!
//! CPU instructions, not a device, hence here rather than in `drivers/`.

use core::arch::asm;

use oasis_runtime::platform::DriverError;

/// The instruction used, chosen once at boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// RDSEED.
    RdSeed,
    /// RDRAND.
    RdRand,
    /// Neither: entropy requests fail.
    None,
}

impl Source {
    /// Picks the best instruction the CPU has.
    pub fn detect() -> Source {
        if super::cpu::has_rdseed() {
            Source::RdSeed
        } else if super::cpu::has_rdrand() {
            Source::RdRand
        } else {
            Source::None
        }
    }

    fn next(self) -> Option<u64> {
        // Both may transiently fail (CF = 0) when the hardware is drained: retry.
        for _ in 0..128 {
            let value: u64;
            let ok: u8;
            // SAFETY: the instruction was checked present with CPUID; it writes
            // only the named registers.
            unsafe {
                match self {
                    Source::RdSeed => {
                        asm!("rdseed {v}", "setc {ok}", v = out(reg) value, ok = out(reg_byte) ok, options(nomem, nostack))
                    }
                    Source::RdRand => {
                        asm!("rdrand {v}", "setc {ok}", v = out(reg) value, ok = out(reg_byte) ok, options(nomem, nostack))
                    }
                    Source::None => return None,
                }
            }
            if ok != 0 {
                return Some(value);
            }
            core::hint::spin_loop();
        }
        None
    }

    /// Fills `buf` with random bytes.
    pub fn fill(self, buf: &mut [u8]) -> Result<(), DriverError> {
        for chunk in buf.chunks_mut(8) {
            let v = self
                .next()
                .ok_or_else(|| DriverError(alloc::string::String::from("the CPU has no working RDSEED/RDRAND")))?;
            chunk.copy_from_slice(&v.to_le_bytes()[..chunk.len()]);
        }
        Ok(())
    }
}
