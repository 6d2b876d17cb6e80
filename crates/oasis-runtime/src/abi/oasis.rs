//! The `oasis_v1` imports (ABI.md section 3).

use alloc::vec::Vec;
use oasis_abi::{ENTROPY_MAX_PER_CALL, Status};
use wasmtime::Caller;

use super::Definer;
use super::memory::{self, Fault};
use crate::caps::{Capability, ClockKind};
use crate::platform::Output;
use crate::tenant::TenantState;

impl From<Fault> for Status {
    fn from(_: Fault) -> Status {
        Status::Fault
    }
}

/// Longest partial line a log stream holds before the host delivers it anyway:
/// a guest must not be able to grow host memory by never writing a newline.
const MAX_PENDING_LINE: usize = 16 << 10;

/// Runs `f` with the guest's memory and the tenant state, mapping the result to
/// a raw status.
pub(crate) fn with_memory(
    caller: &mut Caller<'_, TenantState>,
    f: impl FnOnce(&mut [u8], &mut TenantState) -> Result<(), Status>,
) -> i32 {
    let Some(mem) = caller.data().memory else {
        // No exported memory: the loader refuses such modules, so this is unreachable
        // in practice; answer rather than trap all the same.
        return Status::Fault as i32;
    };
    let (bytes, state) = mem.data_and_store_mut(caller);
    match f(bytes, state) {
        Ok(()) => Status::Ok as i32,
        Err(s) => s as i32,
    }
}

pub(crate) fn add_to_linker(linker: &mut Definer<'_>) -> wasmtime::Result<()> {
    linker.cap_open(|mut c, ptr, len, out| {
        with_memory(&mut c, |mem, st| {
            let name = core::str::from_utf8(memory::bytes(mem, ptr, len)?).map_err(|_| Status::Invalid)?;
            memory::check(mem, out, 4)?;
            let (kind, cap) = Capability::parse(name)?;
            if !st.grants.allows(kind) {
                return Err(Status::NotGranted);
            }
            let handle = st.caps.insert(cap)?;
            memory::write_u32(mem, out, handle)?;
            Ok(())
        })
    })?;

    linker.cap_close(|mut c, handle| {
        with_memory(&mut c, |_, st| {
            let cap = st.caps.remove(handle as u32)?;
            st.release(cap, Some(handle as u32));
            Ok(())
        })
    })?;

    linker.console_write(|mut c, handle, ptr, len| {
        with_memory(&mut c, |mem, st| {
            let data = memory::bytes(mem, ptr, len)?;
            let Capability::Console { stream, pending } = st.caps.get_mut(handle as u32)? else {
                return Err(Status::WrongKind);
            };
            write_lines(&*st.platform, &st.name, stream, pending, data);
            Ok(())
        })
    })?;

    linker.clock_now(|mut c, handle, out| {
        with_memory(&mut c, |mem, st| {
            let Capability::Clock(kind) = st.caps.get_mut(handle as u32)? else {
                return Err(Status::WrongKind);
            };
            let now = match kind {
                ClockKind::Monotonic => st.platform.monotonic_ns(),
                ClockKind::Wall => st.platform.wall_ns(),
            };
            memory::write_u64(mem, out, now)?;
            Ok(())
        })
    })?;

    linker.entropy_fill(|mut c, handle, ptr, len| {
        with_memory(&mut c, |mem, st| {
            if len as u32 as usize > ENTROPY_MAX_PER_CALL {
                return Err(Status::Invalid);
            }
            let Capability::Entropy = st.caps.get_mut(handle as u32)? else {
                return Err(Status::WrongKind);
            };
            let buf = memory::bytes_mut(mem, ptr, len)?;
            st.platform.fill_entropy(buf).map_err(|_| {
                // "Writes nothing when the status is not OK": no half-random bytes.
                buf.fill(0);
                Status::Unsupported
            })
        })
    })?;
    Ok(())
}

/// Appends `data` to a log stream and delivers every completed line.
///
/// The held partial line never exceeds [`MAX_PENDING_LINE`]: a longer run
/// without a newline is delivered in pieces of that size, so the host's memory
/// per handle is bounded whatever the guest writes.
pub(crate) fn write_lines(
    platform: &dyn crate::Platform,
    tenant: &str,
    stream: &str,
    pending: &mut Vec<u8>,
    mut data: &[u8],
) {
    let deliver = |line: &[u8]| {
        let _ = platform.write_output(tenant, Output::Log { stream }, line);
    };
    while !data.is_empty() {
        let room = MAX_PENDING_LINE - pending.len();
        let window = &data[..data.len().min(room)];
        match window.iter().position(|&b| b == b'\n') {
            Some(nl) if pending.is_empty() => {
                // The common case: a whole line straight from guest memory.
                deliver(&window[..nl]);
                data = &data[nl + 1..];
            }
            Some(nl) => {
                pending.extend_from_slice(&window[..nl]);
                deliver(pending);
                pending.clear();
                data = &data[nl + 1..];
            }
            None if window.len() == room => {
                pending.extend_from_slice(window);
                deliver(pending);
                pending.clear();
                data = &data[window.len()..];
            }
            None => {
                pending.extend_from_slice(window);
                data = &[];
            }
        }
    }
}
