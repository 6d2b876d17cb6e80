//! The WASI preview-1 subset Rust's std needs (ABI.md section 4), written once
//! for every host.
//!
//! Why not `wasmtime-wasi`: it is std-only (tokio, cap-std), so the Xen kernel
//! could not use it, and two implementations would drift. The subset std needs
//! is small: arguments, environment, clocks, randomness, stdio, exit and sleep.
//! Everything else (files, sockets) answers `ENOTCAPABLE`: an Oasis app reaches
//! the outside world only through capabilities it was granted.
//!
//! As for the `oasis_v1` imports, this is marshalling: what the clocks,
//! randomness and the standard streams do is their capability kinds' (see
//! [`crate::caps`]); WASI's only need no grant.

use alloc::vec::Vec;
use wasmtime::{Caller, FuncType, Val, ValType};

use oasis_abi::Status;

use super::memory::{self, Fault};
use super::{Definer, ExitRequest};
use crate::caps::{clock, console, entropy};
use crate::context::{TenantCtx, TenantView};
use crate::output::StdStream;

const MODULE: &str = oasis_abi::WASI_MODULE;

/// WASI errno values used here.
pub mod errno {
    /// Success.
    pub const SUCCESS: i32 = 0;
    /// Bad file descriptor.
    pub const BADF: i32 = 8;
    /// Bad address.
    pub const FAULT: i32 = 21;
    /// Invalid argument.
    pub const INVAL: i32 = 28;
    /// I/O error.
    pub const IO: i32 = 29;
    /// Not supported.
    pub const NOTSUP: i32 = 58;
    /// Invalid seek.
    pub const SPIPE: i32 = 70;
    /// Capabilities insufficient.
    pub const NOTCAPABLE: i32 = 76;
}

const FILETYPE_CHARACTER_DEVICE: u8 = 2;
const EVENTTYPE_CLOCK: u8 = 0;
const SUBCLOCKFLAG_ABSTIME: u16 = 1;
const RIGHT_FD_READ: u64 = 1 << 1;
const RIGHT_FD_WRITE: u64 = 1 << 6;

/// Every function of WASI preview 1 that this host implements for real.
pub const IMPLEMENTED: &[&str] = &[
    "args_get",
    "args_sizes_get",
    "environ_get",
    "environ_sizes_get",
    "clock_res_get",
    "clock_time_get",
    "random_get",
    "fd_write",
    "fd_read",
    "fd_fdstat_get",
    "fd_filestat_get",
    "fd_prestat_get",
    "fd_prestat_dir_name",
    "fd_close",
    "fd_seek",
    "fd_tell",
    "fd_sync",
    "fd_datasync",
    "proc_exit",
    "sched_yield",
    "poll_oneoff",
];

/// The rest of WASI preview 1 with their signatures (`i` = i32, `I` = i64, last
/// letter the result): all answer `ENOTCAPABLE`.
pub const DENIED: &[(&str, &str)] = &[
    ("fd_advise", "iIIi>i"),
    ("fd_allocate", "iII>i"),
    ("fd_fdstat_set_flags", "ii>i"),
    ("fd_fdstat_set_rights", "iII>i"),
    ("fd_filestat_set_size", "iI>i"),
    ("fd_filestat_set_times", "iIIi>i"),
    ("fd_pread", "iiiIi>i"),
    ("fd_pwrite", "iiiIi>i"),
    ("fd_readdir", "iiiIi>i"),
    ("fd_renumber", "ii>i"),
    ("path_create_directory", "iii>i"),
    ("path_filestat_get", "iiiii>i"),
    ("path_filestat_set_times", "iiiiIIi>i"),
    ("path_link", "iiiiiii>i"),
    ("path_open", "iiiiiIIii>i"),
    ("path_readlink", "iiiiii>i"),
    ("path_remove_directory", "iii>i"),
    ("path_rename", "iiiiii>i"),
    ("path_symlink", "iiiii>i"),
    ("path_unlink_file", "iii>i"),
    ("proc_raise", "i>i"),
    ("sock_accept", "iii>i"),
    ("sock_recv", "iiiiii>i"),
    ("sock_send", "iiiii>i"),
    ("sock_shutdown", "ii>i"),
];

