//! The `oasis_v1` imports of section 3 (ABI.md): handles, log streams, clocks
//! and entropy, marshalled to their capability kinds.

use oasis_abi::Status;

use super::memory;
use super::{Definer, with_ctx};
use crate::caps::{self, clock, console, entropy};
use crate::context::TenantView;

pub(crate) fn add_to_linker<T: TenantView>(linker: &mut Definer<'_, T>) -> wasmtime::Result<()> {
    linker.cap_open(|mut c, ptr, len, out| {
        with_ctx(&mut c, |mem, ctx| {
            let name = memory::bytes(mem, ptr, len)?;
            memory::check(mem, out, 4)?;
            let name = core::str::from_utf8(name).map_err(|_| Status::Invalid)?;
            let handle = caps::open(ctx, name)?;
            memory::write_u32(mem, out, handle)?;
            Ok(())
        })
    })?;

    linker.cap_close(|mut c, handle| with_ctx(&mut c, |_, ctx| caps::close(ctx, handle as u32)))?;

    linker.console_write(|mut c, handle, ptr, len| {
        with_ctx(&mut c, |mem, ctx| console::write(ctx, handle as u32, memory::bytes(mem, ptr, len)?))
    })?;

    linker.clock_now(|mut c, handle, out| {
        with_ctx(&mut c, |mem, ctx| {
            memory::check(mem, out, 8)?;
            let now = clock::now(ctx, handle as u32)?;
            memory::write_u64(mem, out, now)?;
            Ok(())
        })
    })?;

    linker.entropy_fill(|mut c, handle, ptr, len| {
        with_ctx(&mut c, |mem, ctx| entropy::fill(ctx, handle as u32, memory::bytes_mut(mem, ptr, len)?))
    })?;
    Ok(())
}
