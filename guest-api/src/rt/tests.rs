//! Executor and timer tests, on the native target with a fake clock.
//!
//! Each test drives the runtime the way the host does: set the clock, run a
//! turn, look at what the turn asks for.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use super::executor::{Next, with};
use super::{MainOutput, spawn, yield_now};
use crate::sys::set_fake_now_ns;
use crate::time::{Instant, interval, sleep, sleep_until};

const MS: u64 = 1_000_000;

/// A fresh runtime with the clock at `start_ms`.
fn setup(start_ms: u64) {
    with(|rt| rt.reset());
    set_fake_now_ns(start_ms * MS);
}

/// Moves the clock to `ms` and runs one turn at that time, as the host does.
fn turn_at(ms: u64) -> Next {
    set_fake_now_ns(ms * MS);
    with(|rt| rt.turn(ms * MS))
}

/// Starts `future` as the root task, like `#[oasis::main]`.
fn start_root<F>(future: F)
where
    F: Future + 'static,
    F::Output: MainOutput,
{
    super::__start_root(future);
}

/// A log shared by the tasks of a test.
fn log() -> Rc<RefCell<Vec<String>>> {
    Rc::new(RefCell::new(Vec::new()))
}

#[test]
fn timers_fire_in_deadline_order() {
    setup(0);
    let events = log();
    for (name, ms) in [("c", 30), ("a", 10), ("b", 20), ("a2", 10)] {
        let events = Rc::clone(&events);
        drop(spawn(async move {
            sleep(Duration::from_millis(ms)).await;
            events.borrow_mut().push(format!("{name}@{}", Instant::now().as_nanos() / MS));
        }));
    }
    assert_eq!(turn_at(0), Next::At(10 * MS), "the earliest deadline is reported");
    assert!(events.borrow().is_empty());
    assert_eq!(turn_at(5), Next::At(10 * MS), "a spurious poll changes nothing");
    assert_eq!(turn_at(25), Next::At(30 * MS));
    assert_eq!(*events.borrow(), ["a@25", "a2@25", "b@25"], "due timers fire earliest first, ties in order");
    assert_eq!(turn_at(30), Next::Idle, "nothing left: -1");
    assert_eq!(events.borrow().len(), 4);
    assert_eq!(with(|rt| rt.task_count()), 0);
}

#[test]
fn root_ok_exits_0_and_err_exits_1() {
    setup(0);
    start_root(async {
        sleep(Duration::from_millis(1)).await;
        Ok::<(), crate::Error>(())
    });
    assert_eq!(turn_at(0), Next::At(MS));
    assert_eq!(turn_at(1), Next::Exit(0));

    setup(0);
    start_root(async { Err::<(), _>(crate::Error::msg("boom")) });
    assert_eq!(turn_at(0), Next::Exit(1));

    setup(0);
    start_root(async {});
    assert_eq!(turn_at(0), Next::Exit(0));
}

#[test]
fn root_end_abandons_other_tasks() {
    setup(0);
    start_root(async {
        drop(spawn(sleep(Duration::from_secs(60))));
    });
    assert_eq!(turn_at(0), Next::Exit(0));
}

#[test]
fn spawn_and_join() {
    setup(0);
    let result = Rc::new(Cell::new(0));
    let seen = Rc::clone(&result);
    start_root(async move {
        let quick = spawn(async { 6 * 7 });
        let slow = spawn(async {
            sleep(Duration::from_millis(50)).await;
            "slow"
        });
        assert!(!slow.is_finished());
        seen.set(quick.await);
        assert_eq!(slow.await, "slow");
    });
    assert_eq!(turn_at(0), Next::At(50 * MS));
    assert_eq!(result.get(), 42);
    assert_eq!(turn_at(50), Next::Exit(0));
}

#[test]
fn join_handle_of_finished_task_is_ready_at_once() {
    setup(0);
    let handle = spawn(async { 1 });
    assert_eq!(turn_at(0), Next::Idle);
    assert!(handle.is_finished());
    let out = Rc::new(Cell::new(0));
    let seen = Rc::clone(&out);
    drop(spawn(async move { seen.set(handle.await + 1) }));
    assert_eq!(turn_at(0), Next::Idle);
    assert_eq!(out.get(), 2);
}

/// A one-shot signal: the simplest cross-task wake-up.
#[derive(Default)]
struct Signal {
    set: Cell<bool>,
    waiter: RefCell<Option<Waker>>,
}

