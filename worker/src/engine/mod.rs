//! `Engine`: owns the session's `JsRuntime`, its global environment and its heap limit, and runs
//! one execution at a time to its outcome (spec §7.1 steps 3–6 on the worker's side).

mod modules;
mod ops;
mod script;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;

use deno_core::{JsRuntime, PollEventLoopOptions, RuntimeOptions, v8};
use protocol::{
    Budget, EventType, ExecId, ExecKind, ExecLimits, ExecOutcome, FromWorker, SessionConfig,
    StopCause,
};

use crate::control::{Cause, Control};
use crate::error::EngineError;
use crate::transport::Outbox;
use crate::watchdog::{Measured, Watchdog};
use modules::Modules;
use ops::Sink;
use script::{Arg, Completion};

/// The engine this build provides (spec §10.2: reported in the handshake).
pub(crate) const ENGINE: &str = if cfg!(feature = "v8") {
    "v8"
} else {
    "quickjs"
};
/// Version string reported in the handshake.
pub(crate) const ENGINE_VERSION: &str = "deno_core 0.413";

const MIB: usize = 1024 * 1024;
/// Room the engine gets after a memory stop so the failed evaluation can unwind.
const MEMORY_STOP_HEADROOM: usize = 4 * MIB;
/// Whether the heap limit is watched through a near-heap-limit callback. On V8 the callback is
/// the only way to survive the limit. On QuickJS a registered callback makes the backend measure
/// the whole heap (`JS_ComputeMemoryUsage`, ~0.2 ms) after every script run, about 40 % of a
/// trivial execution; without one, the backend itself terminates the running code when an
/// allocation crosses the limit (and lends it headroom to unwind), and the engine recognises that
/// termination, which nobody asked for, as the memory stop (`claim_memory_stop`).
const HEAP_CALLBACK: bool = cfg!(feature = "v8");

/// Whether the backend's Temporal leftovers are deleted as soon as the context exists
/// (`scrub_backend_globals`). Only the QuickJS backend installs them.
const SCRUB_BACKEND_GLOBALS: bool = cfg!(not(feature = "v8"));
/// Deletes what the QuickJS backend's Temporal polyfill leaves reachable once `Temporal` itself is
/// gone: `Date.prototype.toTemporalInstant`, the `Intl` stub (whose `DateTimeFormat` and
/// `DurationFormat` methods the polyfill replaced) and its two `Symbol.for` slot registries on the
/// global object. None of them is an ECMA-262 built-in (spec §7.3). Sloppy-mode deletes of
/// existing properties, so it cannot throw.
const SCRUB_JS: &str = "delete globalThis.Temporal;\n\
    delete globalThis.Intl;\n\
    delete Date.prototype.toTemporalInstant;\n\
    delete globalThis[Symbol.for('@@Temporal__GetSlots')];\n\
    delete globalThis[Symbol.for('@@Temporal__CreateSlots')];\n";

const INSPECT_JS: &str = include_str!("../../js/inspect.js");
const BOOTSTRAP_JS: &str = include_str!("../../js/bootstrap.js");
const MODULES_JS: &str = include_str!("../../js/modules.js");
/// Body of the function that installs the `Math.random` replacement of a forked copy
/// (`Booted::reseed`); called with the seed words as one string, `"a,b,c,d"`.
const RESEED_JS: &str = include_str!("../../js/reseed.js");

/// The functions of the host API that `bootstrap.js` returns.
struct Host {
    configure: v8::Global<v8::Function>,
    mute: v8::Global<v8::Function>,
    begin_run_file: v8::Global<v8::Function>,
    end_run_file: v8::Global<v8::Function>,
    track: v8::Global<v8::Function>,
    settle: v8::Global<v8::Function>,
    preview_value: v8::Global<v8::Function>,
    exception_payload: v8::Global<v8::Function>,
    take_uncaught: v8::Global<v8::Function>,
    clear_timers: v8::Global<v8::Function>,
}

