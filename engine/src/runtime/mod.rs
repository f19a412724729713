//! The glommio runtime: one `LocalExecutor` per core, pinned to its CPU, each owning one
//! [`Shard`](crate::Shard) inside a [`Core`], joined by a full [`mesh`] of inboxes.
//!
//! ```text
//!  main thread ── spawns ──► core 0 executor ─┐      ┌─ core 1 executor
//!                            Core{Shard 0}    │ mesh │  Core{Shard 1}
//!                            conns (net)  ◄───┴──────┴──► conns (net)
//! ```
//!
//! Everything inside an executor is single-threaded (`Rc`, `RefCell`). Only [`Msg`]s cross
//! cores, over the mesh. Each core's event loop (net's connection loop) drains its inbox,
//! posts its outbox and fires its [`wake::Timers`] every turn, and sleeps in its own
//! io_uring; glommio runs the core's other tasks when the loop yields ([`wake`]).

mod core;
pub mod mesh;
pub mod oneshot;
pub mod wake;

use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use glommio::{LocalExecutorBuilder, Placement};

use self::mesh::Mesh;

pub use self::core::{
    now_ms, set_answerer, Answer, AnswerFn, Core, CoreFn, Job, LoopReply, Msg, Out, ShardFn, NO_TXN,
};

/// Errors starting the runtime.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("--cores {requested} exceeds the {available} online CPUs")]
    TooManyCores { requested: usize, available: usize },
    #[error("--cores must be at least 1")]
    ZeroCores,
    #[error("--cores {requested} exceeds the {limit} cores one server can run")]
    AboveLimit { requested: usize, limit: usize },
    #[error("could not start the executor for core {core}: {reason}")]
    Spawn { core: usize, reason: String },
    #[error("core {core} panicked")]
    Panicked { core: usize },
    #[error("could not set up the mesh between cores: {0}")]
    Mesh(std::io::Error),
}

/// The CPUs this process may run on, in ascending order.
pub fn online_cpus() -> Vec<usize> {
    let mut ids: Vec<usize> = core_affinity::get_core_ids()
        .unwrap_or_default()
        .into_iter()
        .map(|c| c.id)
        .collect();
    if ids.is_empty() {
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        ids = (0..n).collect();
    }
    ids.sort_unstable();
    ids
}

/// Checks a requested core count against the online CPUs (`None` = all of them).
pub fn resolve_cores(requested: Option<usize>) -> Result<usize, RuntimeError> {
    let available = online_cpus().len();
    match requested {
        None => Ok(available.min(crate::MAX_CORES)),
        Some(n) if n > crate::MAX_CORES => Err(RuntimeError::AboveLimit {
            requested: n,
            limit: crate::MAX_CORES,
        }),
        Some(0) => Err(RuntimeError::ZeroCores),
        Some(n) if n > available => Err(RuntimeError::TooManyCores {
            requested: n,
            available,
        }),
        Some(n) => Ok(n),
    }
}

/// Drives a core that has no connection loop (tests, tools): answers its inbox, posts its
/// outbox and fires its timers every few hundred microseconds until `stop` says so. The
/// server's loop does this itself, every turn, and must not run alongside.
pub async fn pump(core: Rc<Core>, stop: impl Fn() -> bool) {
    while !stop() {
        let now = core.tick();
        core.drain_inbox();
        core.timers.fire(now);
        core.flush_outbox();
        glommio::timer::sleep(std::time::Duration::from_micros(200)).await;
    }
}

