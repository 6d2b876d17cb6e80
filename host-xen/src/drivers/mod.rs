//! Device drivers: the devices that carry data in and out of the kernel, as
//! opposed to the CPU and the PC platform's fixed plumbing ([`crate::arch`])
//! and the hypervisor's interface ([`crate::xen`]).
//!
//! Today that is the console's two ports: [`uart16550`] (COM1) and
//! [`debugcon`] (port 0xe9). Xen's PV console ring is in
//! [`crate::xen::console`] with the rest of the Xen interface it is made of.
//! This is where network and block drivers go: Xen's netfront and blkfront
//! (built on `crate::xen`'s event channels, plus xenbus and grant tables),
//! virtio-net and virtio-blk under QEMU.
//!
//! The seam with `oasis-runtime`, which has no driver code and must not get any:
//! a network driver implements `oasis_runtime::net::smol::NetDevice` (smoltcp's
//! `phy::Device` plus a wait for the next frame) and is handed to oasis-runtime's
//! smoltcp stack, which owns the sockets; a block driver implements the block
//! trait oasis-runtime defines for storage. Queues, rings, interrupts and device
//! memory stay here; under Xen a driver's event handler goes into the
//! event-channel dispatch table ([`crate::xen::evtchn::set_handler`]) and
//! must not allocate.

pub mod debugcon;
pub mod uart16550;
