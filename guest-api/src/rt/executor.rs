//! The single-threaded executor: a slab of tasks, a ready queue and the timer
//! queue, driven one turn per `oasis_v1_poll`.
//!
//! All state lives in one thread-local [`Runtime`]. A WebAssembly instance has
//! exactly one thread, so this is simply "the" runtime; on native targets the
//! unit tests get one per test thread. Each field has its own `RefCell` and no
//! borrow is held while a task, a waker or a destructor runs, because any of
//! those may come back in (spawn a task, wake one, arm or drop a timer).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::mem;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use super::io::{EVENTS_PER_CALL, EventSource, IoRegistry};
use super::timer::TimerQueue;
use oasis_abi::net::EVENT_LEN;

/// A task's future, type-erased. Tasks report results through their own
/// channels (see `join.rs`), so the executor only sees `()`.
pub(crate) type BoxFuture = Pin<Box<dyn Future<Output = ()>>>;

thread_local! {
    static RUNTIME: Runtime = Runtime::default();
}

/// Runs `f` with this thread's runtime.
pub(crate) fn with<R>(f: impl FnOnce(&Runtime) -> R) -> R {
    RUNTIME.with(f)
}

/// Like [`with`], but `None` once the thread's runtime has been destroyed.
pub(crate) fn try_with<R>(f: impl FnOnce(&Runtime) -> R) -> Option<R> {
    RUNTIME.try_with(f).ok()
}

/// What the host should do after a turn.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// The root task finished: end the app with this status.
    Exit(i32),
    /// Poll again at this monotonic time (at once if it has passed).
    At(u64),
    /// Poll again only when an event arrives.
    Idle,
}

/// A task's name in the slab: the slot, and the slot's generation when the
/// task was stored, so a waker that outlives its task cannot wake a newer task
/// that reused the slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TaskId {
    index: u32,
    generation: u32,
}

/// The waker behind every task's `Waker`.
///
/// `Wake` asks for `Send + Sync`; both hold trivially (an id and an atomic),
/// and a wake always lands in the runtime of the thread that calls it, which
/// on wasm32 is the only one.
struct TaskWaker {
    id: TaskId,
    /// Set while the task sits in the ready queue, so a burst of wakes queues
    /// it once.
    queued: AtomicBool,
}

impl Wake for TaskWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        if !self.queued.swap(true, Ordering::Relaxed) {
            // `try_with`: a waker dropped and woken while the thread is being
            // torn down (native tests only) has nothing left to wake.
            let _ = RUNTIME.try_with(|rt| rt.schedule(self.id));
        }
    }
}

struct Task {
    /// `None` while the task is being polled: the future is moved out so that
    /// no borrow of the slab is held across the poll.
    future: Option<BoxFuture>,
    waker: Arc<TaskWaker>,
}

struct Slot {
    generation: u32,
    task: Option<Task>,
}

/// The tasks, indexed by [`TaskId`]; freed slots are reused.
#[derive(Default)]
struct Slab {
    slots: Vec<Slot>,
    free: Vec<u32>,
}

impl Slab {
    fn insert(&mut self, future: BoxFuture) -> Arc<TaskWaker> {
        let index = match self.free.pop() {
            Some(index) => index,
            None => {
                self.slots.push(Slot { generation: 0, task: None });
                u32::try_from(self.slots.len() - 1).expect("more than 2^32 tasks")
            }
        };
        let slot = &mut self.slots[index as usize];
        let id = TaskId { index, generation: slot.generation };
        let waker = Arc::new(TaskWaker { id, queued: AtomicBool::new(false) });
        slot.task = Some(Task { future: Some(future), waker: Arc::clone(&waker) });
        waker
    }

    fn get_mut(&mut self, id: TaskId) -> Option<&mut Task> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        slot.task.as_mut()
    }

    fn remove(&mut self, id: TaskId) -> Option<Task> {
        let slot = self.slots.get_mut(id.index as usize)?;
        if slot.generation != id.generation {
            return None;
        }
        let task = slot.task.take()?;
        slot.generation = slot.generation.wrapping_add(1);
        self.free.push(id.index);
        Some(task)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.slots.len() - self.free.len()
    }
}

/// Most task polls in one turn. Chains of wake-ups normally finish in a few
/// polls; two tasks that wake each other forever would not, and the turn must
/// end for the host to stay in control.
const MAX_POLLS_PER_TURN: u32 = 4096;