/// Runs `test` on core 0 of a runtime of `cores` cores with no connection loop, while
/// every core answers its mesh and fires its timers ([`pump`]): the execution layer and
/// what is built on it, tested without sockets. `setup` runs first on every core; core 0
/// starts `test` with what its `setup` made once every other core's `setup` has run.
///
/// A panic in `test` is caught and returned as `Err` with its message once the runtime has
/// stopped, so the other cores are never left waiting for a core that died. `Ok` without
/// running anything when this machine has fewer CPUs than `cores`.
pub fn run_test<X, S, T, Fut>(cores: usize, setup: S, test: T) -> Result<(), String>
where
    X: 'static,
    S: Fn(&Rc<Core>) -> X + Send + Clone + 'static,
    T: Fn(X) -> Fut + Send + Clone + 'static,
    Fut: Future<Output = ()> + 'static,
{
    use futures_lite::FutureExt;
    use std::panic::AssertUnwindSafe;
    use std::sync::atomic::Ordering;
    use std::sync::Mutex;

    if online_cpus().len() < cores {
        eprintln!("skipped: needs {cores} CPUs");
        return Ok(());
    }
    let failure = Arc::new(Mutex::new(None::<String>));
    let report = failure.clone();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let ready = Arc::new(AtomicUsize::new(0));
    run(cores, move |core| {
        let (setup, test) = (setup.clone(), test.clone());
        let (failure, done, ready) = (failure.clone(), done.clone(), ready.clone());
        async move {
            let made = setup(&core);
            let stop = {
                let done = done.clone();
                move || done.load(Ordering::Acquire)
            };
            let pump = glommio::spawn_local(pump(core.clone(), stop));
            if core.id != 0 {
                ready.fetch_add(1, Ordering::Release);
                return pump.await;
            }
            while ready.load(Ordering::Acquire) + 1 < core.cores {
                glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
            }
            let outcome = AssertUnwindSafe(test(made)).catch_unwind().await;
            done.store(true, Ordering::Release);
            pump.await;
            if let Err(panic) = outcome {
                let text = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "the test panicked".into());
                *failure.lock().unwrap_or_else(|p| p.into_inner()) = Some(text);
            }
        }
    })
    .map_err(|e| e.to_string())?;
    let failed = report.lock().unwrap_or_else(|p| p.into_inner()).take();
    failed.map_or(Ok(()), Err)
}

/// glommio's preemption timer, set far beyond any turn so that it never fires while a
/// core's event loop runs.
///
/// glommio 0.9 arms this timer each time it polls its rings, and its run loop parks
/// without checking its run queue when the timer has fired before it looks at the
/// queue: a task that yielded (the event loop, which yields to let woken tasks run and is
/// then queued again) is left queued while glommio sleeps in a ring that nothing will
/// ever complete, and the core stops for good. With the default 100 ms it takes a thread
/// descheduled for 100 ms between two of glommio's steps, which heavy parallel test runs
/// on two CPUs produced; with a 1 us timer every core hangs before its first request.
/// The loop yields on its own terms ([`wake`]), runs no other task queue, and uses no
/// glommio I/O or timers while it runs, so nothing needs glommio to preempt it.
const PREEMPT_TIMER: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// Starts `cores` executors, each pinned to one online CPU (falling back to an unpinned
/// executor when pinning fails), hands each its [`Core`] and runs `serve` to completion on
/// every core. Returns when every core's `serve` has returned.
pub fn run<F, Fut>(cores: usize, serve: F) -> Result<(), RuntimeError>
where
    F: Fn(Rc<Core>) -> Fut + Send + Clone + 'static,
    Fut: Future<Output = ()> + 'static,
{
    // Measure the command clock's rate now, not on some core's first slow command.
    crate::clock::calibrate();
    let cpus = online_cpus();
    let mesh = Arc::new(Mesh::new(cores).map_err(RuntimeError::Mesh)?);
    let finished = Arc::new(AtomicUsize::new(0));
    let mut handles = Vec::with_capacity(cores);
    for id in 0..cores {
        let start = {
            let (mesh, serve, finished) = (mesh.clone(), serve.clone(), finished.clone());
            move || async move {
                let core = Core::new(id, cores, mesh, finished);
                core.clone().start_active_expiry();
                serve(core.clone()).await;
                core.finish().await;
            }
        };
        let name = format!("baton-core-{id}");
        let pinned = cpus.get(id).map(|&cpu| {
            LocalExecutorBuilder::new(Placement::Fixed(cpu))
                .name(&name)
                .preempt_timer(PREEMPT_TIMER)
                .spawn(start.clone())
        });
        let handle = match pinned {
            Some(Ok(h)) => h,
            other => {
                if let Some(Err(e)) = other {
                    tracing::warn!(core = id, error = %e, "pinning failed; running unpinned");
                }
                LocalExecutorBuilder::new(Placement::Unbound)
                    .name(&name)
                    .preempt_timer(PREEMPT_TIMER)
                    .spawn(start)
                    .map_err(|e| RuntimeError::Spawn {
                        core: id,
                        reason: e.to_string(),
                    })?
            }
        };
        handles.push(handle);
    }
    let mut result = Ok(());
    for (core, h) in handles.into_iter().enumerate() {
        if h.join().is_err() && result.is_ok() {
            result = Err(RuntimeError::Panicked { core });
        }
    }
    result
}
