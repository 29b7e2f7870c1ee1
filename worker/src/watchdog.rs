//! The watchdog thread: enforces `wall_ms` and `cpu_ms` of the running execution and samples
//! the JavaScript thread's CPU clock for `Stats` frames.

use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::transport::Outbox;
use protocol::{ExecId, FromWorker, StopCause};

use crate::control::{Cause, Control};

/// How often the CPU clock is checked while an execution runs.
const TICK: Duration = Duration::from_millis(5);
/// How often a `Stats` frame is sent while an execution runs.
const STATS_EVERY: Duration = Duration::from_millis(500);
/// How long the thread keeps ticking after an execution before it sleeps until the next `arm`.
/// While it ticks, `arm` need not wake it: executions in quick succession cost no thread switch.
/// Short, because every tick costs the idle session CPU (a second of ticks was ~2 ms per
/// execution, ten times what starting one costs the worker).
const LINGER: Duration = Duration::from_millis(50);

/// CPU clock of one thread, readable from any thread.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ThreadClock(libc::clockid_t);

impl ThreadClock {
    /// The clock of the calling thread.
    pub(crate) fn current() -> std::io::Result<Self> {
        let mut clock: libc::clockid_t = 0;
        // SAFETY: pthread_self is always valid for the calling thread; `clock` is a valid out pointer.
        let rc = unsafe { libc::pthread_getcpuclockid(libc::pthread_self(), &mut clock) };
        if rc == 0 {
            Ok(ThreadClock(clock))
        } else {
            Err(std::io::Error::from_raw_os_error(rc))
        }
    }

    /// CPU time consumed so far.
    pub(crate) fn now(self) -> Duration {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid out pointer; an invalid clock only makes the call fail.
        let rc = unsafe { libc::clock_gettime(self.0, &mut ts) };
        if rc != 0 {
            return Duration::ZERO;
        }
        Duration::new(
            u64::try_from(ts.tv_sec).unwrap_or(0),
            u32::try_from(ts.tv_nsec).unwrap_or(0),
        )
    }
}

#[derive(Debug, Clone, Copy)]
struct Armed {
    id: ExecId,
    started: Instant,
    wall: Duration,
    cpu_limit: Duration,
    cpu_start: Duration,
    next_stats: Instant,
}

#[derive(Debug, Default)]
struct State {
    armed: Option<Armed>,
    /// When the last execution was disarmed.
    disarmed_at: Option<Instant>,
    /// The thread waits without a timeout: `arm` must wake it.
    asleep: bool,
}

/// Handle to the watchdog thread.
#[derive(Debug, Clone)]
pub(crate) struct Watchdog {
    shared: Arc<(Mutex<State>, Condvar)>,
    clock: ThreadClock,
}

/// What the watchdog measured for one execution.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Measured {
    pub(crate) wall: Duration,
    pub(crate) cpu: Duration,
}

impl Watchdog {
    /// Starts the thread. `clock` is the JavaScript thread's CPU clock.
    pub(crate) fn spawn(
        clock: ThreadClock,
        control: Arc<Control>,
        out: Outbox,
    ) -> std::io::Result<Self> {
        let shared = Arc::new((Mutex::new(State::default()), Condvar::new()));
        let thread_shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("watchdog".into())
            .spawn(move || run(&thread_shared, clock, &control, &out))?;
        Ok(Watchdog { shared, clock })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.shared
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts timing execution `id`.
    pub(crate) fn arm(&self, id: ExecId, wall_ms: u64, cpu_ms: u64) {
        let now = Instant::now();
        let asleep = {
            let mut state = self.lock();
            state.armed = Some(Armed {
                id,
                started: now,
                wall: Duration::from_millis(wall_ms),
                cpu_limit: Duration::from_millis(cpu_ms),
                cpu_start: self.clock.now(),
                next_stats: now + STATS_EVERY,
            });
            state.asleep
        };
        // A ticking thread sees the new execution within one TICK.
        if asleep {
            self.shared.1.notify_one();
        }
    }

    /// Stops timing and returns what the execution used.
    pub(crate) fn disarm(&self) -> Measured {
        let armed = {
            let mut state = self.lock();
            state.disarmed_at = Some(Instant::now());
            state.armed.take()
        };
        match armed {
            Some(a) => Measured {
                wall: a.started.elapsed(),
                cpu: self.clock.now().saturating_sub(a.cpu_start),
            },
            None => Measured {
                wall: Duration::ZERO,
                cpu: Duration::ZERO,
            },
        }
    }
}

fn run(shared: &(Mutex<State>, Condvar), clock: ThreadClock, control: &Control, out: &Outbox) {
    let (lock, cvar) = shared;
    let mut state = lock
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    loop {
        let Some(armed) = state.armed else {
            let lingering = state.disarmed_at.is_some_and(|at| at.elapsed() < LINGER);
            if lingering {
                state = cvar
                    .wait_timeout(state, TICK)
                    .map(|(guard, _)| guard)
                    .unwrap_or_else(|poisoned| poisoned.into_inner().0);
            } else {
                state.asleep = true;
                state = cvar
                    .wait(state)
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                state.asleep = false;
            }
            continue;
        };
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(armed.started);
        let cpu = clock.now().saturating_sub(armed.cpu_start);
        if elapsed >= armed.wall {
            control.stop(armed.id, Cause::Stop(StopCause::WallTime));
        } else if cpu >= armed.cpu_limit {
            control.stop(armed.id, Cause::Stop(StopCause::CpuTime));
        }
        if now >= armed.next_stats {
            if let Some(a) = state.armed.as_mut() {
                a.next_stats = now + STATS_EVERY;
            }
            let cpu_ms = u64::try_from(cpu.as_millis()).unwrap_or(u64::MAX);
            out.send(FromWorker::Stats {
                id: armed.id,
                cpu_ms,
            });
        }
        let until_wall = armed.wall.saturating_sub(elapsed);
        let wait = if until_wall.is_zero() {
            TICK
        } else {
            TICK.min(until_wall)
        };
        state = cvar
            .wait_timeout(state, wait)
            .map(|(guard, _)| guard)
            .unwrap_or_else(|poisoned| poisoned.into_inner().0);
    }
}