/// Whether `name` is a WASI preview-1 function.
pub fn is_wasi_p1(name: &str) -> bool {
    IMPLEMENTED.contains(&name) || DENIED.iter().any(|(n, _)| *n == name)
}

fn errno_of(r: Result<(), i32>) -> i32 {
    match r {
        Ok(()) => errno::SUCCESS,
        Err(e) => e,
    }
}

impl From<Fault> for Errno {
    fn from(_: Fault) -> Errno {
        Errno(errno::FAULT)
    }
}

/// An errno as an error type, so `?` works on memory faults.
struct Errno(i32);

impl From<Status> for Errno {
    /// The errno for a capability kind's answer.
    fn from(s: Status) -> Errno {
        Errno(match s {
            Status::Ok => errno::SUCCESS,
            Status::Fault => errno::FAULT,
            Status::Invalid => errno::INVAL,
            Status::Unsupported => errno::NOTSUP,
            Status::NotGranted => errno::NOTCAPABLE,
            _ => errno::IO,
        })
    }
}

fn wasi<T: TenantView>(
    caller: &mut Caller<'_, T>,
    f: impl FnOnce(&mut [u8], &mut TenantCtx) -> Result<(), Errno>,
) -> i32 {
    let Some(mem) = caller.data().memory() else {
        return errno::FAULT;
    };
    let (bytes, data) = mem.data_and_store_mut(caller);
    errno_of(f(bytes, data.ctx()).map_err(|e| e.0))
}

/// Writes a list of strings the way `args_get`/`environ_get` do: a table of
/// pointers at `ptrs`, NUL-terminated strings packed at `buf`.
fn write_string_list(mem: &mut [u8], ptrs: i32, buf: i32, items: &[Vec<u8>]) -> Result<(), Errno> {
    let mut at = buf as u32;
    for (i, item) in items.iter().enumerate() {
        memory::write_u32(mem, ptrs.wrapping_add(4 * i as i32), at)?;
        memory::write_bytes(mem, at as i32, item)?;
        memory::write_bytes(mem, at.wrapping_add(item.len() as u32) as i32, &[0])?;
        at = at.wrapping_add(item.len() as u32 + 1);
    }
    Ok(())
}

fn write_sizes(mem: &mut [u8], count_out: i32, size_out: i32, items: &[Vec<u8>]) -> Result<(), Errno> {
    let size: usize = items.iter().map(|i| i.len() + 1).sum();
    memory::write_u32(mem, count_out, items.len() as u32)?;
    memory::write_u32(mem, size_out, size as u32)?;
    Ok(())
}

/// Most iovecs one call may pass (POSIX's usual `IOV_MAX`).
const MAX_IOVECS: u32 = 1024;

/// Decodes and bounds-checks an iovec list: `n` pairs of (`u32` pointer, `u32` length).
fn iovecs(mem: &[u8], iovs: i32, n: i32) -> Result<Vec<core::ops::Range<usize>>, Errno> {
    let n = n as u32;
    if n > MAX_IOVECS {
        return Err(Errno(errno::INVAL));
    }
    let table = memory::bytes(mem, iovs, (n * 8) as i32)?;
    table
        .chunks_exact(8)
        .map(|iov| {
            let ptr = u32::from_le_bytes(iov[0..4].try_into().expect("4 bytes"));
            let len = u32::from_le_bytes(iov[4..8].try_into().expect("4 bytes"));
            memory::range(mem, ptr as i32, len).map_err(Errno::from)
        })
        .collect()
}

fn clock_now(ctx: &TenantCtx, id: i32) -> Result<u64, Errno> {
    Ok(clock::read(&*ctx.platform, clock::wasi_clock(id)?))
}

fn is_stdio(fd: i32) -> bool {
    (0..=2).contains(&fd)
}

