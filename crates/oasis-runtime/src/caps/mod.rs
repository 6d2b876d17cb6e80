//! Capabilities: what a tenant was granted and what it has open.
//!
//! Each kind an operator grants is one module here, holding everything about
//! that kind: its name, the arguments `cap_open` accepts for it, what its
//! imports do (on the tenant's [`TenantCtx`], after `abi` has read their
//! arguments from guest memory), its policy and how its handles are released:
//!
//! * [`console`]: named log streams, and the standard streams every tenant has;
//! * [`clock`]: the monotonic and wall clocks;
//! * [`entropy`]: secure random bytes;
//! * [`net`]: sockets, within published ports and connect patterns.
//!
//! What all kinds share is here: the handle table ([`CapTable`]), and opening
//! and closing by name.

pub mod clock;
pub mod console;
pub mod entropy;
pub mod net;
mod table;

use oasis_abi::Status;

pub use oasis_format::grants::Grants;
pub use table::CapTable;

use crate::context::TenantCtx;
use crate::io::IoId;

/// An open capability: the state of one handle, by kind.
#[derive(Debug)]
pub enum Capability {
    /// A named log stream.
    Console(console::LogStream),
    /// A clock.
    Clock(clock::ClockKind),
    /// The entropy source.
    Entropy,
    /// A socket.
    Net(net::Socket),
}

impl Capability {
    /// The kind that must be granted to hold this capability.
    pub fn kind(&self) -> &'static str {
        match self {
            Capability::Console(_) => console::KIND,
            Capability::Clock(_) => clock::KIND,
            Capability::Entropy => entropy::KIND,
            Capability::Net(_) => net::KIND,
        }
    }

    /// The I/O object behind this capability, if it is one whose readiness a
    /// driver reports.
    pub fn io(&self) -> Option<IoId> {
        match self {
            Capability::Net(socket) => Some(socket.id()),
            _ => None,
        }
    }
}

/// Parses a capability name (`KIND` or `KIND:ARGUMENT`) into the capability it
/// opens; its [`kind`](Capability::kind) is what must be granted.
///
/// Sockets are not opened by name: `net` handles come from the net imports.
pub fn parse(cap_name: &str) -> Result<Capability, Status> {
    let (kind, arg) = match cap_name.split_once(':') {
        Some((kind, arg)) => (kind, Some(arg)),
        None => (cap_name, None),
    };
    match kind {
        console::KIND => console::parse(arg).map(Capability::Console),
        clock::KIND => clock::parse(arg).map(Capability::Clock),
        entropy::KIND => entropy::parse(arg).map(|()| Capability::Entropy),
        _ => Err(Status::Invalid),
    }
}

/// `cap_open`: the name is checked first and the grant second (ABI.md
/// section 3), so a malformed name is `INVALID` whatever was granted.
pub fn open(ctx: &mut TenantCtx, cap_name: &str) -> Result<u32, Status> {
    let cap = parse(cap_name)?;
    if !ctx.grants.allows(cap.kind()) {
        ctx.counters.refusals += 1;
        return Err(Status::NotGranted);
    }
    ctx.insert(cap)
}

/// `cap_close`: closes `handle` and releases what it held.
pub fn close(ctx: &mut TenantCtx, handle: u32) -> Result<(), Status> {
    let cap = ctx.caps.remove(handle)?;
    release(ctx, cap, Some(handle));
    Ok(())
}

/// Releases what a closed handle held, as its kind says: a log stream's
/// unfinished last line is delivered, a socket is closed. `handle` is the
/// handle it had, if the guest closed it (its pending events are dropped).
pub(crate) fn release(ctx: &mut TenantCtx, cap: Capability, handle: Option<u32>) {
    match cap {
        Capability::Console(stream) => console::release(ctx, stream),
        Capability::Net(socket) => net::release(ctx, socket, handle),
        Capability::Clock(_) | Capability::Entropy => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::ctx_with;

    #[test]
    fn names_are_parsed_by_their_kind() {
        assert!(matches!(parse("console"), Ok(Capability::Console(_))));
        assert!(matches!(parse("console:access"), Ok(c) if c.kind() == "console"));
        assert_eq!(parse("console:bad name").unwrap_err(), Status::Invalid);
        assert!(matches!(parse("clock:wall"), Ok(Capability::Clock(clock::ClockKind::Wall))));
        assert_eq!(parse("clock").unwrap_err(), Status::Invalid);
        assert_eq!(parse("net").unwrap_err(), Status::Invalid, "sockets are not opened by name");
        assert_eq!(parse("entropy:x").unwrap_err(), Status::Invalid);
        assert_eq!(parse("frobnicator").unwrap_err(), Status::Invalid);
    }

    #[test]
    fn opening_checks_the_name_before_the_grant_and_counts_refusals() {
        let (mut ctx, _) = ctx_with(&["console"]);
        assert_eq!(open(&mut ctx, "clock:sundial").unwrap_err(), Status::Invalid);
        assert_eq!(open(&mut ctx, "clock:wall").unwrap_err(), Status::NotGranted);
        assert_eq!(ctx.counters().refusals, 1);
        let h = open(&mut ctx, "console").unwrap();
        assert_eq!((ctx.open_handles(), ctx.counters().handles_opened), (1, 1));
        close(&mut ctx, h).unwrap();
        assert_eq!(close(&mut ctx, h).unwrap_err(), Status::BadHandle, "closed once");
        assert_eq!(ctx.open_handles(), 0);
    }
}