/// Socket calls one task may make in one poll before it must yield.
///
/// A task whose sockets are always ready never returns `Pending` on its
/// own: an HTTP connection whose client sends the next request while the
/// last response is being written reads, answers and reads again forever.
/// Without a cap that one poll, and so the turn, never ends, the other tasks
/// starve and the host stops the app for overrunning its CPU budget (seen
/// under sustained load wherever socket calls are slow, e.g. Wine). As in
/// Tokio's cooperative budget, a call past the cap answers `Pending` and
/// reschedules its task for the next turn.
const TASK_IO_BUDGET: u32 = 64;

/// Socket calls one turn may make: bounds a turn's length when many tasks
/// each stay within [`TASK_IO_BUDGET`], so the host regains control (to
/// poll its network, run other tenants) every so many calls.
const TURN_IO_BUDGET: u32 = 1024;

/// The executor's state.
#[derive(Default)]
pub(crate) struct Runtime {
    tasks: RefCell<Slab>,
    /// Tasks to poll in this turn, in wake order.
    ready: RefCell<VecDeque<TaskId>>,
    /// Tasks that woke themselves while being polled; they run next turn.
    deferred: RefCell<Vec<TaskId>>,
    /// The task being polled, if any.
    current: Cell<Option<TaskId>>,
    /// Pending timers, shared with [`crate::time::Sleep`].
    pub(crate) timers: RefCell<TimerQueue>,
    /// Tasks waiting on sockets.
    pub(crate) io: RefCell<IoRegistry>,
    /// Where readiness events come from; `None` until something registered
    /// (so apps without sockets never call, or import, `poll_events`).
    events: Cell<Option<EventSource>>,
    /// Set once `main` has registered the root task.
    root_started: Cell<bool>,
    /// Set by the root task as it finishes.
    exit: Cell<Option<i32>>,
    /// Set for the duration of a turn, to catch a re-entrant poll.
    in_turn: Cell<bool>,
    /// Socket calls left to the task being polled and to the turn.
    io_budget: Cell<IoBudget>,
}

/// What is left of [`TASK_IO_BUDGET`] and [`TURN_IO_BUDGET`].
#[derive(Clone, Copy, Default)]
struct IoBudget {
    task: u32,
    turn: u32,
}

impl Runtime {
    /// Adds a task and queues it for its first poll.
    pub(crate) fn spawn(&self, future: BoxFuture) {
        let waker = self.tasks.borrow_mut().insert(future);
        waker.wake_by_ref();
    }

    /// Adds the root task: the one whose end ends the app.
    ///
    /// # Panics
    ///
    /// If a root task was already started.
    pub(crate) fn spawn_root(&self, future: BoxFuture) {
        assert!(!self.root_started.replace(true), "the root task (main) was started twice");
        self.spawn(future);
    }

    /// Records the app's exit status; the turn in progress ends after the task
    /// that called this returns.
    pub(crate) fn exit(&self, status: i32) {
        self.exit.set(Some(status));
    }

    /// Sets where readiness events come from (the first socket registration
    /// installs the host's `poll_events`; tests install a fake).
    pub(crate) fn install_event_source(&self, source: EventSource) {
        if self.events.get().is_none() {
            self.events.set(Some(source));
        }
    }

    /// Takes every pending readiness event (calling the source until it
    /// returns fewer than it could) and wakes the tasks waiting on them.
    /// Returns how many wakers it woke.
    fn drain_events(&self) -> usize {
        let Some(source) = self.events.get() else {
            return 0;
        };
        let mut buf = [0u8; EVENTS_PER_CALL * EVENT_LEN];
        let mut due = Vec::new();
        loop {
            let n = source(&mut buf).min(EVENTS_PER_CALL);
            {
                let mut io = self.io.borrow_mut();
                for (handle, flags) in super::io::decode_events(&buf, n) {
                    io.take(handle, flags, &mut due);
                }
            }
            if n < EVENTS_PER_CALL {
                break;
            }
        }
        let woken = due.len();
        // Woken with no borrow held: a waker may run arbitrary code.
        due.into_iter().for_each(Waker::wake);
        woken
    }

    /// Queues a woken task.
    fn schedule(&self, id: TaskId) {
        // A task that wakes itself (a yield) waits for the next turn instead of
        // running again at once: otherwise a task yielding in a loop would keep
        // the turn going forever and the host would never get control back.
        // (Tasks waking each other are bounded by `MAX_POLLS_PER_TURN`.)
        if self.current.get() == Some(id) {
            self.deferred.borrow_mut().push(id);
        } else {
            self.ready.borrow_mut().push_back(id);
        }
    }

