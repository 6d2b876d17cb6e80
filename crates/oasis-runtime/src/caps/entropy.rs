//! The `entropy` kind: secure random bytes (ABI.md section 3), and WASI's
//! `random_get` (section 4).

use oasis_abi::{ENTROPY_MAX_PER_CALL, Status, kind};

use super::Capability;
use crate::context::TenantCtx;
use crate::platform::DriverError;

/// The kind's name, as granted and as `cap_open` spells it.
pub const KIND: &str = kind::ENTROPY;

/// `entropy` takes no argument.
pub fn parse(arg: Option<&str>) -> Result<(), Status> {
    match arg {
        None => Ok(()),
        Some(_) => Err(Status::Invalid),
    }
}

/// `entropy_fill`: fills `buf` from the entropy source `handle` names.
///
/// At most [`ENTROPY_MAX_PER_CALL`] bytes a call, so one call cannot hold the
/// host's source for long. Writes nothing when the status is not OK: a
/// failing source leaves zeros, never half-random bytes.
pub fn fill(ctx: &mut TenantCtx, handle: u32, buf: &mut [u8]) -> Result<(), Status> {
    if buf.len() > ENTROPY_MAX_PER_CALL {
        return Err(Status::Invalid);
    }
    let Capability::Entropy = ctx.caps.get_mut(handle)? else {
        return Err(Status::WrongKind);
    };
    ctx.platform.fill_entropy(buf).map_err(|_| {
        buf.fill(0);
        Status::Unsupported
    })
}

/// WASI `random_get`: needs no grant, as Rust's std seeds its hash maps with it.
pub fn random_get(ctx: &mut TenantCtx, buf: &mut [u8]) -> Result<(), DriverError> {
    ctx.platform.fill_entropy(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ctx_with;
    use alloc::vec;

    #[test]
    fn fills_through_its_handle_within_the_per_call_bound() {
        assert_eq!(parse(Some("x")), Err(Status::Invalid));
        let (mut ctx, _) = ctx_with(&["entropy", "clock"]);
        let h = super::super::open(&mut ctx, "entropy").unwrap();
        let mut buf = [0u8; 8];
        fill(&mut ctx, h, &mut buf).unwrap();
        assert_eq!(buf, [4; 8], "the platform's bytes");
        let mut big = vec![0u8; ENTROPY_MAX_PER_CALL + 1];
        assert_eq!(fill(&mut ctx, h, &mut big), Err(Status::Invalid));
        assert!(big.iter().all(|b| *b == 0), "nothing written");
        let clock = super::super::open(&mut ctx, "clock:wall").unwrap();
        assert_eq!(fill(&mut ctx, clock, &mut buf), Err(Status::WrongKind));
    }

    #[test]
    fn a_failing_source_leaves_no_partial_bytes() {
        let (mut ctx, rec) = ctx_with(&["entropy"]);
        let h = super::super::open(&mut ctx, "entropy").unwrap();
        rec.fail_entropy();
        let mut buf = [9u8; 16];
        assert_eq!(fill(&mut ctx, h, &mut buf), Err(Status::Unsupported));
        assert_eq!(buf, [0; 16]);
        assert!(random_get(&mut ctx, &mut buf).is_err());
    }
}