impl Signal {
    fn raise(&self) {
        self.set.set(true);
        if let Some(w) = self.waiter.borrow_mut().take() {
            w.wake();
        }
    }

    fn wait(self: &Rc<Self>) -> impl Future<Output = ()> + use<> {
        let signal = Rc::clone(self);
        std::future::poll_fn(move |cx: &mut Context<'_>| {
            if signal.set.get() {
                Poll::Ready(())
            } else {
                *signal.waiter.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
    }
}

#[test]
fn wake_from_another_task() {
    setup(0);
    let signal = Rc::new(Signal::default());
    let events = log();

    let (waiting, e1) = (signal.wait(), Rc::clone(&events));
    drop(spawn(async move {
        waiting.await;
        e1.borrow_mut().push("woken".into());
    }));
    assert_eq!(turn_at(0), Next::Idle, "a task waiting on an event leaves nothing due");

    let (raiser, e2) = (Rc::clone(&signal), Rc::clone(&events));
    drop(spawn(async move {
        sleep(Duration::from_millis(5)).await;
        e2.borrow_mut().push("raising".into());
        raiser.raise();
    }));
    assert_eq!(turn_at(0), Next::At(5 * MS));
    assert!(events.borrow().is_empty());
    assert_eq!(turn_at(5), Next::Idle);
    assert_eq!(*events.borrow(), ["raising", "woken"], "the woken task runs in the same turn");
}

#[test]
fn a_yielding_task_runs_again_next_turn() {
    setup(0);
    let polls = Rc::new(Cell::new(0));
    let count = Rc::clone(&polls);
    drop(spawn(async move {
        loop {
            count.set(count.get() + 1);
            yield_now().await;
        }
    }));
    assert_eq!(turn_at(7), Next::At(7 * MS), "call me again at once");
    assert_eq!(polls.get(), 1, "the turn ends instead of spinning");
    assert_eq!(turn_at(7), Next::At(7 * MS));
    assert_eq!(polls.get(), 2);
}

#[test]
fn a_reset_sleep_stays_armed() {
    setup(0);
    let shared = Rc::new(RefCell::new(Box::pin(sleep(Duration::from_millis(10)))));
    let done = Rc::new(Cell::new(false));
    let (s, d) = (Rc::clone(&shared), Rc::clone(&done));
    drop(spawn(std::future::poll_fn(move |cx| {
        let ready = s.borrow_mut().as_mut().poll(cx).is_ready();
        d.set(ready);
        if ready { Poll::Ready(()) } else { Poll::Pending }
    })));
    assert_eq!(turn_at(0), Next::At(10 * MS));
    // Pushed back from outside the task, which is not polled in between.
    shared.borrow_mut().as_mut().reset(Instant::from_nanos(30 * MS));
    assert_eq!(with(|rt| rt.timers.borrow().next_deadline()), Some(30 * MS), "re-armed at the new deadline");
    assert_eq!(turn_at(30), Next::Idle);
    assert!(done.get(), "woken at the new deadline");
}

#[test]
fn two_tasks_waking_each_other_end_the_turn() {
    setup(0);
    // Ping-pong over two shared waker slots: each task wakes the other and waits.
    let slots: Rc<[RefCell<Option<Waker>>; 2]> = Rc::new(Default::default());
    let polls = Rc::new(Cell::new(0));
    for me in 0..2 {
        let (slots, count) = (Rc::clone(&slots), Rc::clone(&polls));
        drop(spawn(std::future::poll_fn(move |cx| {
            count.set(count.get() + 1);
            *slots[me].borrow_mut() = Some(cx.waker().clone());
            if let Some(other) = slots[1 - me].borrow_mut().take() {
                other.wake();
            }
            Poll::<()>::Pending
        })));
    }
    assert_eq!(turn_at(3), Next::At(3 * MS), "more to do: call again at once");
    let first = polls.get();
    assert!((2..=4096).contains(&first), "the turn ended after a bounded number of polls: {first}");
    assert_eq!(turn_at(3), Next::At(3 * MS));
    assert!(polls.get() > first, "and the tasks go on next turn");
}

#[test]
fn many_wakes_queue_a_task_once() {
    setup(0);
    let signal = Rc::new(Signal::default());
    let polls = Rc::new(Cell::new(0));
    let (count, s) = (Rc::clone(&polls), Rc::clone(&signal));
    drop(spawn(async move {
        std::future::poll_fn(|cx| {
            count.set(count.get() + 1);
            *s.waiter.borrow_mut() = Some(cx.waker().clone());
            Poll::<()>::Pending
        })
        .await
    }));
    assert_eq!(turn_at(0), Next::Idle);
    let waker = signal.waiter.borrow().clone().unwrap();
    waker.wake_by_ref();
    waker.wake_by_ref();
    waker.wake();
    assert_eq!(turn_at(0), Next::Idle);
    assert_eq!(polls.get(), 2);
}

#[test]
fn a_stale_waker_wakes_nothing() {
    setup(0);
    let signal = Rc::new(Signal::default());
    let s = Rc::clone(&signal);
    drop(spawn(std::future::poll_fn(move |cx| {
        *s.waiter.borrow_mut() = Some(cx.waker().clone());
        Poll::Ready(())
    })));
    assert_eq!(turn_at(0), Next::Idle);
    // The slot is reused by a new task; the old waker must not poll it.
    let polls = Rc::new(Cell::new(0));
    let count = Rc::clone(&polls);
    drop(spawn(std::future::poll_fn(move |_| {
        count.set(count.get() + 1);
        Poll::<()>::Pending
    })));
    assert_eq!(turn_at(0), Next::Idle);
    signal.waiter.borrow_mut().take().unwrap().wake();
    assert_eq!(turn_at(0), Next::Idle);
    assert_eq!(polls.get(), 1);
}

#[test]
fn dropping_a_sleep_cancels_its_timer() {
    setup(0);
    drop(spawn(async {
        let long = sleep(Duration::from_secs(10));
        let mut long = std::pin::pin!(long);
        // Poll it once so it registers, then give up on it.
        std::future::poll_fn(|cx| {
            let _ = long.as_mut().poll(cx);
            Poll::Ready(())
        })
        .await;
        assert_eq!(with(|rt| rt.timers.borrow().len()), 1);
    }));
    assert_eq!(turn_at(0), Next::Idle, "the dropped sleep leaves no deadline");
    assert_eq!(with(|rt| rt.timers.borrow().len()), 0);
}

#[test]
fn a_past_deadline_completes_without_a_timer() {
    setup(100);
    let done = Rc::new(Cell::new(false));
    let flag = Rc::clone(&done);
    drop(spawn(async move {
        sleep_until(Instant::from_nanos(50 * MS)).await;
        sleep(Duration::ZERO).await;
        flag.set(true);
    }));
    assert_eq!(turn_at(100), Next::Idle);
    assert!(done.get());
}

#[test]
fn interval_ticks_on_schedule_and_skips_missed_ticks() {
    setup(1000);
    let ticks = log();
    let seen = Rc::clone(&ticks);
    drop(spawn(async move {
        let mut every = interval(Duration::from_millis(100));
        loop {
            let due = every.tick().await;
            let now = Instant::now();
            seen.borrow_mut().push(format!("{}@{}", due.as_nanos() / MS, now.as_nanos() / MS));
        }
    }));
    assert_eq!(turn_at(1000), Next::At(1100 * MS), "the first tick is immediate");
    assert_eq!(turn_at(1100), Next::At(1200 * MS));
    // The host comes back late, past two more ticks: one tick, then back on schedule.
    assert_eq!(turn_at(1450), Next::At(1500 * MS));
    assert_eq!(turn_at(1500), Next::At(1600 * MS));
    assert_eq!(*ticks.borrow(), ["1000@1000", "1100@1100", "1200@1450", "1500@1500"]);
}

#[test]
fn spawn_from_a_task_runs_in_the_same_turn() {
    setup(0);
    let events = log();
    let e = Rc::clone(&events);
    start_root(async move {
        let inner = Rc::clone(&e);
        spawn(async move { inner.borrow_mut().push("child".to_string()) }).await;
        e.borrow_mut().push("parent".to_string());
    });
    assert_eq!(turn_at(0), Next::Exit(0));
    assert_eq!(*events.borrow(), ["child", "parent"]);
}

#[test]
#[should_panic(expected = "started twice")]
fn a_second_root_is_refused() {
    setup(0);
    start_root(async {});
    start_root(async {});
}

#[test]
fn poll_export_maps_turns_to_the_abi() {
    setup(0);
    drop(spawn(sleep(Duration::from_millis(3))));
    assert_eq!(super::__poll(0), 3 * MS as i64);
    set_fake_now_ns(3 * MS);
    assert_eq!(super::__poll(3 * MS as i64), -1);
    assert_eq!(super::__poll(-5), -1, "a negative now is read as 0");
}

// ---- The I/O registry, with a fake event source ----

use super::io::{self as rt_io, Interest};
use std::collections::VecDeque;

thread_local! {
    /// Events the fake source hands out, and how many calls it took.
    static FAKE_EVENTS: RefCell<VecDeque<(u32, u32)>> = const { RefCell::new(VecDeque::new()) };
    static FAKE_CALLS: Cell<u32> = const { Cell::new(0) };
}

fn fake_source(buf: &mut [u8]) -> usize {
    FAKE_CALLS.with(|c| c.set(c.get() + 1));
    FAKE_EVENTS.with(|q| {
        let mut q = q.borrow_mut();
        let mut n = 0;
        for slot in buf.chunks_exact_mut(8) {
            let Some((handle, flags)) = q.pop_front() else {
                break;
            };
            slot[..4].copy_from_slice(&handle.to_le_bytes());
            slot[4..].copy_from_slice(&flags.to_le_bytes());
            n += 1;
        }
        n
    })
}

fn setup_io() {
    setup(0);
    FAKE_EVENTS.with(|q| q.borrow_mut().clear());
    FAKE_CALLS.with(|c| c.set(0));
    with(|rt| rt.set_event_source(fake_source));
}

fn push_event(handle: u32, flags: u32) {
    FAKE_EVENTS.with(|q| q.borrow_mut().push_back((handle, flags)));
}

/// A stand-in socket call: not ready until `ready` is set; registers for
/// `interest` on `handle` like the real calls do, and counts its polls.
fn fake_io(handle: u32, interest: Interest, ready: Rc<Cell<bool>>, polls: Rc<Cell<u32>>) -> impl Future<Output = ()> {
    std::future::poll_fn(move |cx: &mut Context<'_>| {
        polls.set(polls.get() + 1);
        if ready.get() {
            return Poll::Ready(());
        }
        rt_io::register(handle, interest, cx.waker());
        Poll::Pending
    })
}

#[test]
fn readiness_events_wake_the_matching_direction() {
    use oasis_abi::net::{READABLE, WRITABLE};
    setup_io();
    let (r_ready, r_polls) = (Rc::new(Cell::new(false)), Rc::new(Cell::new(0)));
    let (w_ready, w_polls) = (Rc::new(Cell::new(false)), Rc::new(Cell::new(0)));
    drop(spawn(fake_io(5, Interest::Read, Rc::clone(&r_ready), Rc::clone(&r_polls))));
    drop(spawn(fake_io(5, Interest::Write, Rc::clone(&w_ready), Rc::clone(&w_polls))));
    assert_eq!(turn_at(0), Next::Idle, "waiting on sockets only: -1");
    assert_eq!((r_polls.get(), w_polls.get()), (1, 1));

    // A readable event on another handle wakes nobody.
    push_event(6, READABLE);
    assert_eq!(turn_at(1), Next::Idle);
    assert_eq!((r_polls.get(), w_polls.get()), (1, 1));

    // Readable wakes the reader only; it retries and still is not ready.
    push_event(5, READABLE);
    assert_eq!(turn_at(2), Next::Idle);
    assert_eq!((r_polls.get(), w_polls.get()), (2, 1));

    r_ready.set(true);
    push_event(5, READABLE);
    push_event(5, WRITABLE);
    w_ready.set(true);
    assert_eq!(turn_at(3), Next::Idle);
    assert_eq!((r_polls.get(), w_polls.get()), (3, 2));
    assert_eq!(with(|rt| rt.task_count()), 0);
    assert_eq!(with(|rt| rt.io.borrow().len()), 0, "no registration left behind");
}

#[test]
fn hangup_and_error_wake_both_directions() {
    use oasis_abi::net::{ERROR, HANGUP};
    for flag in [HANGUP, ERROR] {
        setup_io();
        let ready = Rc::new(Cell::new(false));
        let (r_polls, w_polls) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
        drop(spawn(fake_io(9, Interest::Read, Rc::clone(&ready), Rc::clone(&r_polls))));
        drop(spawn(fake_io(9, Interest::Write, Rc::clone(&ready), Rc::clone(&w_polls))));
        turn_at(0);
        ready.set(true);
        push_event(9, flag);
        turn_at(1);
        assert_eq!((r_polls.get(), w_polls.get()), (2, 2), "flag {flag}");
        assert_eq!(with(|rt| rt.task_count()), 0);
    }
}

#[test]
fn closing_a_handle_drops_its_registrations() {
    use oasis_abi::net::READABLE;
    setup_io();
    let polls = Rc::new(Cell::new(0));
    drop(spawn(fake_io(3, Interest::Read, Rc::new(Cell::new(false)), Rc::clone(&polls))));
    turn_at(0);
    assert_eq!(with(|rt| rt.io.borrow().len()), 1);
    rt_io::deregister(3);
    assert_eq!(with(|rt| rt.io.borrow().len()), 0);
    push_event(3, READABLE);
    turn_at(1);
    assert_eq!(polls.get(), 1, "an event for a closed handle wakes nothing");
}

#[test]
fn events_are_drained_until_the_source_runs_dry() {
    use oasis_abi::net::READABLE;
    setup_io();
    let polls = Rc::new(Cell::new(0));
    let ready = Rc::new(Cell::new(false));
    drop(spawn(fake_io(1000, Interest::Read, Rc::clone(&ready), Rc::clone(&polls))));
    turn_at(0);
    let calls_before = FAKE_CALLS.with(Cell::get);
    // Three full batches of unrelated events, then ours.
    for h in 0..(3 * rt_io::EVENTS_PER_CALL as u32) {
        push_event(h + 1, READABLE);
    }
    push_event(1000, READABLE);
    ready.set(true);
    turn_at(1);
    assert_eq!(polls.get(), 2, "the event after three full batches was seen");
    assert!(FAKE_CALLS.with(Cell::get) - calls_before >= 4);
    assert!(FAKE_EVENTS.with(|q| q.borrow().is_empty()));
}

#[test]
fn timers_and_sockets_together() {
    use oasis_abi::net::READABLE;
    setup_io();
    let polls = Rc::new(Cell::new(0));
    let ready = Rc::new(Cell::new(false));
    drop(spawn(fake_io(4, Interest::Read, Rc::clone(&ready), Rc::clone(&polls))));
    drop(spawn(sleep(Duration::from_millis(20))));
    assert_eq!(turn_at(0), Next::At(20 * MS), "the timer is the deadline");
    ready.set(true);
    push_event(4, READABLE);
    assert_eq!(turn_at(5), Next::At(20 * MS));
    assert_eq!(polls.get(), 2);
    assert_eq!(turn_at(20), Next::Idle);
}

#[test]
fn apps_without_sockets_never_ask_for_events() {
    setup(0);
    drop(spawn(async {}));
    turn_at(0);
    // No event source was installed: `poll_events` is never called (the
    // native stand-in would answer UNSUPPORTED, which drains nothing anyway).
    assert!(with(|rt| rt.io.borrow().len() == 0));
}

/// A task whose socket calls always succeed (a client that keeps sending):
/// it takes the cooperative budget until told to yield, then yields.
fn always_ready_worker(calls: Rc<Cell<u32>>) -> impl Future<Output = ()> {
    std::future::poll_fn(move |cx: &mut Context<'_>| {
        loop {
            if !with(|rt| rt.take_io_budget()) {
                cx.waker().wake_by_ref();
                return Poll::<()>::Pending;
            }
            calls.set(calls.get() + 1);
        }
    })
}