/// What one execution came to.
#[derive(Debug)]
pub(crate) struct Report {
    pub(crate) outcome: ExecOutcome,
    pub(crate) measured: Measured,
    /// The terminal event, to be sent right before the `Done`.
    pub(crate) terminal: Option<FromWorker>,
    /// Set when the worker cannot go on (the heap did not recover): the reason to report.
    pub(crate) fatal: Option<String>,
}

/// One execution to run.
#[derive(Debug)]
pub(crate) struct Job {
    pub(crate) id: ExecId,
    pub(crate) kind: ExecKind,
    pub(crate) name: String,
    pub(crate) source: String,
    pub(crate) limits: ExecLimits,
    pub(crate) budget: Budget,
}

pub(crate) struct Engine {
    runtime: JsRuntime,
    host: Host,
    control: Arc<Control>,
    watchdog: Watchdog,
    memory_hit: Rc<Cell<bool>>,
    heap_limit: usize,
    mem_mb: u32,
    strict: bool,
    pending: Pending,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

/// The `vm_host` extension's global-object middleware: runs right after the context is created,
/// before deno_core's own JavaScript. The QuickJS backend evaluates a Temporal polyfill into every
/// new context (~1.3 MB of engine heap). The bootstrap deletes `Temporal`, but by then deno_core's
/// primordials have copied `Date.prototype`, and its `toTemporalInstant` keeps the whole polyfill
/// alive. Deleting the leftovers here and collecting at once frees it before anything else is
/// allocated on top of it. (The backend also keeps the polyfill's compiled bytecode, ~1.4 MB, for
/// the life of the process; nothing outside the backend can free that.)
fn scrub_backend_globals<'s, 'i>(
    scope: &mut v8::PinScope<'s, 'i>,
    _global: v8::Local<'s, v8::Object>,
) {
    if !SCRUB_BACKEND_GLOBALS {
        return;
    }
    {
        v8::tc_scope!(let tc, scope);
        let Some(source) = v8::String::new(tc, SCRUB_JS) else {
            return;
        };
        if let Some(script) = v8::Script::compile(tc, source, None) {
            let _ = script.run(tc);
        }
    }
    scope.low_memory_notification();
}

/// Stands in for the callback when only the limit is set (the backend ignores it).
unsafe extern "C" fn no_heap_callback(
    _data: *mut std::ffi::c_void,
    current_heap_limit: usize,
    _initial_heap_limit: usize,
) -> usize {
    current_heap_limit
}

fn heap_callback(
    control: Arc<Control>,
    hit: Rc<Cell<bool>>,
) -> impl FnMut(usize, usize) -> usize + 'static {
    move |current, _initial| {
        hit.set(true);
        control.stop_current(Cause::Stop(StopCause::Memory));
        current.saturating_add(MEMORY_STOP_HEADROOM)
    }
}

/// A runtime booted with its global environment, not yet wired to a frame pipe or a watchdog:
/// what the fork server keeps and copies (`Booted::attach` makes it an `Engine`).
pub(crate) struct Booted {
    runtime: JsRuntime,
    host: Host,
    /// Installs a freshly seeded `Math.random` (compiled here, called in each forked copy).
    reseed: v8::Global<v8::Function>,
    control: Arc<Control>,
    memory_hit: Rc<Cell<bool>>,
}

impl std::fmt::Debug for Booted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Booted").finish_non_exhaustive()
    }
}

