// Builds the session's global environment (spec §7.3) and returns the host API the Rust engine
// drives. Evaluated once per runtime, before any library or user code, as the body of a function
// that receives `makeInspect` (worker/js/inspect.js) and `makeModules` (worker/js/modules.js).
// Everything it needs from `Deno.core` is captured here, then every runtime-internal global is
// deleted.
"use strict";

const global = globalThis;
const core = global.Deno.core;
const ops = core.ops;
const { op_vm_console, op_vm_uncaught } = ops;

const {
  Array: { isArray: ArrayIsArray },
  Error,
  JSON: { parse: JSONParse },
  Map,
  Number,
  Object: {
    create: ObjectCreate,
    defineProperty: ObjectDefineProperty,
    freeze: ObjectFreeze,
    getOwnPropertyDescriptor: ObjectGetOwnPropertyDescriptor,
    getOwnPropertyNames: ObjectGetOwnPropertyNames,
    isFrozen: ObjectIsFrozen,
    keys: ObjectKeys,
  },
  Promise,
  String,
  TypeError,
} = global;
const ReflectApply = Reflect.apply;
const MapPrototypeGet = Map.prototype.get;
const MapPrototypeSet = Map.prototype.set;
const MapPrototypeDelete = Map.prototype.delete;
const MapPrototypeForEach = Map.prototype.forEach;
const MapPrototypeClear = Map.prototype.clear;
const PromisePrototypeThen = Promise.prototype.then;
const StringPrototypeStartsWith = String.prototype.startsWith;
const StringPrototypeToWellFormed = String.prototype.toWellFormed;
const ArrayPrototypeForEach = Array.prototype.forEach;

// Exact brand checks through the built-in `size` getters (they throw for anything that is not a
// real Map/Set, proxies included, without running user code); deno_core's QuickJS `isMap` also
// answers true for `Map.prototype`.
const MapPrototypeGetSize = Object.getOwnPropertyDescriptor(Map.prototype, "size").get;
const SetPrototypeGetSize = Object.getOwnPropertyDescriptor(Set.prototype, "size").get;
function hasBrand(getter, value) {
  if (value === null || (typeof value !== "object" && typeof value !== "function")) return false;
  try {
    ReflectApply(getter, value, []);
    return true;
  } catch {
    return false;
  }
}

const inspectApi = makeInspect({
  getPromiseDetails: core.getPromiseDetails,
  getProxyDetails: core.getProxyDetails,
  isProxy: core.isProxy,
  isDate: core.isDate,
  isRegExp: core.isRegExp,
  isMap: (value) => hasBrand(MapPrototypeGetSize, value),
  isSet: (value) => hasBrand(SetPrototypeGetSize, value),
  isWeakMap: core.isWeakMap,
  isWeakSet: core.isWeakSet,
  isPromise: core.isPromise,
  isTypedArray: core.isTypedArray,
  isArrayBuffer: core.isArrayBuffer,
  isDataView: core.isDataView,
  isAsyncFunction: core.isAsyncFunction,
  isGeneratorFunction: core.isGeneratorFunction,
  isGeneratorObject: core.isGeneratorObject,
  isBoxedPrimitive: core.isBoxedPrimitive,
  isNumberObject: core.isNumberObject,
  isStringObject: core.isStringObject,
  isBooleanObject: core.isBooleanObject,
  isBigIntObject: core.isBigIntObject,
  isSymbolObject: core.isSymbolObject,
  isNativeError: core.isNativeError,
  isArgumentsObject: core.isArgumentsObject,
  isMapIterator: core.isMapIterator,
  isSetIterator: core.isSetIterator,
});
const { inspect, formatWithOptions, previewValue, exceptionPayload } = inspectApi;
const createModules = makeModules(ops);
const getPromiseDetails = core.getPromiseDetails;
const isPromise = core.isPromise;
const createTimer = core.createTimer;
const cancelTimer = core.cancelTimer;
const nativeQueueMicrotask = global.queueMicrotask;

// ---- uncaught errors -------------------------------------------------------------------------
// An exception thrown by a timer or microtask callback, or a rejection nobody handles, ends the
// execution at once as EXCEPTION (spec §7.2, §7.3).
let uncaught = null;

function reportUncaught(error) {
  if (uncaught !== null) return;
  uncaught = { error };
  clearTimers();
  op_vm_uncaught();
}

