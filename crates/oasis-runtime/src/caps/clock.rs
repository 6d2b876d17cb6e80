//! The `clock` kind: the monotonic and the wall clock (ABI.md section 3), and
//! which clocks WASI's `clock_time_get` may read (section 4).

use oasis_abi::{Status, kind};

use super::Capability;
use crate::context::TenantCtx;
use crate::platform::Platform;

/// The kind's name, as granted and as `cap_open` spells it.
pub const KIND: &str = kind::CLOCK;

/// Which clock a clock handle reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockKind {
    /// `clock:monotonic`.
    Monotonic,
    /// `clock:wall`.
    Wall,
}

/// The clock `clock:monotonic` or `clock:wall` opens; a clock must be named.
pub fn parse(arg: Option<&str>) -> Result<ClockKind, Status> {
    match arg {
        Some("monotonic") => Ok(ClockKind::Monotonic),
        Some("wall") => Ok(ClockKind::Wall),
        _ => Err(Status::Invalid),
    }
}

/// Reads `clock` from the platform, in nanoseconds.
pub fn read(platform: &dyn Platform, clock: ClockKind) -> u64 {
    match clock {
        ClockKind::Monotonic => platform.monotonic_ns(),
        ClockKind::Wall => platform.wall_ns(),
    }
}

/// `clock_now`: the time on the clock `handle` names.
pub fn now(ctx: &mut TenantCtx, handle: u32) -> Result<u64, Status> {
    let Capability::Clock(clock) = ctx.caps.get_mut(handle)? else {
        return Err(Status::WrongKind);
    };
    let clock = *clock;
    Ok(read(&*ctx.platform, clock))
}

/// The clock a WASI clock id names. WASI's clocks need no grant: Rust's std
/// reads them for `Instant` and `SystemTime`.
///
/// The CPU-time clocks (ids 2 and 3) are `Unsupported`: they would leak
/// scheduling information across tenants and mean little in a reactor; std
/// never needs them. Other ids are `Invalid`.
pub fn wasi_clock(id: i32) -> Result<ClockKind, Status> {
    match id {
        0 => Ok(ClockKind::Wall),
        1 => Ok(ClockKind::Monotonic),
        2 | 3 => Err(Status::Unsupported),
        _ => Err(Status::Invalid),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ctx_with;

    #[test]
    fn clocks_are_named_and_read_through_their_handle() {
        assert_eq!(parse(Some("wall")), Ok(ClockKind::Wall));
        assert_eq!(parse(None), Err(Status::Invalid), "`clock` alone names no clock");
        assert_eq!(parse(Some("cpu")), Err(Status::Invalid));
        let (mut ctx, rec) = ctx_with(&["clock", "entropy"]);
        rec.set_now(1234);
        let mono = super::super::open(&mut ctx, "clock:monotonic").unwrap();
        let wall = super::super::open(&mut ctx, "clock:wall").unwrap();
        assert_eq!(now(&mut ctx, mono), Ok(1234));
        assert_eq!(now(&mut ctx, wall), Ok(crate::testing::WALL_NS));
        let entropy = super::super::open(&mut ctx, "entropy").unwrap();
        assert_eq!(now(&mut ctx, entropy), Err(Status::WrongKind));
    }

    #[test]
    fn wasi_cpu_clocks_are_not_offered() {
        assert_eq!(wasi_clock(0), Ok(ClockKind::Wall));
        assert_eq!(wasi_clock(1), Ok(ClockKind::Monotonic));
        assert_eq!(wasi_clock(2), Err(Status::Unsupported));
        assert_eq!(wasi_clock(3), Err(Status::Unsupported));
        assert_eq!(wasi_clock(4), Err(Status::Invalid));
    }
}
