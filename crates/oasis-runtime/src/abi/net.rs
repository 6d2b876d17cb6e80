//! The `oasis_v1` networking imports (ABI.md section 7), marshalled to the
//! `net` kind ([`crate::caps::net`]), and `poll_events`, which hands out the
//! tenant's readiness events whatever their kind of I/O.

use core::net::SocketAddr;
use oasis_abi::Status;
use oasis_abi::net::{ADDR_LEN, EVENT_LEN};

use super::memory;
use super::{Definer, with_ctx};
use crate::caps::net;
use crate::context::TenantView;
use crate::net::addr;

/// Most addresses one lookup returns.
const MAX_LOOKUP_ADDRS: u32 = 64;

fn read_addr(mem: &[u8], ptr: i32) -> Result<SocketAddr, Status> {
    let bytes: &[u8; ADDR_LEN] = memory::bytes(mem, ptr, ADDR_LEN as i32)?.try_into().map_err(|_| Status::Fault)?;
    addr::decode(bytes).ok_or(Status::Invalid)
}

fn write_addr(mem: &mut [u8], ptr: i32, a: SocketAddr) -> Result<(), Status> {
    memory::write_bytes(mem, ptr, &addr::encode(a)).map_err(Status::from)
}

pub(crate) fn add_to_linker<T: TenantView>(linker: &mut Definer<'_, T>) -> wasmtime::Result<()> {
    linker.tcp_listen(|mut c, port, out| {
        with_ctx(&mut c, |mem, ctx| {
            memory::check(mem, out, 4)?;
            let h = net::tcp_listen(ctx, port)?;
            memory::write_u32(mem, out, h)?;
            Ok(())
        })
    })?;

    linker.tcp_accept(|mut c, listener, out, peer_out| {
        with_ctx(&mut c, |mem, ctx| {
            memory::check(mem, out, 4)?;
            memory::check(mem, peer_out, ADDR_LEN as u32)?;
            let (h, peer) = net::tcp_accept(ctx, listener as u32)?;
            memory::write_u32(mem, out, h)?;
            write_addr(mem, peer_out, peer)
        })
    })?;

    linker.tcp_connect(|mut c, addr_ptr, out| {
        with_ctx(&mut c, |mem, ctx| {
            memory::check(mem, out, 4)?;
            let to = read_addr(mem, addr_ptr)?;
            let h = net::tcp_connect(ctx, to)?;
            memory::write_u32(mem, out, h)?;
            Ok(())
        })
    })?;

    linker.sock_read(|mut c, h, ptr, len, n_out| {
        with_ctx(&mut c, |mem, ctx| {
            memory::check(mem, n_out, 4)?;
            let n = net::read(ctx, h as u32, memory::bytes_mut(mem, ptr, len)?)?;
            memory::write_u32(mem, n_out, n as u32)?;
            Ok(())
        })
    })?;

    linker.sock_write(|mut c, h, ptr, len, n_out| {
        with_ctx(&mut c, |mem, ctx| {
            memory::check(mem, n_out, 4)?;
            let n = net::write(ctx, h as u32, memory::bytes(mem, ptr, len)?)?;
            memory::write_u32(mem, n_out, n as u32)?;
            Ok(())
        })
    })?;

    linker.sock_shutdown(|mut c, h, how| with_ctx(&mut c, |_, ctx| net::shutdown(ctx, h as u32, how)))?;

    linker.sock_addr(|mut c, h, which, out| {
        with_ctx(&mut c, |mem, ctx| {
            memory::check(mem, out, ADDR_LEN as u32)?;
            let a = net::addr(ctx, h as u32, which)?;
            write_addr(mem, out, a)
        })
    })?;

    linker.udp_bind(|mut c, port, out| {
        with_ctx(&mut c, |mem, ctx| {
            memory::check(mem, out, 4)?;
            let h = net::udp_bind(ctx, port)?;
            memory::write_u32(mem, out, h)?;
            Ok(())
        })
    })?;

    linker.udp_send_to(|mut c, h, ptr, len, addr_ptr, n_out| {
        with_ctx(&mut c, |mem, ctx| {
            memory::check(mem, n_out, 4)?;
            let to = read_addr(mem, addr_ptr)?;
            let sent = net::send_to(ctx, h as u32, memory::bytes(mem, ptr, len)?, to)?;
            memory::write_u32(mem, n_out, sent as u32)?;
            Ok(())
        })
    })?;

    linker.udp_recv_from(|mut c, h, ptr, len, n_out, addr_out| {
        with_ctx(&mut c, |mem, ctx| {
            memory::check(mem, n_out, 4)?;
            memory::check(mem, addr_out, ADDR_LEN as u32)?;
            let (got, from) = net::recv_from(ctx, h as u32, memory::bytes_mut(mem, ptr, len)?)?;
            memory::write_u32(mem, n_out, got as u32)?;
            write_addr(mem, addr_out, from)
        })
    })?;

    linker.net_lookup(|mut c, name_ptr, name_len, out, cap, count_out| {
        with_ctx(&mut c, |mem, ctx| {
            memory::check(mem, count_out, 4)?;
            let cap = (cap as u32).min(MAX_LOOKUP_ADDRS);
            memory::check(mem, out, cap * ADDR_LEN as u32)?;
            let name = core::str::from_utf8(memory::bytes(mem, name_ptr, name_len)?).map_err(|_| Status::Invalid)?;
            let ips = net::lookup(ctx, name)?;
            let count = ips.len().min(cap as usize);
            for (i, ip) in ips.iter().take(count).enumerate() {
                write_addr(mem, out + (i * ADDR_LEN) as i32, SocketAddr::new(*ip, 0))?;
            }
            memory::write_u32(mem, count_out, count as u32)?;
            Ok(())
        })
    })?;

    linker.poll_events(|mut c, buf, cap, count_out| {
        with_ctx(&mut c, |mem, ctx| {
            memory::check(mem, count_out, 4)?;
            let cap = cap as u32;
            memory::check(mem, buf, cap.saturating_mul(EVENT_LEN as u32))?;
            let mut count = 0u32;
            while count < cap {
                let Some((handle, flags)) = ctx.readiness.take() else { break };
                let at = buf + (count as usize * EVENT_LEN) as i32;
                memory::write_u32(mem, at, handle)?;
                memory::write_u32(mem, at + 4, flags)?;
                count += 1;
            }
            memory::write_u32(mem, count_out, count)?;
            Ok(())
        })
    })?;
    Ok(())
}