impl Booted {
    /// Creates the runtime and its global environment. Starts no thread and needs no async
    /// runtime, so a single-threaded fork server can boot once and fork copies.
    pub(crate) fn new(control: Arc<Control>) -> Result<Self, EngineError> {
        let mut runtime = JsRuntime::try_new(RuntimeOptions {
            extensions: vec![ops::vm_host::init()],
            ..Default::default()
        })
        .map_err(|err| EngineError::Create(err.to_string()))?;
        control.set_isolate(runtime.v8_isolate().thread_safe_handle());
        runtime
            .op_state()
            .borrow_mut()
            .put(Modules::new(Arc::clone(&control)));

        let inspect = INSPECT_JS.trim_end().trim_end_matches(';');
        let modules = MODULES_JS.trim_end().trim_end_matches(';');
        let source = format!(
            "(function (makeInspect, makeModules) {{\n{BOOTSTRAP_JS}\n}})({inspect}\n, {modules}\n)"
        );
        let api = match script::run(&mut runtime, "vm-system:bootstrap", &source) {
            Completion::Value(api) => api,
            Completion::Threw(error) => {
                return Err(EngineError::Bootstrap(script::to_string(
                    &mut runtime,
                    &error,
                )));
            }
            Completion::Terminated => return Err(EngineError::Bootstrap("terminated".into())),
        };
        let [
            configure,
            mute,
            begin_run_file,
            end_run_file,
            track,
            settle,
            preview_value,
            exception_payload,
            take_uncaught,
            clear_timers,
        ] = script::functions(
            &mut runtime,
            &api,
            [
                "configure",
                "mute",
                "beginRunFile",
                "endRunFile",
                "track",
                "settle",
                "previewValue",
                "exceptionPayload",
                "takeUncaught",
                "clearTimers",
            ],
        )
        .map_err(EngineError::Bootstrap)?;
        let reseed_source = format!("({{ reseed(seed) {{\n{RESEED_JS}\n}} }})");
        let reseed = match script::run(&mut runtime, "vm-system:reseed", &reseed_source) {
            Completion::Value(holder) => script::functions(&mut runtime, &holder, ["reseed"])
                .map_err(EngineError::Bootstrap)?,
            Completion::Threw(error) => {
                return Err(EngineError::Bootstrap(script::to_string(
                    &mut runtime,
                    &error,
                )));
            }
            Completion::Terminated => return Err(EngineError::Bootstrap("terminated".into())),
        };
        let [reseed] = reseed;
        let memory_hit = Rc::new(Cell::new(false));
        if HEAP_CALLBACK {
            runtime.add_near_heap_limit_callback(heap_callback(
                Arc::clone(&control),
                Rc::clone(&memory_hit),
            ));
        }
        Ok(Booted {
            runtime,
            reseed,
            host: Host {
                configure,
                mute,
                begin_run_file,
                end_run_file,
                track,
                settle,
                preview_value,
                exception_payload,
                take_uncaught,
                clear_timers,
            },
            control,
            memory_hit,
        })
    }

    /// Leaves the heap as a fork server should hold it before forking: compiles and runs one
    /// trivial script, then collects garbage. The first compile after boot frees what booting
    /// left for later (dropped bytecode, atoms); done once here, no forked copy pays it again, on
    /// pages it would first have to copy.
    pub(crate) fn settle(&mut self) {
        let _ = script::run(&mut self.runtime, "vm-system:settle", "void 0");
        self.runtime.v8_isolate().low_memory_notification();
    }

    /// Gives a forked copy its own `Math.random` sequence. A fork inherits the engine's generator
    /// state, so without this every session forked from one zygote would draw the same numbers.
    /// The replacement is xoshiro128** seeded from the OS (`getrandom`), with the built-in's
    /// name, length and property attributes.
    pub(crate) fn reseed(&mut self) -> Result<(), EngineError> {
        let mut seed = [0u32; 4];
        let mut filled = 0;
        let bytes = std::mem::size_of_val(&seed);
        while filled < bytes {
            // SAFETY: the pointer and length describe the unfilled tail of `seed`.
            let got = unsafe {
                libc::getrandom(
                    seed.as_mut_ptr().cast::<u8>().add(filled).cast(),
                    bytes - filled,
                    0,
                )
            };
            match usize::try_from(got) {
                Ok(got) => filled += got,
                Err(_) => {
                    let err = std::io::Error::last_os_error();
                    if err.kind() != std::io::ErrorKind::Interrupted {
                        return Err(EngineError::Create(format!("failed to seed: {err}")));
                    }
                }
            }
        }
        if seed == [0; 4] {
            seed[0] = 1;
        }
        let seed = format!("{},{},{},{}", seed[0], seed[1], seed[2], seed[3]);
        let reseed = self.reseed.clone();
        match script::call(&mut self.runtime, &reseed, &[Arg::Str(&seed)]) {
            Completion::Value(_) => Ok(()),
            Completion::Threw(error) => Err(EngineError::Bootstrap(script::to_string(
                &mut self.runtime,
                &error,
            ))),
            Completion::Terminated => Err(EngineError::Bootstrap("terminated".into())),
        }
    }

