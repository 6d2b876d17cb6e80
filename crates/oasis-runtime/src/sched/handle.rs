//! The scheduler's handle: what other threads use to add, remove, replace
//! and look at tenants while the loop runs, and the book they share with it.
//!
//! A handle never touches a tenant: it writes down what it wants in the book
//! and wakes the loop, which carries it out at the start of its next pass,
//! between calls into the guest. The book is a spin lock held only to read or
//! write a few fields (never while a guest runs, a tenant is dropped or
//! anything blocks), so the loop and the handles never wait for each other
//! for long.

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering::SeqCst};

use super::wake::Wake;
use super::{SchedError, State, TenantId, TenantInfo, Usage};
use crate::net::Network;
use crate::tenant::{Exit, Tenant};

/// A change asked for through a [`Handle`], carried out by the loop.
pub(super) enum Command {
    Add { id: TenantId, tenant: Tenant, network: Option<Arc<dyn Network>> },
    Remove { id: TenantId },
    Replace { id: TenantId, tenant: Tenant, network: Option<Arc<dyn Network>> },
}

impl Command {
    pub(super) fn id(&self) -> TenantId {
        match self {
            Command::Add { id, .. } | Command::Remove { id } | Command::Replace { id, .. } => *id,
        }
    }
}

/// What the handles know of one tenant.
pub(super) struct Entry {
    pub(super) name: String,
    pub(super) state: State,
    /// Written by the loop after every call into the tenant.
    pub(super) usage: Arc<spin::Mutex<Usage>>,
    pub(super) instance: u32,
    pub(super) on_thread: bool,
}

/// What the loop and the handles share, behind the lock.
pub(super) struct Book {
    next_id: u64,
    pub(super) tenants: BTreeMap<TenantId, Entry>,
    pub(super) commands: VecDeque<Command>,
    /// Ends of command apps on their threads, in the order they came.
    pub(super) thread_ends: VecDeque<(TenantId, Exit)>,
    pub(super) stop: bool,
}

/// The book, and how to wake the loop.
pub(crate) struct Shared {
    pub(super) book: spin::Mutex<Book>,
    /// A wake came since the loop's pass began: it must not block before
    /// another pass. Also spares the wake source all but the first of many
    /// wakes in one pass (the switch wakes the loop on every frame).
    pending: AtomicBool,
    waker: Arc<dyn Wake>,
}

impl Shared {
    pub(super) fn new(waker: Arc<dyn Wake>) -> Shared {
        let book = Book {
            next_id: 1,
            tenants: BTreeMap::new(),
            commands: VecDeque::new(),
            thread_ends: VecDeque::new(),
            stop: false,
        };
        Shared { book: spin::Mutex::new(book), pending: AtomicBool::new(false), waker }
    }

    /// Wakes the loop (see `pending`).
    pub(super) fn wake(&self) {
        if !self.pending.swap(true, SeqCst) {
            self.waker.wake();
        }
    }

    /// Called by the loop as a pass begins, before it looks at the book: a
    /// wake from now on is for something it has not seen.
    pub(super) fn begin_pass(&self) {
        self.pending.store(false, SeqCst);
    }

    /// Whether a wake came since the pass began.
    pub(super) fn woken(&self) -> bool {
        self.pending.load(SeqCst)
    }

    /// A command app's thread says how it ended.
    pub(super) fn thread_ended(&self, id: TenantId, exit: Exit) {
        self.book.lock().thread_ends.push_back((id, exit));
        self.wake();
    }
}

/// Adds, removes, replaces and looks at the tenants of a running
/// [`Scheduler`](super::Scheduler), from any thread. Cheap to clone.
///
/// Changes are queued and return at once; the loop carries them out at the
/// start of its next pass, between calls into the guest, in the order they
/// were made. [`TenantInfo::instance`] tells when a replacement took effect.
#[derive(Clone)]
pub struct Handle {
    pub(super) shared: Arc<Shared>,
}