pub(crate) fn add_to_linker<T: TenantView>(linker: &mut Definer<'_, T>) -> wasmtime::Result<()> {
    linker.wrap(MODULE, "args_sizes_get", |mut c: Caller<'_, T>, count: i32, size: i32| {
        wasi(&mut c, |mem, ctx| write_sizes(mem, count, size, ctx.argv()))
    })?;
    linker.wrap(MODULE, "args_get", |mut c: Caller<'_, T>, ptrs: i32, buf: i32| {
        wasi(&mut c, |mem, ctx| write_string_list(mem, ptrs, buf, ctx.argv()))
    })?;
    linker.wrap(MODULE, "environ_sizes_get", |mut c: Caller<'_, T>, count: i32, size: i32| {
        wasi(&mut c, |mem, ctx| write_sizes(mem, count, size, ctx.environ()))
    })?;
    linker.wrap(MODULE, "environ_get", |mut c: Caller<'_, T>, ptrs: i32, buf: i32| {
        wasi(&mut c, |mem, ctx| write_string_list(mem, ptrs, buf, ctx.environ()))
    })?;

    linker.wrap(MODULE, "clock_res_get", |mut c: Caller<'_, T>, id: i32, out: i32| {
        wasi(&mut c, |mem, ctx| {
            clock_now(ctx, id)?;
            memory::write_u64(mem, out, 1)?;
            Ok(())
        })
    })?;
    linker.wrap(MODULE, "clock_time_get", |mut c: Caller<'_, T>, id: i32, _precision: i64, out: i32| {
        wasi(&mut c, |mem, ctx| {
            let now = clock_now(ctx, id)?;
            memory::write_u64(mem, out, now)?;
            Ok(())
        })
    })?;
    linker.wrap(MODULE, "random_get", |mut c: Caller<'_, T>, ptr: i32, len: i32| {
        wasi(&mut c, |mem, ctx| {
            let buf = memory::bytes_mut(mem, ptr, len)?;
            entropy::random_get(ctx, buf).map_err(|_| Errno(errno::IO))
        })
    })?;

    linker.wrap(MODULE, "fd_write", |mut c: Caller<'_, T>, fd: i32, iovs: i32, n: i32, out: i32| {
        wasi(&mut c, |mem, ctx| {
            let stream = match fd {
                1 => StdStream::Stdout,
                2 => StdStream::Stderr,
                _ => return Err(Errno(errno::BADF)),
            };
            memory::check(mem, out, 4)?;
            let iovs = iovecs(mem, iovs, n)?;
            // Every iovec was checked before anything is written: a fault must not
            // leave half the output delivered (std would retry and duplicate it).
            let mut written: u32 = 0;
            for range in iovs {
                let data = &mem[range];
                // Stop at 4 GiB - 1 so the count fits; WASI allows a short write.
                let Some(total) = written.checked_add(data.len() as u32).filter(|_| data.len() <= u32::MAX as usize)
                else {
                    break;
                };
                console::write_std(ctx, stream, data).map_err(|_| Errno(errno::IO))?;
                written = total;
            }
            memory::write_u32(mem, out, written)?;
            Ok(())
        })
    })?;
    linker.wrap(MODULE, "fd_read", |mut c: Caller<'_, T>, fd: i32, _iovs: i32, _n: i32, out: i32| {
        wasi(&mut c, |mem, _| {
            if fd != 0 {
                return Err(Errno(errno::BADF));
            }
            // Standard input is always at end-of-file: apps get input through capabilities.
            memory::write_u32(mem, out, 0)?;
            Ok(())
        })
    })?;
    linker.wrap(MODULE, "fd_fdstat_get", |mut c: Caller<'_, T>, fd: i32, out: i32| {
        wasi(&mut c, |mem, _| {
            if !is_stdio(fd) {
                return Err(Errno(errno::BADF));
            }
            let rights = if fd == 0 { RIGHT_FD_READ } else { RIGHT_FD_WRITE };
            let mut stat = [0u8; 24];
            stat[0] = FILETYPE_CHARACTER_DEVICE;
            stat[8..16].copy_from_slice(&rights.to_le_bytes());
            memory::write_bytes(mem, out, &stat)?;
            Ok(())
        })
    })?;
    linker.wrap(MODULE, "fd_filestat_get", |mut c: Caller<'_, T>, fd: i32, out: i32| {
        wasi(&mut c, |mem, _| {
            if !is_stdio(fd) {
                return Err(Errno(errno::BADF));
            }
            let mut stat = [0u8; 64];
            stat[16] = FILETYPE_CHARACTER_DEVICE;
            stat[24..32].copy_from_slice(&1u64.to_le_bytes());
            memory::write_bytes(mem, out, &stat)?;
            Ok(())
        })
    })?;
    // No preopened directories: EBADF ends wasi-libc's scan at fd 3.
    linker.wrap(MODULE, "fd_prestat_get", |_: Caller<'_, T>, _fd: i32, _out: i32| errno::BADF)?;
    linker.wrap(MODULE, "fd_prestat_dir_name", |_: Caller<'_, T>, _fd: i32, _p: i32, _l: i32| errno::BADF)?;
    // Standard streams behave like a terminal's: they cannot seek, and syncing or
    // closing them is harmless.
    linker.wrap(
        MODULE,
        "fd_close",
        |_: Caller<'_, T>, fd: i32| {
            if is_stdio(fd) { errno::SUCCESS } else { errno::BADF }
        },
    )?;
    linker.wrap(
        MODULE,
        "fd_seek",
        |_: Caller<'_, T>, fd: i32, _off: i64, _whence: i32, _out: i32| {
            if is_stdio(fd) { errno::SPIPE } else { errno::BADF }
        },
    )?;
    linker.wrap(
        MODULE,
        "fd_tell",
        |_: Caller<'_, T>, fd: i32, _out: i32| {
            if is_stdio(fd) { errno::SPIPE } else { errno::BADF }
        },
    )?;
    linker.wrap(
        MODULE,
        "fd_sync",
        |_: Caller<'_, T>, fd: i32| {
            if is_stdio(fd) { errno::SUCCESS } else { errno::BADF }
        },
    )?;
    linker.wrap(
        MODULE,
        "fd_datasync",
        |_: Caller<'_, T>, fd: i32| {
            if is_stdio(fd) { errno::SUCCESS } else { errno::BADF }
        },
    )?;

    linker.wrap(MODULE, "proc_exit", |_: Caller<'_, T>, status: i32| -> wasmtime::Result<()> {
        Err(wasmtime::Error::new(ExitRequest(status)))
    })?;
    linker.wrap(MODULE, "sched_yield", |_: Caller<'_, T>| errno::SUCCESS)?;
    linker.wrap(MODULE, "poll_oneoff", |mut c: Caller<'_, T>, sin: i32, sout: i32, n: i32, nout: i32| {
        poll_oneoff(&mut c, sin, sout, n, nout)
    })?;

    for (name, sig) in DENIED {
        linker.func_new(
            MODULE,
            name,
            |engine| signature(engine, sig),
            |_, _, results: &mut [Val]| {
                results[0] = Val::I32(errno::NOTCAPABLE);
                Ok(())
            },
        )?;
    }
    Ok(())
}

