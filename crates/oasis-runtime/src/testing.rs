//! What the unit tests share: drivers that record what tenants do, with a
//! clock the test moves, and a cable between two smoltcp stacks.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use std::sync::Mutex;

use smoltcp::phy::{self, ChecksumCapabilities, Device, DeviceCapabilities, Medium};

use crate::caps::Grants;
use crate::caps::net::NetState;
use crate::context::{CtxParts, TenantCtx};
use crate::net::smol::{FrameWait, NetDevice};
use crate::net::{NetGrants, Network};
use crate::output::{OutputSink, StdStream};
use crate::platform::{DriverError, Platform};

/// What [`Recorder`]'s wall clock says.
pub const WALL_NS: u64 = 1_700_000_000_000_000_000;

/// Drivers and an output sink that record output and host messages, with a
/// monotonic clock that moves only when someone sleeps (or the test sets it).
#[derive(Default)]
pub struct Recorder {
    lines: Mutex<Vec<String>>,
    logged: Mutex<Vec<String>>,
    now: Mutex<u64>,
    entropy_fails: Mutex<bool>,
}

impl Recorder {
    /// The output so far: `stdout:TEXT`, `stderr:TEXT` and `[stream]LINE`.
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// The host's messages so far.
    pub fn logged(&self) -> Vec<String> {
        self.logged.lock().unwrap().clone()
    }

    /// The monotonic clock.
    pub fn now(&self) -> u64 {
        *self.now.lock().unwrap()
    }

    /// Sets the monotonic clock.
    pub fn set_now(&self, ns: u64) {
        *self.now.lock().unwrap() = ns;
    }

    /// Makes the entropy source fail from now on (after writing some bytes).
    pub fn fail_entropy(&self) {
        *self.entropy_fails.lock().unwrap() = true;
    }
}

impl Platform for Recorder {
    fn monotonic_ns(&self) -> u64 {
        self.now()
    }
    fn wall_ns(&self) -> u64 {
        WALL_NS
    }
    fn fill_entropy(&self, buf: &mut [u8]) -> Result<(), DriverError> {
        if *self.entropy_fails.lock().unwrap() {
            buf.fill(7);
            return Err(DriverError("no entropy".into()));
        }
        buf.fill(4);
        Ok(())
    }
    fn sleep_until(&self, deadline_ns: u64) {
        let mut now = self.now.lock().unwrap();
        *now = (*now).max(deadline_ns);
    }
    fn host_log(&self, tenant: &str, message: &str) {
        self.logged.lock().unwrap().push(alloc::format!("{tenant}: {message}"));
    }
}

impl OutputSink for Recorder {
    fn write(&self, stream: StdStream, bytes: &[u8]) -> Result<(), DriverError> {
        let text = String::from_utf8_lossy(bytes);
        let line = match stream {
            StdStream::Stdout => alloc::format!("stdout:{text}"),
            StdStream::Stderr => alloc::format!("stderr:{text}"),
        };
        self.lines.lock().unwrap().push(line);
        Ok(())
    }
    fn log_line(&self, stream: &str, line: &[u8]) -> Result<(), DriverError> {
        self.lines.lock().unwrap().push(alloc::format!("[{stream}]{}", String::from_utf8_lossy(line)));
        Ok(())
    }
}

/// A context named `t` whose first module asked for `kinds` (the operator
/// allows every kind), on a [`Recorder`] with no network.
pub fn ctx_with(kinds: &[&str]) -> (TenantCtx, Arc<Recorder>) {
    let rec = Arc::new(Recorder::default());
    (ctx_on(kinds, rec.clone(), NetGrants::default(), None), rec)
}

/// A context named `t` whose first module asked for `kinds`, on `rec`, with
/// `network` within `grants`.
pub fn ctx_on(kinds: &[&str], rec: Arc<Recorder>, grants: NetGrants, network: Option<Arc<dyn Network>>) -> TenantCtx {
    TenantCtx::new(CtxParts {
        name: "t".into(),
        platform: rec.clone(),
        output: rec,
        allowed: Grants::new(oasis_abi::kind::ALL.iter().copied()),
        asked: kinds.iter().map(|k| String::from(*k)).collect(),
        limits: Default::default(),
        argv: Vec::new(),
        environ: Vec::new(),
        net: NetState::new(grants, network),
        quotas: Default::default(),
    })
}

/// Frames in flight, one queue each way.
type Wire = Arc<Mutex<[VecDeque<Vec<u8>>; 2]>>;

/// One end of a cable: a frame sent at one end is received at the other.
pub struct CableEnd {
    wire: Wire,
    /// Which queue this end receives from.
    side: usize,
}

/// Both ends of a new cable.
pub fn cable() -> (CableEnd, CableEnd) {
    let wire: Wire = Arc::default();
    (CableEnd { wire: wire.clone(), side: 0 }, CableEnd { wire, side: 1 })
}

impl Device for CableEnd {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx<'a>;

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = 1514;
        caps.checksum = ChecksumCapabilities::ignored();
        caps
    }

    fn receive(&mut self, _now: smoltcp::time::Instant) -> Option<(Rx, Tx<'_>)> {
        let frame = self.wire.lock().unwrap()[self.side].pop_front()?;
        Some((Rx(frame), Tx(self)))
    }

    fn transmit(&mut self, _now: smoltcp::time::Instant) -> Option<Tx<'_>> {
        Some(Tx(self))
    }
}

impl NetDevice for CableEnd {
    fn waiter(&self) -> Arc<dyn FrameWait> {
        Arc::new(NoWait)
    }
}

/// The tests pump both ends in turn: waiting for a frame would stall the other.
struct NoWait;

impl crate::sched::Wake for NoWait {
    fn wake(&self) {}
}

impl FrameWait for NoWait {
    fn wait(&self, _timeout_ns: Option<u64>) -> bool {
        false
    }
}

/// A received frame.
pub struct Rx(Vec<u8>);

impl phy::RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

/// Room to send one frame.
pub struct Tx<'a>(&'a mut CableEnd);

impl phy::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut frame = alloc::vec![0u8; len];
        let r = f(&mut frame);
        self.0.wire.lock().unwrap()[1 - self.0.side].push_back(frame);
        r
    }
}