    /// One turn (ABI.md section 5, step 2): wakes the timers due at `now_ns`,
    /// polls ready tasks until none is, and says when to come back.
    ///
    /// # Panics
    ///
    /// If called from inside a turn (the host never polls concurrently, and a
    /// task cannot reach the export).
    pub(crate) fn turn(&self, now_ns: u64) -> Next {
        assert!(!self.in_turn.replace(true), "oasis_v1_poll re-entered from inside a task");
        // Reset the flag however the turn ends; a panic in a task unwinds
        // through here only on native test targets (wasm32 aborts).
        struct EndTurn<'a>(&'a Cell<bool>);
        impl Drop for EndTurn<'_> {
            fn drop(&mut self) {
                self.0.set(false);
            }
        }
        let _end = EndTurn(&self.in_turn);
        self.io_budget.set(IoBudget { task: 0, turn: TURN_IO_BUDGET });

        self.drain_events();
        let mut due = Vec::new();
        self.timers.borrow_mut().expire(now_ns, &mut due);
        due.into_iter().for_each(Waker::wake);

        let mut polls = 0;
        loop {
            if polls == MAX_POLLS_PER_TURN {
                // Tasks keep waking each other: hand control back to the host
                // ("call me again at once") rather than run past the CPU budget.
                return Next::At(now_ns);
            }
            let next = self.ready.borrow_mut().pop_front();
            let Some(id) = next else {
                // Idle: take the events the host queued while the tasks ran
                // (e.g. a write that became possible at once), so a ready
                // socket does not wait for another round trip through the host.
                if self.drain_events() > 0 && !self.ready.borrow().is_empty() {
                    continue;
                }
                break;
            };
            polls += 1;
            self.run(id);
            if let Some(status) = self.exit.get() {
                return Next::Exit(status);
            }
        }

        let deferred = mem::take(&mut *self.deferred.borrow_mut());
        if !deferred.is_empty() {
            self.ready.borrow_mut().extend(deferred);
            return Next::At(now_ns);
        }
        match self.timers.borrow().next_deadline() {
            Some(deadline) => Next::At(deadline),
            None => Next::Idle,
        }
    }

    /// Takes one socket call from the cooperative budget; false means the
    /// caller must yield instead (answer `Pending` after waking itself).
    /// Outside a task poll (no task is current) there is no budget to keep.
    pub(crate) fn take_io_budget(&self) -> bool {
        if self.current.get().is_none() {
            return true;
        }
        let budget = self.io_budget.get();
        if budget.task == 0 || budget.turn == 0 {
            return false;
        }
        self.io_budget.set(IoBudget { task: budget.task - 1, turn: budget.turn - 1 });
        true
    }

    /// Polls one task once.
    fn run(&self, id: TaskId) {
        let (mut future, waker) = {
            let mut tasks = self.tasks.borrow_mut();
            // A stale id: the task finished after it was woken.
            let Some(task) = tasks.get_mut(id) else {
                return;
            };
            let Some(future) = task.future.take() else {
                return;
            };
            // Cleared before the poll, so a wake during it queues the task again.
            task.waker.queued.store(false, Ordering::Relaxed);
            (future, Waker::from(Arc::clone(&task.waker)))
        };

        self.current.set(Some(id));
        let turn = self.io_budget.get().turn;
        self.io_budget.set(IoBudget { task: TASK_IO_BUDGET, turn });
        let poll = future.as_mut().poll(&mut Context::from_waker(&waker));
        self.current.set(None);

        match poll {
            Poll::Ready(()) => {
                self.tasks.borrow_mut().remove(id);
                // Dropped here, with no borrow held: its destructor may cancel
                // timers or wake other tasks.
                drop(future);
            }
            Poll::Pending => {
                if let Some(task) = self.tasks.borrow_mut().get_mut(id) {
                    task.future = Some(future);
                }
            }
        }
    }

    /// Number of live tasks.
    #[cfg(test)]
    pub(crate) fn task_count(&self) -> usize {
        self.tasks.borrow().len()
    }

    /// Installs `source` in place of whatever event source was set.
    #[cfg(test)]
    pub(crate) fn set_event_source(&self, source: EventSource) {
        self.events.set(Some(source));
    }

    /// Forgets every task and timer, for tests sharing one thread.
    #[cfg(test)]
    pub(crate) fn reset(&self) {
        let tasks = mem::take(&mut *self.tasks.borrow_mut());
        drop(tasks);
        self.ready.borrow_mut().clear();
        self.deferred.borrow_mut().clear();
        *self.timers.borrow_mut() = TimerQueue::default();
        *self.io.borrow_mut() = IoRegistry::default();
        self.events.set(None);
        self.root_started.set(false);
        self.exit.set(None);
    }
}
