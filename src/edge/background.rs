//! A request's background work (what outlives its response: the settlement, the
//! upstream exchange of a non-streamed call, a stream's pump, health reports, lease
//! renewals) run as one task registered once with the runtime (`wait_until`), instead
//! of a task and a promise handed to `waitUntil` for each piece. Work added while the
//! task runs joins it; work added after it ended starts another.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context as TaskContext, Poll, Waker};

use worker::Context;

type Work = Pin<Box<dyn Future<Output = ()>>>;

/// What the request's code and its task share.
#[derive(Default)]
struct Shared {
    /// Work added since the task last looked.
    added: RefCell<Vec<Work>>,
    /// The task's waker, while it runs.
    waker: RefCell<Option<Waker>>,
    running: Cell<bool>,
}

/// A request's runtime context and its one background task.
pub struct Background {
    ctx: Context,
    shared: Rc<Shared>,
}

impl Background {
    pub fn new(ctx: Context) -> Self {
        Background {
            ctx,
            shared: Rc::default(),
        }
    }

    /// Runs `work` in the request's background task, which the runtime keeps the
    /// request alive for (as `wait_until` does each piece).
    pub fn wait_until(&self, work: impl Future<Output = ()> + 'static) {
        self.shared.added.borrow_mut().push(Box::pin(work));
        if self.shared.running.get() {
            if let Some(w) = self.shared.waker.borrow().as_ref() {
                w.wake_by_ref();
            }
            return;
        }
        self.shared.running.set(true);
        self.ctx.wait_until(Task {
            shared: self.shared.clone(),
            work: Vec::new(),
            done: false,
        });
    }
}

/// The background task: runs every piece of work added until none is left. A
/// request has a few pieces at a time, so each wake-up polls all of them (each
/// cheaply, when it is waiting) rather than keeping a waker per piece.
struct Task {
    shared: Rc<Shared>,
    work: Vec<Work>,
    done: bool,
}

impl Future for Task {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        {
            let mut waker = self.shared.waker.borrow_mut();
            if !waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                *waker = Some(cx.waker().clone());
            }
        }
        loop {
            // Work added by the work itself (a settlement's health report) is taken
            // up in the same turn.
            let added = std::mem::take(&mut *self.shared.added.borrow_mut());
            if added.is_empty() && self.work.is_empty() {
                self.done = true;
                self.shared.running.set(false);
                self.shared.waker.borrow_mut().take();
                return Poll::Ready(());
            }
            self.work.extend(added);
            self.work.retain_mut(|w| w.as_mut().poll(cx).is_pending());
            if self.shared.added.borrow().is_empty() && !self.work.is_empty() {
                return Poll::Pending;
            }
        }
    }
}

impl Drop for Task {
    /// Should the runtime drop the task before its end, later work starts another.
    fn drop(&mut self) {
        if !self.done {
            self.shared.running.set(false);
            self.shared.waker.borrow_mut().take();
        }
    }
}