core.setUnhandledPromiseRejectionHandler((_promise, reason) => {
  reportUncaught(reason);
  return true;
});
core.setReportExceptionCallback(reportUncaught);

// ---- timers ----------------------------------------------------------------------------------
const timers = new Map();
let nextTimerId = 1;

function timerDelay(delay) {
  let ms = Number(delay);
  if (!(ms >= 0)) ms = 0;
  if (ms > 2147483647) ms = 1;
  return ms;
}

function checkCallback(callback) {
  if (typeof callback !== "function") {
    throw new TypeError('The "callback" argument must be of type function');
  }
}

function schedule(callback, delay, args, repeat) {
  checkCallback(callback);
  const ms = timerDelay(delay);
  const id = nextTimerId++;
  const fire = () => {
    if (!repeat) ReflectApply(MapPrototypeDelete, timers, [id]);
    try {
      ReflectApply(callback, global, args);
    } catch (error) {
      reportUncaught(error);
    }
  };
  const timer = createTimer(fire, ms, undefined, repeat, true);
  ReflectApply(MapPrototypeSet, timers, [id, timer]);
  return id;
}

function clearTimer(id) {
  const timer = ReflectApply(MapPrototypeGet, timers, [id]);
  if (timer !== undefined) {
    cancelTimer(timer);
    ReflectApply(MapPrototypeDelete, timers, [id]);
  }
}

function clearTimers() {
  ReflectApply(MapPrototypeForEach, timers, [(timer) => cancelTimer(timer)]);
  ReflectApply(MapPrototypeClear, timers, []);
}

function setTimeout(callback, delay, ...args) {
  return schedule(callback, delay, args, false);
}
function setInterval(callback, delay, ...args) {
  return schedule(callback, delay, args, true);
}
function clearTimeout(id) {
  clearTimer(id);
}
function clearInterval(id) {
  clearTimer(id);
}
function queueMicrotask(callback) {
  checkCallback(callback);
  nativeQueueMicrotask(() => {
    try {
      ReflectApply(callback, global, []);
    } catch (error) {
      reportUncaught(error);
    }
  });
}

// ---- console ---------------------------------------------------------------------------------
const LOG = 0, INFO = 1, WARN = 2, ERROR = 3, DEBUG = 4;
let consoleEnabled = true;
let consoleMuted = false;

// Console text leaves the engine well-formed: a lone surrogate becomes one U+FFFD (spec §7.6); the
// op's UTF-8 conversion would make three of it.
function send(level, text) {
  op_vm_console(level, ReflectApply(StringPrototypeToWellFormed, text, []));
}
function emit(level, text) {
  if (consoleEnabled && !consoleMuted) send(level, text);
}
function logger(level) {
  return function (...args) {
    if (consoleEnabled && !consoleMuted) send(level, formatWithOptions(args));
  };
}
function noop() {}
const console = {
  log: logger(LOG),
  info: logger(INFO),
  warn: logger(WARN),
  error: logger(ERROR),
  debug: logger(DEBUG),
  dir(value) {
    if (consoleEnabled && !consoleMuted) emit(LOG, inspect(value));
  },
  table(value) {
    if (consoleEnabled && !consoleMuted) emit(LOG, inspect(value));
  },
  assert(condition, ...args) {
    if (condition || !consoleEnabled || consoleMuted) return;
    emit(ERROR, args.length === 0 ? "Assertion failed" : "Assertion failed: " + formatWithOptions(args));
  },
  count: noop,
  countReset: noop,
  group: noop,
  groupCollapsed: noop,
  groupEnd: noop,
  time: noop,
  timeEnd: noop,
  timeLog: noop,
  trace: noop,
};

// ---- require and process ---------------------------------------------------------------------
const modules = new Map();
function require(name) {
  const module = ReflectApply(MapPrototypeGet, modules, [name]);
  if (module !== undefined) return module;
  throw new Error(`Invalid module "${name}": not enabled for this template`);
}

let grantedEnv = ObjectFreeze(ObjectCreate(null));
// An own data property even for the name `__proto__`, which assignment would treat as the
// prototype setter (and drop).
function setEntry(object, name, value) {
  ObjectDefineProperty(object, name, { value, writable: true, enumerable: true, configurable: true });
}
function makeProcess(env) {
  const plain = {};
  const names = ObjectKeys(env);
  for (let i = 0; i < names.length; i++) setEntry(plain, names[i], env[names[i]]);
  return ObjectFreeze({ env: ObjectFreeze(plain) });
}