fn signature(engine: &wasmtime::Engine, sig: &str) -> FuncType {
    let (params, results) = sig.split_once('>').expect("signatures are written as PARAMS>RESULTS");
    let ty = |c: char| if c == 'I' { ValType::I64 } else { ValType::I32 };
    FuncType::new(engine, params.chars().map(ty), results.chars().map(ty))
}

/// One subscription of `poll_oneoff`, decoded.
struct Subscription {
    userdata: u64,
    /// `Some(deadline)` for a clock, `None` for an fd subscription.
    deadline: Option<u64>,
    tag: u8,
}

const SUBSCRIPTION_LEN: i32 = 48;
const EVENT_LEN: i32 = 32;
const EVENTTYPE_FD_WRITE: u8 = 2;
/// Most subscriptions one `poll_oneoff` may pass: bounds the host's work and
/// memory per call (std passes one).
const MAX_SUBSCRIPTIONS: i32 = 4096;

fn poll_oneoff<T: TenantView>(c: &mut Caller<'_, T>, sin: i32, sout: i32, n: i32, nout: i32) -> i32 {
    // Decode all subscriptions first, with the memory borrowed only briefly: the
    // sleep below must not hold it.
    let mut subs = Vec::new();
    let decoded = wasi(c, |mem, ctx| {
        if n <= 0 || n > MAX_SUBSCRIPTIONS {
            return Err(Errno(errno::INVAL));
        }
        memory::check(mem, sout, n as u32 * EVENT_LEN as u32)?;
        memory::check(mem, nout, 4)?;
        let table = memory::bytes(mem, sin, n * SUBSCRIPTION_LEN)?;
        let now_mono = ctx.platform.monotonic_ns();
        let now_wall = ctx.platform.wall_ns();
        for sub in table.chunks_exact(SUBSCRIPTION_LEN as usize) {
            let userdata = u64::from_le_bytes(sub[0..8].try_into().expect("8 bytes"));
            let tag = sub[8];
            if tag > EVENTTYPE_FD_WRITE {
                return Err(Errno(errno::INVAL));
            }
            let deadline = if tag == EVENTTYPE_CLOCK {
                let id = i32::from_le_bytes(sub[16..20].try_into().expect("4 bytes"));
                let timeout = u64::from_le_bytes(sub[24..32].try_into().expect("8 bytes"));
                let flags = u16::from_le_bytes(sub[40..42].try_into().expect("2 bytes"));
                let now = match clock::wasi_clock(id)? {
                    clock::ClockKind::Monotonic => now_mono,
                    clock::ClockKind::Wall => now_wall,
                };
                let abs = if flags & SUBCLOCKFLAG_ABSTIME != 0 { timeout } else { now.saturating_add(timeout) };
                // Express every deadline on the monotonic clock, which is what we sleep on.
                Some(now_mono.saturating_add(abs.saturating_sub(now)))
            } else {
                None
            };
            subs.push(Subscription { userdata, deadline, tag });
        }
        Ok(())
    });
    if decoded != errno::SUCCESS {
        return decoded;
    }
    let has_fd = subs.iter().any(|s| s.deadline.is_none());
    if !has_fd && let Some(earliest) = subs.iter().filter_map(|s| s.deadline).min() {
        // Asleep, the guest runs no code; the instance gives the time back
        // to the call's CPU budget.
        if let Some(ticks) = c.data_mut().sleep_until(earliest) {
            wasmtime::AsContextMut::as_context_mut(c).set_epoch_deadline(ticks);
        }
    }
    wasi(c, |mem, ctx| {
        let now = ctx.platform.monotonic_ns();
        let mut count = 0u32;
        for s in &subs {
            let error = match s.deadline {
                Some(d) if d <= now => errno::SUCCESS,
                Some(_) => continue,
                // Oasis has no file descriptors to wait on beyond stdio.
                None => errno::NOTSUP,
            };
            let mut event = [0u8; EVENT_LEN as usize];
            event[0..8].copy_from_slice(&s.userdata.to_le_bytes());
            event[8..10].copy_from_slice(&(error as u16).to_le_bytes());
            event[10] = s.tag;
            // count < n <= MAX_SUBSCRIPTIONS, and the whole event array was checked above.
            memory::write_bytes(mem, sout.wrapping_add(count as i32 * EVENT_LEN), &event)?;
            count += 1;
        }
        memory::write_u32(mem, nout, count)?;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preview1_list_is_complete_and_disjoint() {
        assert_eq!(IMPLEMENTED.len() + DENIED.len(), 46, "WASI preview 1 has 46 functions");
        for (name, _) in DENIED {
            assert!(!IMPLEMENTED.contains(name), "{name} is in both lists");
        }
        assert!(is_wasi_p1("path_open") && is_wasi_p1("fd_write") && !is_wasi_p1("fd_frobnicate"));
    }
}