    /// Wires the runtime to its frame pipe and watchdog: the engine that serves the session.
    pub(crate) fn attach(self, watchdog: Watchdog, out: Outbox) -> Engine {
        self.runtime
            .op_state()
            .borrow_mut()
            .put(Sink::new(out, Arc::clone(&self.control)));
        Engine {
            runtime: self.runtime,
            host: self.host,
            control: self.control,
            watchdog,
            memory_hit: self.memory_hit,
            heap_limit: 0,
            mem_mb: 0,
            strict: false,
            pending: Pending::None,
        }
    }
}

impl Engine {
    /// Makes this runtime the session's: cwd, heap limit, console switch, granted variables,
    /// native modules and the capabilities they enforce.
    pub(crate) fn configure(&mut self, config: &SessionConfig) -> Result<(), EngineError> {
        std::env::set_current_dir(&config.worktree)
            .map_err(|err| EngineError::Configure(format!("cannot enter worktree: {err}")))?;
        self.with_modules(|modules| modules.configure(config))
            .map_err(|err| EngineError::Configure(format!("cannot open worktree: {err}")))?;
        let grants = serde_json::json!({
            "modules": config.modules,
            "fs_read": config.fs_read,
            "fs_write": config.fs_write,
        })
        .to_string();
        self.strict = config.strict;
        self.mem_mb = config.mem_mb;
        self.set_heap_limit(
            usize::try_from(config.mem_mb)
                .unwrap_or(usize::MAX)
                .saturating_mul(MIB),
        );
        let env = serde_json::to_string(&config.env)
            .map_err(|err| EngineError::Configure(err.to_string()))?;
        let configure = self.host.configure.clone();
        match script::call(
            &mut self.runtime,
            &configure,
            &[Arg::Bool(config.console), Arg::Str(&env), Arg::Str(&grants)],
        ) {
            Completion::Value(_) => Ok(()),
            Completion::Threw(error) => Err(EngineError::Configure(script::to_string(
                &mut self.runtime,
                &error,
            ))),
            Completion::Terminated => Err(EngineError::Configure("terminated".into())),
        }
    }

    fn set_heap_limit(&mut self, bytes: usize) {
        self.heap_limit = bytes;
        if !HEAP_CALLBACK {
            // No callback is registered: removing "one" only sets the limit.
            self.runtime
                .v8_isolate()
                .remove_near_heap_limit_callback(no_heap_callback, bytes);
            return;
        }
        // deno_core only forwards the new limit while a callback is installed, and installing one
        // arms it with the isolate's current limit: remove (setting the limit), then add again.
        self.runtime.remove_near_heap_limit_callback(bytes);
        self.runtime.add_near_heap_limit_callback(heap_callback(
            Arc::clone(&self.control),
            Rc::clone(&self.memory_hit),
        ));
    }

    /// Without a heap callback, a termination that no stop cause asked for is the backend's answer
    /// to an allocation over the limit: take it as the memory stop.
    fn claim_memory_stop(&mut self) {
        if HEAP_CALLBACK
            || self.control.cause().is_some()
            || !self.runtime.v8_isolate().is_execution_terminating()
        {
            return;
        }
        self.memory_hit.set(true);
        self.control.stop_current(Cause::Stop(StopCause::Memory));
    }

    fn with_sink<R>(&mut self, f: impl FnOnce(&mut Sink) -> R) -> R {
        let state = self.runtime.op_state();
        let mut state = state.borrow_mut();
        f(state.borrow_mut::<Sink>())
    }

    fn with_modules<R>(&mut self, f: impl FnOnce(&mut Modules) -> R) -> R {
        let state = self.runtime.op_state();
        let mut state = state.borrow_mut();
        f(state.borrow_mut::<Modules>())
    }