impl Handle {
    /// Adds `tenant` (instantiated, not yet initialised) with the network it
    /// was given, if any; the loop starts it on its next pass. See the
    /// [module docs](super) for which networks a tenant may be on.
    pub fn add(&self, tenant: Tenant, network: Option<Arc<dyn Network>>) -> TenantId {
        let name = tenant.name().to_string();
        let id = {
            let mut book = self.shared.book.lock();
            let id = TenantId(book.next_id);
            book.next_id += 1;
            let entry = Entry { name, state: State::Running, usage: Arc::default(), instance: 0, on_thread: false };
            book.tenants.insert(id, entry);
            book.commands.push_back(Command::Add { id, tenant, network });
            id
        };
        self.shared.wake();
        id
    }

    /// Removes tenant `id`. A running tenant is stopped on the loop's next
    /// pass: dropped, which delivers its last log lines and closes its
    /// sockets, then reported as [`End::Removed`](super::End::Removed). An
    /// ended one is forgotten. Either way [`query`](Self::query) no longer
    /// knows it once the loop took it out.
    pub fn remove(&self, id: TenantId) -> Result<(), SchedError> {
        // Looked at and queued under one lock (see `replace`).
        let mut book = self.shared.book.lock();
        let entry = book.tenants.get(&id).ok_or(SchedError::Unknown(id))?;
        if entry.on_thread {
            return Err(SchedError::OnThread { id, name: entry.name.clone() });
        }
        if matches!(entry.state, State::Ended(_)) && !book.commands.iter().any(|c| c.id() == id) {
            book.tenants.remove(&id);
            return Ok(());
        }
        book.commands.push_back(Command::Remove { id });
        drop(book);
        self.shared.wake();
        Ok(())
    }

    /// Puts `tenant`, a new instance (instantiated by the caller, not yet
    /// initialised), in the place of tenant `id`, with `network`: on the
    /// loop's next pass the old instance is dropped (its last log lines
    /// delivered, its sockets closed) and the new one starts under the same
    /// id. An ended tenant is started again this way. The old instance's
    /// going is not an end: nothing is reported. On error `tenant` is dropped.
    pub fn replace(&self, id: TenantId, tenant: Tenant, network: Option<Arc<dyn Network>>) -> Result<(), SchedError> {
        // Looked at and queued under one lock: the loop does not move a
        // tenant to a thread while a change for it is queued.
        let mut book = self.shared.book.lock();
        let entry = book.tenants.get(&id).ok_or(SchedError::Unknown(id))?;
        if entry.on_thread {
            return Err(SchedError::OnThread { id, name: entry.name.clone() });
        }
        book.commands.push_back(Command::Replace { id, tenant, network });
        drop(book);
        self.shared.wake();
        Ok(())
    }

    /// What is known of tenant `id`; `None` if no tenant has it (never had,
    /// or it was removed).
    pub fn query(&self, id: TenantId) -> Option<TenantInfo> {
        let book = self.shared.book.lock();
        book.tenants.get(&id).map(|entry| info(id, entry))
    }

    /// Every tenant, in the order they were added.
    pub fn list(&self) -> Vec<TenantInfo> {
        let book = self.shared.book.lock();
        book.tenants.iter().map(|(id, entry)| info(*id, entry)).collect()
    }

    /// Makes the loop's [`run`](super::Scheduler::run) return at the start of
    /// its next pass, whatever it runs until, with
    /// [`Outcome::Stopped`](super::Outcome::Stopped). The tenants stay with
    /// the scheduler.
    pub fn stop(&self) {
        self.shared.book.lock().stop = true;
        self.shared.wake();
    }

    /// Wakes the loop: it makes a pass (polls every network, runs what is due).
    pub fn wake(&self) {
        self.shared.wake();
    }

    /// A [`Wake`] for this loop, e.g. for the in-process switch, to wake it
    /// when it forwards a frame.
    pub fn waker(&self) -> Arc<dyn Wake> {
        Arc::new(self.clone())
    }
}

impl Wake for Handle {
    fn wake(&self) {
        self.shared.wake();
    }
}

fn info(id: TenantId, entry: &Entry) -> TenantInfo {
    TenantInfo {
        id,
        name: entry.name.clone(),
        state: entry.state.clone(),
        usage: *entry.usage.lock(),
        instance: entry.instance,
        on_thread: entry.on_thread,
    }
}