#[test]
fn always_ready_io_yields_and_the_turn_ends() {
    setup(0);
    let calls = Rc::new(Cell::new(0));
    drop(spawn(always_ready_worker(Rc::clone(&calls))));
    // Without the budget this turn would never return.
    assert_eq!(turn_at(1), Next::At(MS), "it yielded: call again at once");
    let first = calls.get();
    assert!(first > 0 && first <= 64, "one poll made at most the task budget: {first}");
    assert_eq!(turn_at(2), Next::At(2 * MS));
    assert_eq!(calls.get(), 2 * first, "the budget is fresh next turn");
}

#[test]
fn many_busy_tasks_share_a_bounded_turn() {
    setup(0);
    let calls = Rc::new(Cell::new(0));
    for _ in 0..100 {
        drop(spawn(always_ready_worker(Rc::clone(&calls))));
    }
    assert_eq!(turn_at(1), Next::At(MS));
    let per_turn = calls.get();
    assert!(per_turn <= 1024, "the turn's budget bounds all tasks together: {per_turn}");
    assert!(per_turn >= 64, "{per_turn}");
    // Every task still gets its turn eventually.
    for ms in 2..20 {
        turn_at(ms);
    }
    assert!(calls.get() >= 100 * 64, "{}", calls.get());
}

#[test]
fn outside_a_task_there_is_no_budget() {
    setup(0);
    assert!((0..10_000).all(|_| with(|rt| rt.take_io_budget())));
}