    fn call(&mut self, function: &v8::Global<v8::Function>, args: &[Arg<'_>]) -> Completion {
        let completion = script::call(&mut self.runtime, function, args);
        if matches!(completion, Completion::Terminated) {
            self.claim_memory_stop();
        }
        completion
    }

    /// Runs one execution to its outcome. Every event is sent before this returns.
    pub(crate) async fn exec(&mut self, job: Job) -> Report {
        let Job {
            id,
            kind,
            name,
            source,
            limits,
            budget,
        } = job;
        self.control.begin(id);
        self.with_sink(|sink| sink.begin(id, budget));
        self.with_modules(|modules| modules.begin(limits.wall_ms, budget.max_output_kb));
        self.watchdog.arm(id, limits.wall_ms, limits.cpu_ms);
        let library = matches!(kind, ExecKind::Library);
        let run_file = matches!(kind, ExecKind::RunFile { .. });
        if library {
            let mute = self.host.mute.clone();
            self.call(&mute, &[Arg::Bool(true)]);
        }

        let mut outcome = self.run_phase(&kind, &name, &source, library).await;
        if outcome.is_none() {
            outcome = Some(self.render_phase(library));
        }
        let outcome = outcome.unwrap_or(ExecOutcome::Exception);

        // Cleanup runs no user code; nothing may stop it any more.
        self.with_sink(Sink::close);
        self.control.end();
        if self.runtime.v8_isolate().is_execution_terminating() {
            self.runtime.v8_isolate().cancel_terminate_execution();
        }
        let (end_run_file, clear_timers, mute) = (
            self.host.end_run_file.clone(),
            self.host.clear_timers.clone(),
            self.host.mute.clone(),
        );
        if run_file {
            self.call(&end_run_file, &[]);
        }
        self.call(&clear_timers, &[]);
        if library {
            self.call(&mute, &[Arg::Bool(false)]);
        }
        let measured = self.watchdog.disarm();
        let fatal = self.recover_memory();
        Report {
            outcome,
            measured,
            terminal: self.with_sink(Sink::take_terminal),
            fatal,
        }
    }

    /// Evaluates the code and runs the event loop to idle. Returns the outcome if the execution
    /// already ended (stopped), or `None` to go on to rendering; the completion value or the
    /// exception is left in `self.pending`.
    async fn run_phase(
        &mut self,
        kind: &ExecKind,
        name: &str,
        source: &str,
        library: bool,
    ) -> Option<ExecOutcome> {
        if let ExecKind::RunFile { args_json, env } = kind {
            let env = serde_json::to_string(env).unwrap_or_else(|_| "[]".into());
            let begin = self.host.begin_run_file.clone();
            if let Completion::Threw(error) =
                self.call(&begin, &[Arg::Str(args_json), Arg::Str(&env)])
            {
                self.pending = Pending::Threw(error);
                return None;
            }
        }
        let strict = self.strict && !library;
        let code = if strict {
            strict_source(source)
        } else {
            source.to_string()
        };
        let completion = {
            let _strict = strict.then(ForcedStrict::on);
            script::run(&mut self.runtime, name, &code)
        };
        self.pending = match completion {
            Completion::Value(value) => {
                let track = self.host.track.clone();
                self.call(&track, &[Arg::Val(&value)]);
                Pending::Value(value)
            }
            Completion::Threw(error) => Pending::Threw(error),
            Completion::Terminated => {
                self.claim_memory_stop();
                Pending::None
            }
        };
        if matches!(self.pending, Pending::Value(_)) && self.control.cause().is_none() {
            let looped = self.run_event_loop().await;
            self.claim_memory_stop();
            if let Err(err) = looped
                && self.control.cause().is_none()
            {
                self.pending = Pending::Message(err);
            }
        }
        match self.control.reopen() {
            Some(Cause::Stop(cause)) => {
                self.drain();
                Some(ExecOutcome::Stopped { cause })
            }
            Some(Cause::Uncaught) => {
                self.drain();
                self.with_sink(Sink::reopen);
                let take = self.host.take_uncaught.clone();
                if let Completion::Value(pair) = self.call(&take, &[])
                    && let Some(error) = script::index(&mut self.runtime, &pair, 1)
                {
                    self.pending = Pending::Threw(error);
                }
                None
            }
            None => None,
        }
    }

    /// Drives timers and promise jobs until none are left or a stop cause is taken.
    async fn run_event_loop(&mut self) -> Result<(), String> {
        let notify = self.control.notify();
        loop {
            tokio::select! {
                biased;
                result = self.runtime.run_event_loop(PollEventLoopOptions::default()) => {
                    return result.map_err(|err| err.to_string());
                }
                () = notify.notified() => {
                    if self.control.cause().is_some() {
                        return Ok(());
                    }
                }
            }
        }
    }

    /// After a stop: run the promise jobs still queued with termination in force, dropping their
    /// output, then make the runtime usable again.
    fn drain(&mut self) {
        self.with_sink(Sink::close);
        let isolate = self.runtime.v8_isolate();
        if !isolate.is_execution_terminating() {
            isolate.terminate_execution();
        }
        isolate.perform_microtask_checkpoint();
        isolate.cancel_terminate_execution();
    }

    /// Turns the pending completion into the terminal event.
    fn render_phase(&mut self, library: bool) -> ExecOutcome {
        let pending = std::mem::replace(&mut self.pending, Pending::None);
        let result = match pending {
            Pending::None => return ExecOutcome::Exception,
            Pending::Message(message) => {
                let payload = serde_json::json!({"name": null, "message": message, "stack": null})
                    .to_string();
                return self.finish_event(EventType::Exception, payload, ExecOutcome::Exception);
            }
            Pending::Threw(error) => self.render_exception(&error),
            Pending::Value(value) => {
                let settle = self.host.settle.clone();
                match self.call(&settle, &[Arg::Val(&value)]) {
                    Completion::Value(pair) => {
                        let state = script::index(&mut self.runtime, &pair, 0)
                            .map(|s| script::to_i64(&mut self.runtime, &s))
                            .unwrap_or(1);
                        let settled = script::index(&mut self.runtime, &pair, 1).unwrap_or(value);
                        if state == 2 {
                            self.render_exception(&settled)
                        } else if library {
                            Rendered::Done(ExecOutcome::Ok)
                        } else {
                            self.render_value(&settled)
                        }
                    }
                    Completion::Threw(error) => self.render_exception(&error),
                    Completion::Terminated => Rendered::Stopped,
                }
            }
        };
        match result {
            Rendered::Done(outcome) => outcome,
            Rendered::Event(event_type, payload, outcome) => {
                self.finish_event(event_type, payload, outcome)
            }
            Rendered::Stopped => self.stopped_while_rendering(),
        }
    }

    fn render_value(&mut self, value: &v8::Global<v8::Value>) -> Rendered {
        let preview = self.host.preview_value.clone();
        match self.call(&preview, &[Arg::Val(value)]) {
            Completion::Value(payload) => {
                let payload = script::to_string(&mut self.runtime, &payload);
                Rendered::Event(EventType::Value, payload, ExecOutcome::Ok)
            }
            Completion::Threw(error) => self.render_exception(&error),
            Completion::Terminated => Rendered::Stopped,
        }
    }

    fn render_exception(&mut self, error: &v8::Global<v8::Value>) -> Rendered {
        let render = self.host.exception_payload.clone();
        match self.call(&render, &[Arg::Val(error)]) {
            Completion::Value(payload) => {
                let payload = script::to_string(&mut self.runtime, &payload);
                Rendered::Event(EventType::Exception, payload, ExecOutcome::Exception)
            }
            Completion::Threw(_) => {
                let payload = serde_json::json!({"name": null, "message": "exception could not be rendered", "stack": null}).to_string();
                Rendered::Event(EventType::Exception, payload, ExecOutcome::Exception)
            }
            Completion::Terminated => Rendered::Stopped,
        }
    }

    fn finish_event(
        &mut self,
        event_type: EventType,
        payload: String,
        outcome: ExecOutcome,
    ) -> ExecOutcome {
        if self.with_sink(|sink| sink.emit_terminal(event_type, payload)) {
            return outcome;
        }
        // The terminal event did not fit: the sink took the output-limit cause.
        self.stopped_while_rendering()
    }

    fn stopped_while_rendering(&mut self) -> ExecOutcome {
        let cause = self.control.reopen();
        self.drain();
        match cause {
            Some(Cause::Stop(cause)) => ExecOutcome::Stopped { cause },
            // Rendering cannot report an uncaught error of its own; treat it as the exception.
            Some(Cause::Uncaught) | None => ExecOutcome::Exception,
        }
    }

    /// After a memory stop: collect garbage and re-arm the limit. Returns the fatal reason when
    /// the heap in use is still above 90 % of the limit.
    fn recover_memory(&mut self) -> Option<String> {
        if !self.memory_hit.replace(false) {
            return None;
        }
        self.runtime.v8_isolate().low_memory_notification();
        let limit = self.heap_limit;
        self.set_heap_limit(limit);
        // The heap in use as the limit counts it. On QuickJS the limit applies to the bytes
        // allocated (`malloced_memory`), while `used_heap_size` is the engine's estimate of what
        // its objects need, which can stay well under the limit when allocation already fails
        // (an array of 300,000 small objects: every later execution stopped at once). On V8 the
        // limit applies to `used_heap_size`, and `malloced_memory` is only what V8 allocated
        // outside its heap; the larger of the two serves both.
        let stats = self.runtime.v8_isolate().get_heap_statistics();
        let used = stats.used_heap_size().max(stats.malloced_memory());
        if used.saturating_mul(10) > limit.saturating_mul(9) {
            return Some(format!("memory limit exceeded (mem_mb={})", self.mem_mb));
        }
        None
    }
}

/// What evaluation left to render.
enum Pending {
    None,
    Value(v8::Global<v8::Value>),
    Threw(v8::Global<v8::Value>),
    /// An engine error with no JavaScript value (reported as the exception message).
    Message(String),
}

enum Rendered {
    Done(ExecOutcome),
    Event(EventType, String, ExecOutcome),
    Stopped,
}

/// What `runtime.strict` puts before the first line (after a leading `#!` line): the 13
/// columns of `'use strict';` (spec §5). On QuickJS they are spaces and the engine compiles the
/// script in strict mode itself ([`ForcedStrict`]), so the prefix leaves no completion value of
/// its own (`var x = 1` gives `undefined`, as without strict mode). V8 freezes its flags once it
/// is initialised, so there the prefix is the directive itself.
const STRICT_PREFIX: &str = if cfg!(feature = "v8") {
    "'use strict';"
} else {
    "             "
};

/// QuickJS: global scripts compiled while this lives are strict-mode code (v8x's `--use_strict`
/// flag, the engine's `JS_EVAL_FLAG_STRICT`); dropping it turns that off. Nothing on V8.
struct ForcedStrict;

impl ForcedStrict {
    fn on() -> ForcedStrict {
        if !cfg!(feature = "v8") {
            v8::V8::set_flags_from_string("--use_strict");
        }
        ForcedStrict
    }
}

impl Drop for ForcedStrict {
    fn drop(&mut self) {
        if !cfg!(feature = "v8") {
            v8::V8::set_flags_from_string("--no_use_strict");
        }
    }
}

/// `runtime.strict`: [`STRICT_PREFIX`] before the first line, after a leading `#!` line.
pub(crate) fn strict_source(source: &str) -> String {
    if source.starts_with("#!") {
        match source.find('\n') {
            Some(end) => format!("{}{STRICT_PREFIX}{}", &source[..=end], &source[end + 1..]),
            None => format!("{source}\n{STRICT_PREFIX}"),
        }
    } else {
        format!("{STRICT_PREFIX}{source}")
    }
}

#[cfg(test)]
mod tests {
    use super::{STRICT_PREFIX, strict_source};

    #[test]
    fn strict_prefix_goes_after_a_hashbang_line() {
        let check = |input: &str, expected: &str| {
            assert_eq!(strict_source(input), expected.replace('P', STRICT_PREFIX));
        };
        assert_eq!(STRICT_PREFIX.chars().count(), "'use strict';".len());
        check("x = 1", "Px = 1");
        check("#!/usr/bin/env node\nx", "#!/usr/bin/env node\nPx");
        check("#!only", "#!only\nP");
        check("", "P");
    }
}