function defineGlobal(name, value) {
  ObjectDefineProperty(global, name, { value, writable: true, configurable: true, enumerable: false });
}

// ---- the global object -----------------------------------------------------------------------
for (const name of ObjectGetOwnPropertyNames(global)) {
  if (
    name === "Deno" || name === "__bootstrap" || ReflectApply(StringPrototypeStartsWith, name, ["__v8x"]) ||
    name === "WebAssembly" || name === "Temporal" || name === "ShadowRealm" || name === "gc" ||
    name === "performance" || name === "atob" || name === "btoa" || name === "DOMException"
  ) {
    delete global[name];
  }
}
defineGlobal("console", console);
defineGlobal("setTimeout", setTimeout);
defineGlobal("setInterval", setInterval);
defineGlobal("clearTimeout", clearTimeout);
defineGlobal("clearInterval", clearInterval);
defineGlobal("queueMicrotask", queueMicrotask);
defineGlobal("require", require);
defineGlobal("process", makeProcess(grantedEnv));
ObjectDefineProperty(global.Atomics, "wait", {
  value: function wait() {
    throw new TypeError("Atomics.wait cannot be called: the session has no other agent");
  },
  writable: true,
  configurable: true,
  enumerable: false,
});

// ---- run-file globals ------------------------------------------------------------------------
function deepFreeze(value) {
  if (value !== null && typeof value === "object" && !ObjectIsFrozen(value)) {
    ObjectFreeze(value);
    const names = ObjectKeys(value);
    for (let i = 0; i < names.length; i++) deepFreeze(value[names[i]]);
  }
  return value;
}

let savedProcess = null;
let installedProcess = null;

// ---- the host API ------------------------------------------------------------------------------
return {
  // Applies a session's configuration (spec §8): console switch, granted variables, and the
  // native modules the template lists with the capability flags they check.
  configure(consoleOn, envJson, grantsJson) {
    consoleEnabled = consoleOn;
    ReflectApply(MapPrototypeClear, modules, []);
    const created = createModules(JSONParse(grantsJson));
    for (let i = 0; i < created.length; i++) {
      ReflectApply(MapPrototypeSet, modules, [created[i][0], created[i][1]]);
    }
    const pairs = JSONParse(envJson);
    const env = {};
    for (let i = 0; i < pairs.length; i++) setEntry(env, pairs[i][0], pairs[i][1]);
    grantedEnv = env;
    defineGlobal("process", makeProcess(env));
  },
  // Library loads discard console output (spec §9).
  mute(on) {
    consoleMuted = on;
  },
  beginRunFile(argsJson, envJson) {
    ObjectDefineProperty(global, "__ARGS__", {
      value: deepFreeze(JSONParse(argsJson)),
      writable: false,
      configurable: true,
      enumerable: false,
    });
    const pairs = JSONParse(envJson);
    if (pairs.length > 0) {
      const env = {};
      const granted = ObjectKeys(grantedEnv);
      for (let i = 0; i < granted.length; i++) setEntry(env, granted[i], grantedEnv[granted[i]]);
      for (let i = 0; i < pairs.length; i++) setEntry(env, pairs[i][0], pairs[i][1]);
      savedProcess = global.process;
      installedProcess = makeProcess(env);
      global.process = installedProcess;
    }
  },
  endRunFile() {
    if (ObjectGetOwnPropertyDescriptor(global, "__ARGS__") !== undefined) delete global.__ARGS__;
    if (installedProcess !== null) {
      if (global.process === installedProcess) global.process = savedProcess;
      installedProcess = null;
      savedProcess = null;
    }
  },
  // Marks a completion promise as handled so only its own outcome decides the execution.
  track(value) {
    if (isPromise(value)) ReflectApply(PromisePrototypeThen, value, [noop, noop]);
  },
  // [0] pending / not a promise, [1, value] fulfilled, [2, reason] rejected.
  settle(value) {
    if (!isPromise(value)) return [1, value];
    const details = getPromiseDetails(value);
    return details[0] === 0 ? [1, value] : [details[0], details[1]];
  },
  previewValue,
  exceptionPayload,
  takeUncaught() {
    const taken = uncaught;
    uncaught = null;
    return taken === null ? [false, undefined] : [true, taken.error];
  },
  clearTimers,
};
