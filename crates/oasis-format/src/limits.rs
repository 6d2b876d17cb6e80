//! Per-tenant limits: linear memory and the CPU budget of each call into the guest.

use alloc::string::String;
use core::fmt;

/// Default memory limit: generous for a service, small enough that many tenants fit.
pub const DEFAULT_MEMORY: u64 = 256 << 20;
/// Default CPU budget of one call into the guest, in milliseconds.
pub const DEFAULT_CPU_MS_PER_CALL: u64 = 10_000;
/// Largest memory limit: a wasm32 memory cannot exceed 4 GiB.
pub const MAX_MEMORY: u64 = 4 << 30;
/// Smallest memory limit: one WebAssembly page.
pub const MIN_MEMORY: u64 = 64 << 10;
/// Largest CPU budget per call (one hour); `0` means no budget at all.
pub const MAX_CPU_MS_PER_CALL: u64 = 3_600_000;

/// The limits a tenant runs under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes of linear memory the module may have.
    pub memory_bytes: u64,
    /// CPU budget of each call into the guest in milliseconds; `0` = unlimited.
    pub cpu_ms_per_call: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { memory_bytes: DEFAULT_MEMORY, cpu_ms_per_call: DEFAULT_CPU_MS_PER_CALL }
    }
}

/// A limit value that is out of range or unparsable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// `SIZE` did not parse.
    #[error("`{0}` is not a size: use bytes or a number with KiB, MiB or GiB, e.g. 64MiB")]
    BadSize(String),
    /// The memory limit is out of range.
    #[error("memory limit {0} is out of range: it must be between 64KiB and 4GiB")]
    MemoryRange(String),
    /// The CPU budget is out of range.
    #[error(
        "cpu-ms-per-call {0} is out of range: a manifest may ask for 1 to 3600000; only the operator can turn the budget off (--cpu-ms-per-call 0)"
    )]
    CpuRange(u64),
}

/// Parses `64MiB`, `1GiB`, `512KiB`, `65536` (bytes); also accepts `K/M/G`,
/// `KB/MB/GB` as binary units since nobody means 10^6 when sizing memory.
pub fn parse_size(text: &str) -> Result<u64, LimitError> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let bad = || LimitError::BadSize(String::from(text));
    if digits.is_empty() {
        return Err(bad());
    }
    let n: u64 = digits.parse().map_err(|_| bad())?;
    let shift = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 0,
        "k" | "kb" | "kib" => 10,
        "m" | "mb" | "mib" => 20,
        "g" | "gb" | "gib" => 30,
        _ => return Err(bad()),
    };
    n.checked_mul(1 << shift).ok_or_else(bad)
}

impl Limits {
    /// Checks both limits are in range.
    pub fn validate(&self) -> Result<(), LimitError> {
        if !(MIN_MEMORY..=MAX_MEMORY).contains(&self.memory_bytes) {
            return Err(LimitError::MemoryRange(display_size(self.memory_bytes)));
        }
        if self.cpu_ms_per_call > MAX_CPU_MS_PER_CALL {
            return Err(LimitError::CpuRange(self.cpu_ms_per_call));
        }
        Ok(())
    }
}

/// Formats a byte count the way users write it (`256MiB`).
pub fn display_size(bytes: u64) -> String {
    struct Size(u64);
    impl fmt::Display for Size {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            for (shift, unit) in [(30, "GiB"), (20, "MiB"), (10, "KiB")] {
                if self.0 >= 1 << shift {
                    return if self.0.is_multiple_of(1 << shift) {
                        write!(f, "{}{unit}", self.0 >> shift)
                    } else {
                        // Not a whole number of units: one decimal says enough.
                        let tenths = (self.0 * 10 + (1 << shift) / 2) >> shift;
                        write!(f, "{}.{}{unit}", tenths / 10, tenths % 10)
                    };
                }
            }
            write!(f, "{}B", self.0)
        }
    }
    alloc::format!("{}", Size(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("64MiB"), Ok(64 << 20));
        assert_eq!(parse_size("1g"), Ok(1 << 30));
        assert_eq!(parse_size("65536"), Ok(65536));
        assert_eq!(parse_size(" 512 KiB "), Ok(512 << 10));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("12XB").is_err());
        assert!(parse_size("99999999999999999999").is_err());
        assert!(parse_size("18446744073709551615G").is_err());
    }

    #[test]
    fn ranges() {
        assert!(Limits { memory_bytes: 1, cpu_ms_per_call: 0 }.validate().is_err());
        assert!(Limits { memory_bytes: 8 << 30, cpu_ms_per_call: 0 }.validate().is_err());
        assert!(Limits { memory_bytes: 1 << 20, cpu_ms_per_call: 4_000_000 }.validate().is_err());
        assert!(Limits::default().validate().is_ok());
        assert_eq!(display_size(256 << 20), "256MiB");
        assert_eq!(display_size(1000), "1000B");
        assert_eq!(display_size(32832 << 10), "32.1MiB");
        assert_eq!(display_size(287456), "280.7KiB");
    }
}
