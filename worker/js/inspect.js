// worker/js/inspect.js
//
// Owns the worker's text rendering of JavaScript values (api.md §7.5, §7.6):
//   * inspect(v)            === Node v20 util.inspect(v, {breakLength: Infinity,
//                              compact: true, customInspect: false})
//   * formatWithOptions(a)  === Node v20 util.formatWithOptions(<same>, ...a)
//                              (console text: %s %d %i %f %j %o %O %c %%)
//   * previewValue(v)       -> value payload JSON text {"type","preview","json"}
//   * exceptionPayload(e)   -> exception payload JSON text {"name","message","stack"}
//   * wellFormed(s)         -> s with lone surrogates replaced by U+FFFD
//
// This is a trimmed port of Node's lib/internal/util/inspect.js (v20.20.2):
// no colors, no custom inspect, no numericSeparator, no `sorted`, no
// `getters`; breakLength is always Infinity. `compact` is `true` except for
// `%s` (compact 3, depth 0), `showHidden`/`showProxy` are only set by `%o`.
//
// The file is evaluated as a classic script; its completion value is a
// function that takes the `host` helper object and returns the API object.
// host (none of these may run user code):
//   getPromiseDetails(p) -> [state 0|1|2, result]; getProxyDetails(v) -> null
//   or [target, handler] (target null/undefined when revoked); isDate,
//   isRegExp, isMap, isSet, isWeakMap, isWeakSet, isPromise, isTypedArray,
//   isArrayBuffer, isDataView, isAsyncFunction, isGeneratorFunction,
//   isBoxedPrimitive, isNumberObject, isStringObject, isBooleanObject,
//   isBigIntObject, isNativeError, isArgumentsObject, isMapIterator,
//   isSetIterator (deno_core's Deno.core.isX / Node's util.types).
//   Optional: previewEntries(v) -> entries of a WeakMap/WeakSet and
//   previewEntries(v, true) -> [entries, isKeyValue] of a Map/Set iterator
//   (without it their contents print as <items unknown>);
//   getOwnNonIndexProperties(obj, filter 0|2) (speed-up for huge arrays);
//   isSharedArrayBuffer(v) (else a brand check is used). Every built-in used is captured when the
// function runs (before any user code), so user code that later replaces
// Array.prototype.join, JSON, String, ... cannot break or hijack rendering.
// Inspect never calls getters or proxy traps on its own; like Node it does
// read `Symbol.toStringTag`, `constructor.name`, an error's
// name/message/stack/cause/errors, and `%s`/`%d`/`%j`... convert as Node does.
(function (host) {
  "use strict";

  // ---------------------------------------------------------------------------
  // Primordials (captured once, at load time).
  // ---------------------------------------------------------------------------
  const FunctionCtor = Function;
  const FunctionPrototype = Function.prototype;
  const uncurryThis = FunctionPrototype.bind.bind(FunctionPrototype.call);
  const FunctionPrototypeBind = uncurryThis(FunctionPrototype.bind);
  const FunctionPrototypeToString = uncurryThis(FunctionPrototype.toString);
  const FunctionPrototypeSymbolHasInstance =
    uncurryThis(FunctionPrototype[Symbol.hasInstance]);
  const ReflectApply = Reflect.apply;
  const ReflectOwnKeys = Reflect.ownKeys;

  const ObjectCtor = Object;
  const ObjectPrototype = Object.prototype;
  const ObjectKeys = Object.keys;
  const ObjectGetOwnPropertyNames = Object.getOwnPropertyNames;
  const ObjectGetOwnPropertySymbols = Object.getOwnPropertySymbols;
  const ObjectGetOwnPropertyDescriptor = Object.getOwnPropertyDescriptor;
  const ObjectGetPrototypeOf = Object.getPrototypeOf;
  const ObjectIs = Object.is;
  const ObjectFreeze = Object.freeze;
  const ObjectPrototypeHasOwnProperty = uncurryThis(ObjectPrototype.hasOwnProperty);
  const ObjectPrototypePropertyIsEnumerable =
    uncurryThis(ObjectPrototype.propertyIsEnumerable);

  const ArrayIsArray = Array.isArray;

  const StringCtor = String;
  const StringFromCharCode = String.fromCharCode;
  const StringPrototype = String.prototype;
  const StringPrototypeCharCodeAt = uncurryThis(StringPrototype.charCodeAt);
  const StringPrototypeCodePointAt = uncurryThis(StringPrototype.codePointAt);
  const StringPrototypeSlice = uncurryThis(StringPrototype.slice);
  const StringPrototypeIndexOf = uncurryThis(StringPrototype.indexOf);
  const StringPrototypeIncludes = uncurryThis(StringPrototype.includes);
  const StringPrototypeStartsWith = uncurryThis(StringPrototype.startsWith);
  const StringPrototypeEndsWith = uncurryThis(StringPrototype.endsWith);
  const StringPrototypeRepeat = uncurryThis(StringPrototype.repeat);
  const StringPrototypePadStart = uncurryThis(StringPrototype.padStart);
  const StringPrototypePadEnd = uncurryThis(StringPrototype.padEnd);
  const StringPrototypeToLowerCase = uncurryThis(StringPrototype.toLowerCase);
  const StringPrototypeValueOf = uncurryThis(StringPrototype.valueOf);
  const StringPrototypeNormalize =
    typeof StringPrototype.normalize === "function"
      ? uncurryThis(StringPrototype.normalize)
      : (s) => s;
  const StringPrototypeToWellFormed =
    typeof StringPrototype.toWellFormed === "function"
      ? uncurryThis(StringPrototype.toWellFormed)
      : undefined;

  const NumberCtor = Number;
  const NumberIsNaN = Number.isNaN;
  const NumberParseInt = Number.parseInt;
  const NumberParseFloat = Number.parseFloat;
  const NumberPrototypeToString = uncurryThis(Number.prototype.toString);
  const NumberPrototypeValueOf = uncurryThis(Number.prototype.valueOf);
  const BooleanPrototypeValueOf = uncurryThis(Boolean.prototype.valueOf);
  const BigIntPrototypeValueOf = uncurryThis(BigInt.prototype.valueOf);
  const SymbolPrototypeToString = uncurryThis(Symbol.prototype.toString);
  const SymbolPrototypeValueOf = uncurryThis(Symbol.prototype.valueOf);
  const SymbolIterator = Symbol.iterator;
  const SymbolToStringTag = Symbol.toStringTag;
  const SymbolToPrimitive = Symbol.toPrimitive;

  const MathFloor = Math.floor;
  const MathMax = Math.max;
  const MathMin = Math.min;
  const MathRound = Math.round;
  const MathSqrt = Math.sqrt;

  const JSONStringify = JSON.stringify;

  const DatePrototypeGetTime = uncurryThis(Date.prototype.getTime);
  const DatePrototypeToISOString = uncurryThis(Date.prototype.toISOString);
  const DatePrototypeToString = uncurryThis(Date.prototype.toString);

  const RegExpCtor = RegExp;
  const RegExpPrototypeToString = uncurryThis(RegExp.prototype.toString);

  const ErrorCtor = Error;
  const ErrorPrototypeToString = uncurryThis(Error.prototype.toString);
  // QuickJS-ng keeps an error's `stack` as an own native accessor; V8 (and
  // so Node) shows it as a data property. Remember the native getter.
  let nativeErrorStackGetter;
  {
    const d = ObjectGetOwnPropertyDescriptor(new ErrorCtor(), "stack");
    if (d !== undefined && typeof d.get === "function") nativeErrorStackGetter = d.get;
  }

  const MapCtor = Map;
  const MapPrototypeGet = uncurryThis(Map.prototype.get);
  const MapPrototypeSet = uncurryThis(Map.prototype.set);
  const MapPrototypeGetSize = uncurryThis(
    ObjectGetOwnPropertyDescriptor(Map.prototype, "size").get);
  const MapPrototypeEntries = uncurryThis(Map.prototype.entries);
  const MapIteratorPrototypeNext = uncurryThis(
    ObjectGetPrototypeOf(new Map().entries()).next);
  const SetCtor = Set;
  const SetPrototypeHas = uncurryThis(Set.prototype.has);
  const SetPrototypeAdd = uncurryThis(Set.prototype.add);
  const SetPrototypeGetSize = uncurryThis(
    ObjectGetOwnPropertyDescriptor(Set.prototype, "size").get);
  const SetPrototypeValues = uncurryThis(Set.prototype.values);
  const SetIteratorPrototypeNext = uncurryThis(
    ObjectGetPrototypeOf(new Set().values()).next);

  const TypedArrayPrototype = ObjectGetPrototypeOf(Uint8Array.prototype);
  const TypedArrayPrototypeGetLength = uncurryThis(
    ObjectGetOwnPropertyDescriptor(TypedArrayPrototype, "length").get);
  const TypedArrayPrototypeGetSymbolToStringTag = uncurryThis(
    ObjectGetOwnPropertyDescriptor(TypedArrayPrototype, SymbolToStringTag).get);
  const Uint8ArrayCtor = Uint8Array;
  const typedArrayConstructors = { __proto__: null };
  {
    const names = [
      "Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array",
      "Uint16Array", "Int32Array", "Uint32Array", "Float16Array",
      "Float32Array", "Float64Array", "BigInt64Array", "BigUint64Array",
    ];
    for (let i = 0; i < names.length; i++) {
      const C = globalThis[names[i]];
      if (typeof C === "function") typedArrayConstructors[names[i]] = C;
    }
  }
  let SharedArrayBufferPrototypeGetByteLength;
  if (typeof SharedArrayBuffer === "function") {
    const d = ObjectGetOwnPropertyDescriptor(SharedArrayBuffer.prototype, "byteLength");
    if (d !== undefined && typeof d.get === "function") {
      SharedArrayBufferPrototypeGetByteLength = uncurryThis(d.get);
    }
  }

  // ---------------------------------------------------------------------------
  // Host helpers (type checks without user code).
  // ---------------------------------------------------------------------------
  function hostFn(name, fallback) {
    const f = host != null ? host[name] : undefined;
    if (typeof f === "function") return FunctionPrototypeBind(f, host);
    return fallback;
  }
  const returnFalse = () => false;
  const getPromiseDetails = hostFn("getPromiseDetails", () => [0, undefined]);
  const hostGetProxyDetails = hostFn("getProxyDetails", () => null);
  const isDate = hostFn("isDate", returnFalse);
  const isRegExp = hostFn("isRegExp", returnFalse);
  const isMap = hostFn("isMap", returnFalse);
  const isSet = hostFn("isSet", returnFalse);
  const isWeakMap = hostFn("isWeakMap", returnFalse);
  const isWeakSet = hostFn("isWeakSet", returnFalse);
  const isPromise = hostFn("isPromise", returnFalse);
  const isTypedArray = hostFn("isTypedArray", returnFalse);
  const isArrayBuffer = hostFn("isArrayBuffer", returnFalse);
  const isDataView = hostFn("isDataView", returnFalse);
  const isAsyncFunction = hostFn("isAsyncFunction", returnFalse);
  const isGeneratorFunction = hostFn("isGeneratorFunction", returnFalse);
  const isBoxedPrimitive = hostFn("isBoxedPrimitive", returnFalse);
  const isNumberObject = hostFn("isNumberObject", returnFalse);
  const isStringObject = hostFn("isStringObject", returnFalse);
  const isBooleanObject = hostFn("isBooleanObject", returnFalse);
  const isBigIntObject = hostFn("isBigIntObject", returnFalse);
  const isNativeError = hostFn("isNativeError", returnFalse);
  const isArgumentsObject = hostFn("isArgumentsObject", returnFalse);
  const isMapIterator = hostFn("isMapIterator", returnFalse);
  const isSetIterator = hostFn("isSetIterator", returnFalse);
  // Optional helpers: V8-style previewEntries(obj, isIterator) and a
  // SharedArrayBuffer check. Without previewEntries, Map/Set iterator contents
  // (and WeakMap/WeakSet contents under %o) cannot be shown.
  const previewEntries = hostFn("previewEntries", undefined);
  const isSharedArrayBuffer = hostFn("isSharedArrayBuffer", (v) => {
    if (SharedArrayBufferPrototypeGetByteLength === undefined) return false;
    try {
      SharedArrayBufferPrototypeGetByteLength(v);
      return true;
    } catch {
      return false;
    }
  });
  // Optional: V8-style getOwnNonIndexProperties(obj, filter) with filter 0
  // (all properties) or 2 (only enumerable), e.g. deno_core's
  // op_get_non_index_property_names. Only a speed-up for huge arrays.
  const hostGetOwnNonIndexProperties = hostFn("getOwnNonIndexProperties", undefined);
  const isAnyArrayBuffer = (v) => isArrayBuffer(v) || isSharedArrayBuffer(v);

  // Node's getProxyDetails(value, showProxy): undefined when `value` is not a
  // proxy, else [target, handler] (showProxy) or just target.
  function getProxyDetails(value, showProxy) {
    const details = hostGetProxyDetails(value);
    if (details === null || details === undefined) return undefined;
    // A revoked proxy has no target (V8: null; other engines: undefined).
    const target = details[0] === undefined ? null : details[0];
    if (showProxy) return target === null ? [null, null] : [target, details[1]];
    return target;
  }

  // ---------------------------------------------------------------------------
  // Small safe helpers (no Array.prototype methods).
  // ---------------------------------------------------------------------------
  function push(arr, v) {
    arr[arr.length] = v;
  }
  function arrayIncludes(arr, v) {
    for (let i = 0; i < arr.length; i++) if (arr[i] === v) return true;
    return false;
  }
  function arrayIndexOf(arr, v) {
    for (let i = 0; i < arr.length; i++) if (arr[i] === v) return i;
    return -1;
  }
  function arraySpliceOne(arr, index) {
    for (let i = index; i < arr.length - 1; i++) arr[i] = arr[i + 1];
    arr.length = arr.length - 1;
  }
  function arrayUnshift(arr, items) {
    const n = items.length;
    for (let i = arr.length - 1; i >= 0; i--) arr[i + n] = arr[i];
    for (let i = 0; i < n; i++) arr[i] = items[i];
  }
  function arrayPushAll(arr, items) {
    for (let i = 0; i < items.length; i++) push(arr, items[i]);
  }
  // Default Array.prototype.sort order (string compare by UTF-16 units).
  function sortStrings(arr) {
    for (let i = 1; i < arr.length; i++) {
      const v = arr[i];
      let j = i - 1;
      while (j >= 0 && arr[j] > v) {
        arr[j + 1] = arr[j];
        j--;
      }
      arr[j + 1] = v;
    }
    return arr;
  }
  // Node's internal/util join().
  function join(output, separator) {
    let str = "";
    if (output.length !== 0) {
      const lastIndex = output.length - 1;
      for (let i = 0; i < lastIndex; i++) {
        str += output[i];
        str += separator;
      }
      str += output[lastIndex];
    }
    return str;
  }
  function splitString(str, sep) {
    const out = [];
    let start = 0;
    for (;;) {
      const idx = StringPrototypeIndexOf(str, sep, start);
      if (idx === -1) break;
      push(out, StringPrototypeSlice(str, start, idx));
      start = idx + sep.length;
    }
    push(out, StringPrototypeSlice(str, start));
    return out;
  }
  function replaceAll(str, search, replacement) {
    return join(splitString(str, search), replacement);
  }
  function trimSpaces(str) {
    let s = 0;
    let e = str.length;
    while (s < e && StringPrototypeCharCodeAt(str, s) === 32) s++;
    while (e > s && StringPrototypeCharCodeAt(str, e - 1) === 32) e--;
    return StringPrototypeSlice(str, s, e);
  }
  function newSafeMap() {
    return new MapCtor();
  }
  function newSafeSet() {
    return new SetCtor();
  }

  // Replace lone surrogates with U+FFFD.
  function wellFormed(str) {
    if (StringPrototypeToWellFormed !== undefined) return StringPrototypeToWellFormed(str);
    let out = "";
    let last = 0;
    for (let i = 0; i < str.length; i++) {
      const c = StringPrototypeCharCodeAt(str, i);
      if (c >= 0xd800 && c <= 0xdfff) {
        if (c <= 0xdbff && i + 1 < str.length) {
          const d = StringPrototypeCharCodeAt(str, i + 1);
          if (d >= 0xdc00 && d <= 0xdfff) {
            i++;
            continue;
          }
        }
        out += StringPrototypeSlice(str, last, i) + "\ufffd";
        last = i + 1;
      }
    }
    return last === 0 ? str : out + StringPrototypeSlice(str, last);
  }

  // ---------------------------------------------------------------------------
  // Constants.
  // ---------------------------------------------------------------------------
  // Names Node's inspect treats as built-in constructors (the V8 globals
  // matching /^[A-Z][a-zA-Z0-9]+$/ when Node's inspect module loads), plus the
  // QuickJS-ng built-ins that Node v20 does not have.
  const builtInObjects = newSafeSet();
  {
    const names = [
      "Object", "Function", "Array", "Number", "Infinity", "NaN", "Boolean",
      "String", "Symbol", "Date", "Promise", "RegExp", "Error", "AggregateError",
      "EvalError", "RangeError", "ReferenceError", "SyntaxError", "TypeError",
      "URIError", "JSON", "Math", "Intl", "ArrayBuffer", "Uint8Array",
      "Int8Array", "Uint16Array", "Int16Array", "Uint32Array", "Int32Array",
      "Float32Array", "Float64Array", "Uint8ClampedArray", "BigUint64Array",
      "BigInt64Array", "DataView", "Map", "BigInt", "Set", "WeakMap", "WeakSet",
      "Proxy", "Reflect", "FinalizationRegistry", "WeakRef",
      // QuickJS-ng only
      "InternalError", "Iterator", "Float16Array", "SuppressedError",
      "DisposableStack", "AsyncDisposableStack",
    ];
    for (let i = 0; i < names.length; i++) SetPrototypeAdd(builtInObjects, names[i]);
  }

  const kObjectType = 0;
  const kArrayType = 1;
  const kArrayExtrasType = 2;
  const kPending = 0;
  const kRejected = 2;
  const kWeak = 0;
  const kIterator = 1;
  const kMapEntries = 2;

  // Escaped control characters (plus the single quote and the backslash).
  const meta = [
    "\\x00", "\\x01", "\\x02", "\\x03", "\\x04", "\\x05", "\\x06", "\\x07",
    "\\b", "\\t", "\\n", "\\x0B", "\\f", "\\r", "\\x0E", "\\x0F",
    "\\x10", "\\x11", "\\x12", "\\x13", "\\x14", "\\x15", "\\x16", "\\x17",
    "\\x18", "\\x19", "\\x1A", "\\x1B", "\\x1C", "\\x1D", "\\x1E", "\\x1F",
    "", "", "", "", "", "", "", "\\'", "", "", "", "", "", "", "", "",
    "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "",
    "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "",
    "", "", "", "", "", "", "", "", "", "", "", "", "\\\\", "", "", "",
    "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "",
    "", "", "", "", "", "", "", "", "", "", "", "", "", "", "", "\\x7F",
    "\\x80", "\\x81", "\\x82", "\\x83", "\\x84", "\\x85", "\\x86", "\\x87",
    "\\x88", "\\x89", "\\x8A", "\\x8B", "\\x8C", "\\x8D", "\\x8E", "\\x8F",
    "\\x90", "\\x91", "\\x92", "\\x93", "\\x94", "\\x95", "\\x96", "\\x97",
    "\\x98", "\\x99", "\\x9A", "\\x9B", "\\x9C", "\\x9D", "\\x9E", "\\x9F",
  ];

  const isUndetectableObject = (v) => typeof v === "undefined" && v !== undefined;

  // ---------------------------------------------------------------------------
  // String escaping.
  // ---------------------------------------------------------------------------
  function addQuotes(str, quotes) {
    if (quotes === -1) return `"${str}"`;
    if (quotes === -2) return `\`${str}\``;
    return `'${str}'`;
  }

  function hex(n) {
    return NumberPrototypeToString(n, 16);
  }

  // Escapes the characters Node's strEscapeSequencesReplacer matches (C0, ',
  // \, DEL, C1, lone surrogates); `singleQuote` is 39 to escape ' or -1 not to.
  function escapeChars(str, singleQuote) {
    let result = "";
    let last = 0;
    for (let i = 0; i < str.length; i++) {
      const point = StringPrototypeCharCodeAt(str, i);
      if (point === singleQuote || point === 92 || point < 32 ||
          (point > 126 && point < 160)) {
        result += StringPrototypeSlice(str, last, i) + meta[point];
        last = i + 1;
      } else if (point >= 0xd800 && point <= 0xdfff) {
        if (point <= 0xdbff && i + 1 < str.length) {
          const next = StringPrototypeCharCodeAt(str, i + 1);
          if (next >= 0xdc00 && next <= 0xdfff) {
            i++;
            continue;
          }
        }
        result += `${StringPrototypeSlice(str, last, i)}\\u${hex(point)}`;
        last = i + 1;
      }
    }
    if (last === 0) return str;
    if (last !== str.length) result += StringPrototypeSlice(str, last);
    return result;
  }

  // Escape control characters, single quotes and the backslash, and quote.
  function strEscape(str) {
    let singleQuote = 39;
    if (StringPrototypeIncludes(str, "'")) {
      if (!StringPrototypeIncludes(str, '"')) {
        singleQuote = -1;
      } else if (!StringPrototypeIncludes(str, "`") &&
                 !StringPrototypeIncludes(str, "${")) {
        singleQuote = -2;
      }
    }
    return addQuotes(escapeChars(str, singleQuote), singleQuote);
  }

  function isIdentifierKey(key) {
    // /^[a-zA-Z_][a-zA-Z_0-9]*$/
    if (key.length === 0) return false;
    for (let i = 0; i < key.length; i++) {
      const c = StringPrototypeCharCodeAt(key, i);
      const alpha = (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95;
      if (!alpha && !(i > 0 && c >= 48 && c <= 57)) return false;
    }
    return true;
  }

  function isCanonicalIndexString(key) {
    // /^(0|[1-9][0-9]*)$/
    if (key.length === 0) return false;
    const c0 = StringPrototypeCharCodeAt(key, 0);
    if (c0 === 48) return key.length === 1;
    for (let i = 0; i < key.length; i++) {
      const c = StringPrototypeCharCodeAt(key, i);
      if (c < 48 || c > 57) return false;
    }
    return true;
  }

  function isArrayIndexKey(key) {
    return isCanonicalIndexString(key) && +key < 4294967295;
  }

  // ---------------------------------------------------------------------------
  // Keys.
  // ---------------------------------------------------------------------------
  function getKeys(value, showHidden) {
    let keys;
    const symbols = ObjectGetOwnPropertySymbols(value);
    if (showHidden) {
      keys = ObjectGetOwnPropertyNames(value);
      arrayPushAll(keys, symbols);
    } else {
      keys = ObjectKeys(value);
      for (let i = 0; i < symbols.length; i++) {
        if (ObjectPrototypePropertyIsEnumerable(value, symbols[i])) push(keys, symbols[i]);
      }
    }
    return keys;
  }

  // V8's GetOwnPropertyNames(kOwnOnly, filter, kSkipIndices) for arrays and
  // typed arrays. Own keys list the array indices first (ascending), so the
  // index prefix is found by binary search instead of testing every key.
  function getOwnNonIndexProperties(value, showHidden) {
    if (hostGetOwnNonIndexProperties !== undefined) {
      return hostGetOwnNonIndexProperties(value, showHidden ? 0 : 2);
    }
    const names = showHidden ? ObjectGetOwnPropertyNames(value) : ObjectKeys(value);
    let lo = 0;
    let hi = names.length;
    while (lo < hi) {
      const mid = MathFloor((lo + hi) / 2);
      if (isArrayIndexKey(names[mid])) lo = mid + 1;
      else hi = mid;
    }
    const keys = [];
    for (let i = lo; i < names.length; i++) push(keys, names[i]);
    const symbols = ObjectGetOwnPropertySymbols(value);
    for (let i = 0; i < symbols.length; i++) {
      if (showHidden || ObjectPrototypePropertyIsEnumerable(value, symbols[i])) {
        push(keys, symbols[i]);
      }
    }
    return keys;
  }

  // Approximates V8's JSReceiver::GetConstructorName for objects whose
  // prototype chain names no constructor.
  function internalGetConstructorName(value) {
    if (typeof value === "function") return "Function";
    if (ArrayIsArray(value)) return "Array";
    if (isMap(value)) return "Map";
    if (isSet(value)) return "Set";
    if (isWeakMap(value)) return "WeakMap";
    if (isWeakSet(value)) return "WeakSet";
    if (isPromise(value)) return "Promise";
    if (isDate(value)) return "Date";
    if (isRegExp(value)) return "RegExp";
    if (isDataView(value)) return "DataView";
    if (isArrayBuffer(value)) return "ArrayBuffer";
    if (isTypedArray(value)) return TypedArrayPrototypeGetSymbolToStringTag(value);
    if (isNumberObject(value)) return "Number";
    if (isStringObject(value)) return "String";
    if (isBooleanObject(value)) return "Boolean";
    if (isBigIntObject(value)) return "BigInt";
    if (isBoxedPrimitive(value)) return "Symbol";
    // V8 then uses a Symbol.toStringTag *data* property found on the
    // prototype chain (no getters, stops at proxies), then the class name.
    let obj = value;
    while (obj !== null) {
      if (getProxyDetails(obj, true) !== undefined) break;
      const desc = ObjectGetOwnPropertyDescriptor(obj, SymbolToStringTag);
      if (desc !== undefined) {
        if (typeof desc.value === "string") return desc.value;
        break;
      }
      obj = ObjectGetPrototypeOf(obj);
    }
    return "Object";
  }

  // ---------------------------------------------------------------------------
  // Context.
  // ---------------------------------------------------------------------------
  function makeCtx(opts) {
    return {
      budget: { __proto__: null },
      indentationLvl: 0,
      seen: [],
      currentDepth: 0,
      circular: undefined,
      showHidden: opts.showHidden === true,
      depth: opts.depth === undefined ? 2 : opts.depth,
      showProxy: opts.showProxy === true,
      maxArrayLength: 100,
      maxStringLength: 10000,
      breakLength: Infinity,
      compact: opts.compact === undefined ? true : opts.compact,
    };
  }

  const defaultOptions = ObjectFreeze({ __proto__: null });

  function inspect(value, opts) {
    return formatValue(makeCtx(opts === undefined ? defaultOptions : opts), value, 0);
  }

  // ---------------------------------------------------------------------------
  // Constructor names and prefixes.
  // ---------------------------------------------------------------------------
  function isInstanceof(object, proto) {
    try {
      return object instanceof proto;
    } catch {
      return false;
    }
  }

  function getConstructorName(obj, ctx, recurseTimes, protoProps) {
    let firstProto;
    const tmp = obj;
    while (obj || isUndetectableObject(obj)) {
      if (obj === ObjectPrototype || obj === FunctionPrototype) {
        const constructor = obj === ObjectPrototype ? ObjectCtor : FunctionCtor;
        if (FunctionPrototypeSymbolHasInstance(constructor, tmp)) {
          if (protoProps !== undefined && firstProto !== obj) {
            addPrototypeProperties(ctx, tmp, firstProto || tmp, recurseTimes, protoProps);
          }
          return obj === ObjectPrototype ? "Object" : "Function";
        }
      }
      const descriptor = ObjectGetOwnPropertyDescriptor(obj, "constructor");
      if (descriptor !== undefined &&
          typeof descriptor.value === "function" &&
          descriptor.value.name !== "" &&
          isInstanceof(tmp, descriptor.value)) {
        if (protoProps !== undefined &&
            (firstProto !== obj ||
             !SetPrototypeHas(builtInObjects, descriptor.value.name))) {
          addPrototypeProperties(ctx, tmp, firstProto || tmp, recurseTimes, protoProps);
        }
        return StringCtor(descriptor.value.name);
      }

      obj = ObjectGetPrototypeOf(obj);
      if (firstProto === undefined) {
        firstProto = obj;
      }
    }

    if (firstProto === null) {
      return null;
    }

    const res = internalGetConstructorName(tmp);

    if (recurseTimes > ctx.depth) {
      return `${res} <Complex prototype>`;
    }

    const protoConstr = getConstructorName(firstProto, ctx, recurseTimes + 1, protoProps);

    if (protoConstr === null) {
      return `${res} <${inspect(firstProto, {
        showHidden: ctx.showHidden,
        showProxy: ctx.showProxy,
        compact: ctx.compact,
        depth: -1,
      })}>`;
    }

    return `${res} <${protoConstr}>`;
  }

  // Adds user-defined prototype properties to `output` (showHidden only).
  function addPrototypeProperties(ctx, main, obj, recurseTimes, output) {
    let depth = 0;
    let keys;
    let keySet;
    do {
      if (depth !== 0 || main === obj) {
        obj = ObjectGetPrototypeOf(obj);
        if (obj === null) {
          return;
        }
        const descriptor = ObjectGetOwnPropertyDescriptor(obj, "constructor");
        if (descriptor !== undefined &&
            typeof descriptor.value === "function" &&
            SetPrototypeHas(builtInObjects, descriptor.value.name)) {
          return;
        }
      }

      if (depth === 0) {
        keySet = newSafeSet();
      } else {
        for (let i = 0; i < keys.length; i++) SetPrototypeAdd(keySet, keys[i]);
      }
      keys = ReflectOwnKeys(obj);
      push(ctx.seen, main);
      for (let i = 0; i < keys.length; i++) {
        const key = keys[i];
        if (key === "constructor" ||
            ObjectPrototypeHasOwnProperty(main, key) ||
            (depth !== 0 && SetPrototypeHas(keySet, key))) {
          continue;
        }
        const desc = ObjectGetOwnPropertyDescriptor(obj, key);
        if (typeof desc.value === "function") {
          continue;
        }
        const value = formatProperty(ctx, obj, recurseTimes, key, kObjectType, desc, main);
        push(output, value);
      }
      ctx.seen.length = ctx.seen.length - 1;
    } while (++depth !== 3);
  }

  function getPrefix(constructor, tag, fallback, size = "") {
    if (constructor === null) {
      if (tag !== "" && fallback !== tag) {
        return `[${fallback}${size}: null prototype] [${tag}] `;
      }
      return `[${fallback}${size}: null prototype] `;
    }

    if (tag !== "" && constructor !== tag) {
      return `${constructor}${size} [${tag}] `;
    }
    return `${constructor}${size} `;
  }

  function getCtxStyle(value, constructor, tag) {
    let fallback = "";
    if (constructor === null) {
      fallback = internalGetConstructorName(value);
      if (fallback === tag) {
        fallback = "Object";
      }
    }
    return getPrefix(constructor, tag, fallback);
  }

  // ---------------------------------------------------------------------------
  // formatValue / formatRaw.
  // ---------------------------------------------------------------------------
  function formatProxy(ctx, proxy, recurseTimes) {
    if (recurseTimes > ctx.depth) {
      return "Proxy [Array]";
    }
    recurseTimes += 1;
    ctx.indentationLvl += 2;
    const res = [
      formatValue(ctx, proxy[0], recurseTimes),
      formatValue(ctx, proxy[1], recurseTimes),
    ];
    ctx.indentationLvl -= 2;
    return reduceToSingleString(ctx, res, "", ["Proxy [", "]"], kArrayExtrasType, recurseTimes);
  }

  function formatValue(ctx, value, recurseTimes, typedArray) {
    // Primitive types cannot have properties.
    if (typeof value !== "object" &&
        typeof value !== "function" &&
        !isUndetectableObject(value)) {
      return formatPrimitive(value, ctx);
    }
    if (value === null) {
      return "null";
    }

    // Always check for proxies to prevent side effects and to prevent
    // triggering any proxy handlers.
    const proxy = getProxyDetails(value, ctx.showProxy);
    if (proxy !== undefined) {
      // (Node reads `proxy[0]` of the target as well when showProxy is off.)
      if (proxy === null || proxy[0] === null) {
        return "<Revoked Proxy>";
      }
      if (ctx.showProxy) {
        return formatProxy(ctx, proxy, recurseTimes);
      }
      value = proxy;
    }

    // customInspect is always false: no user inspect hooks.

    if (arrayIncludes(ctx.seen, value)) {
      let index = 1;
      if (ctx.circular === undefined) {
        ctx.circular = newSafeMap();
        MapPrototypeSet(ctx.circular, value, index);
      } else {
        index = MapPrototypeGet(ctx.circular, value);
        if (index === undefined) {
          index = MapPrototypeGetSize(ctx.circular) + 1;
          MapPrototypeSet(ctx.circular, value, index);
        }
      }
      return `[Circular *${index}]`;
    }

    return formatRaw(ctx, value, recurseTimes, typedArray);
  }

  function formatRaw(ctx, value, recurseTimes, typedArray) {
    let keys;
    let protoProps;
    if (ctx.showHidden && recurseTimes <= ctx.depth) {
      protoProps = [];
    }

    const constructor = getConstructorName(value, ctx, recurseTimes, protoProps);
    if (protoProps !== undefined && protoProps.length === 0) {
      protoProps = undefined;
    }

    let tag = value[SymbolToStringTag];
    // Only list the tag in case it's non-enumerable / not an own property.
    if (typeof tag !== "string" ||
        (tag !== "" &&
         (ctx.showHidden
           ? ObjectPrototypeHasOwnProperty
           : ObjectPrototypePropertyIsEnumerable)(value, SymbolToStringTag))) {
      tag = "";
    }
    let base = "";
    let formatter = getEmptyFormatArray;
    let braces;
    let noIterator = true;
    let extrasType = kObjectType;

    if (SymbolIterator in value || constructor === null) {
      noIterator = false;
      if (ArrayIsArray(value)) {
        const prefix = (constructor !== "Array" || tag !== "")
          ? getPrefix(constructor, tag, "Array", `(${value.length})`)
          : "";
        keys = getOwnNonIndexProperties(value, ctx.showHidden);
        braces = [`${prefix}[`, "]"];
        if (value.length === 0 && keys.length === 0 && protoProps === undefined) {
          return `${braces[0]}]`;
        }
        extrasType = kArrayExtrasType;
        formatter = formatArray;
      } else if (isSet(value)) {
        const size = SetPrototypeGetSize(value);
        const prefix = getPrefix(constructor, tag, "Set", `(${size})`);
        keys = getKeys(value, ctx.showHidden);
        formatter = constructor !== null
          ? FunctionPrototypeBind(formatSet, null, value, false)
          : FunctionPrototypeBind(formatSet, null, value, true);
        if (size === 0 && keys.length === 0 && protoProps === undefined) {
          return `${prefix}{}`;
        }
        braces = [`${prefix}{`, "}"];
      } else if (isMap(value)) {
        const size = MapPrototypeGetSize(value);
        const prefix = getPrefix(constructor, tag, "Map", `(${size})`);
        keys = getKeys(value, ctx.showHidden);
        formatter = constructor !== null
          ? FunctionPrototypeBind(formatMap, null, value, false)
          : FunctionPrototypeBind(formatMap, null, value, true);
        if (size === 0 && keys.length === 0 && protoProps === undefined) {
          return `${prefix}{}`;
        }
        braces = [`${prefix}{`, "}"];
      } else if (isTypedArray(value)) {
        keys = getOwnNonIndexProperties(value, ctx.showHidden);
        let bound = value;
        let fallback = "";
        if (constructor === null) {
          fallback = TypedArrayPrototypeGetSymbolToStringTag(value);
          // Reconstruct the array information.
          bound = new typedArrayConstructors[fallback](value);
        }
        const size = TypedArrayPrototypeGetLength(value);
        const prefix = getPrefix(constructor, tag, fallback, `(${size})`);
        braces = [`${prefix}[`, "]"];
        if (value.length === 0 && keys.length === 0 && !ctx.showHidden) {
          return `${braces[0]}]`;
        }
        formatter = FunctionPrototypeBind(formatTypedArray, null, bound, size);
        extrasType = kArrayExtrasType;
      } else if (isMapIterator(value)) {
        keys = getKeys(value, ctx.showHidden);
        braces = getIteratorBraces("Map", tag);
        formatter = FunctionPrototypeBind(formatIterator, null, braces);
      } else if (isSetIterator(value)) {
        keys = getKeys(value, ctx.showHidden);
        braces = getIteratorBraces("Set", tag);
        formatter = FunctionPrototypeBind(formatIterator, null, braces);
      } else {
        noIterator = true;
      }
    }
    if (noIterator) {
      keys = getKeys(value, ctx.showHidden);
      braces = ["{", "}"];
      if (typeof value === "function") {
        base = getFunctionBase(value, constructor, tag);
        if (keys.length === 0 && protoProps === undefined) {
          return base;
        }
      } else if (constructor === "Object") {
        if (isArgumentsObject(value)) {
          braces[0] = "[Arguments] {";
        } else if (tag !== "") {
          braces[0] = `${getPrefix(constructor, tag, "Object")}{`;
        }
        if (keys.length === 0 && protoProps === undefined) {
          return `${braces[0]}}`;
        }
      } else if (isRegExp(value)) {
        base = RegExpPrototypeToString(constructor !== null ? value : new RegExpCtor(value));
        const prefix = getPrefix(constructor, tag, "RegExp");
        if (prefix !== "RegExp ") {
          base = `${prefix}${base}`;
        }
        if ((keys.length === 0 && protoProps === undefined) ||
            recurseTimes > ctx.depth) {
          return base;
        }
      } else if (isDate(value)) {
        base = NumberIsNaN(DatePrototypeGetTime(value))
          ? DatePrototypeToString(value)
          : DatePrototypeToISOString(value);
        const prefix = getPrefix(constructor, tag, "Date");
        if (prefix !== "Date ") {
          base = `${prefix}${base}`;
        }
        if (keys.length === 0 && protoProps === undefined) {
          return base;
        }
      } else if (isError(value)) {
        base = formatError(value, constructor, tag, ctx, keys);
        if (keys.length === 0 && protoProps === undefined) {
          return base;
        }
      } else if (isAnyArrayBuffer(value)) {
        const arrayType = isArrayBuffer(value) ? "ArrayBuffer" : "SharedArrayBuffer";
        const prefix = getPrefix(constructor, tag, arrayType);
        if (typedArray === undefined) {
          formatter = formatArrayBuffer;
        } else if (keys.length === 0 && protoProps === undefined) {
          return prefix + `{ byteLength: ${formatNumber(value.byteLength)} }`;
        }
        braces[0] = `${prefix}{`;
        arrayUnshift(keys, ["byteLength"]);
      } else if (isDataView(value)) {
        braces[0] = `${getPrefix(constructor, tag, "DataView")}{`;
        // .buffer goes last, it's not a primitive like the others.
        arrayUnshift(keys, ["byteLength", "byteOffset", "buffer"]);
      } else if (isPromise(value)) {
        braces[0] = `${getPrefix(constructor, tag, "Promise")}{`;
        formatter = formatPromise;
      } else if (isWeakSet(value)) {
        braces[0] = `${getPrefix(constructor, tag, "WeakSet")}{`;
        formatter = ctx.showHidden ? formatWeakSet : formatWeakCollection;
      } else if (isWeakMap(value)) {
        braces[0] = `${getPrefix(constructor, tag, "WeakMap")}{`;
        formatter = ctx.showHidden ? formatWeakMap : formatWeakCollection;
      } else if (isBoxedPrimitive(value)) {
        base = getBoxedBase(value, ctx, keys, constructor, tag);
        if (keys.length === 0 && protoProps === undefined) {
          return base;
        }
      } else {
        if (keys.length === 0 && protoProps === undefined) {
          return `${getCtxStyle(value, constructor, tag)}{}`;
        }
        braces[0] = `${getCtxStyle(value, constructor, tag)}{`;
      }
    }

    if (recurseTimes > ctx.depth) {
      let constructorName = StringPrototypeSlice(getCtxStyle(value, constructor, tag), 0, -1);
      if (constructor !== null) {
        constructorName = `[${constructorName}]`;
      }
      return constructorName;
    }
    recurseTimes += 1;

    push(ctx.seen, value);
    ctx.currentDepth = recurseTimes;
    let output;
    const indentationLvl = ctx.indentationLvl;
    try {
      output = formatter(ctx, value, recurseTimes);
      for (let i = 0; i < keys.length; i++) {
        push(output, formatProperty(ctx, value, recurseTimes, keys[i], extrasType));
      }
      if (protoProps !== undefined) {
        arrayPushAll(output, protoProps);
      }
    } catch (err) {
      if (!isStackOverflowError(err)) throw err;
      const constructorName = StringPrototypeSlice(getCtxStyle(value, constructor, tag), 0, -1);
      return handleMaxCallStackSize(ctx, constructorName, indentationLvl);
    }
    if (ctx.circular !== undefined) {
      const index = MapPrototypeGet(ctx.circular, value);
      if (index !== undefined) {
        const reference = `<ref *${index}>`;
        // Add reference always to the very beginning of the output.
        if (ctx.compact !== true) {
          base = base === "" ? reference : `${reference} ${base}`;
        } else {
          braces[0] = `${reference} ${braces[0]}`;
        }
      }
    }
    ctx.seen.length = ctx.seen.length - 1;

    const res = reduceToSingleString(ctx, output, base, braces, extrasType, recurseTimes, value);
    const budget = ctx.budget[ctx.indentationLvl] || 0;
    const newLength = budget + res.length;
    ctx.budget[ctx.indentationLvl] = newLength;
    // Node limits huge outputs: once any level exceeds 2 ** 27 characters,
    // further inspection is cut to the minimum.
    if (newLength > 2 ** 27) {
      ctx.depth = -1;
    }
    return res;
  }

  function getEmptyFormatArray() {
    return [];
  }

  let maxStackErrorName;
  let maxStackErrorMessage;
  function isStackOverflowError(err) {
    if (maxStackErrorMessage === undefined) {
      try {
        const overflowStack = () => {
          overflowStack();
        };
        overflowStack();
      } catch (e) {
        try {
          maxStackErrorMessage = e.message;
          maxStackErrorName = e.name;
        } catch {
          maxStackErrorMessage = null;
        }
      }
    }
    return !!err && err.name === maxStackErrorName && err.message === maxStackErrorMessage;
  }

  function handleMaxCallStackSize(ctx, constructorName, indentationLvl) {
    ctx.seen.length = ctx.seen.length - 1;
    ctx.indentationLvl = indentationLvl;
    return `[${constructorName}: Inspection interrupted ` +
      "prematurely. Maximum call stack size exceeded.]";
  }

  function getIteratorBraces(type, tag) {
    if (tag !== `${type} Iterator`) {
      if (tag !== "") tag += "] [";
      tag += `${type} Iterator`;
    }
    return [`[${tag}] {`, "}"];
  }

  function getBoxedBase(value, ctx, keys, constructor, tag) {
    let fn;
    let type;
    if (isNumberObject(value)) {
      fn = NumberPrototypeValueOf;
      type = "Number";
    } else if (isStringObject(value)) {
      fn = StringPrototypeValueOf;
      type = "String";
      // Remove the 0-n indexed entries of boxed strings.
      const n = value.length;
      for (let i = 0; i < keys.length - n; i++) keys[i] = keys[i + n];
      keys.length = MathMax(0, keys.length - n);
    } else if (isBooleanObject(value)) {
      fn = BooleanPrototypeValueOf;
      type = "Boolean";
    } else if (isBigIntObject(value)) {
      fn = BigIntPrototypeValueOf;
      type = "BigInt";
    } else {
      fn = SymbolPrototypeValueOf;
      type = "Symbol";
    }
    let base = `[${type}`;
    if (type !== constructor) {
      if (constructor === null) {
        base += " (null prototype)";
      } else {
        base += ` (${constructor})`;
      }
    }
    base += `: ${formatPrimitive(fn(value), ctx)}]`;
    if (tag !== "" && tag !== constructor) {
      base += ` [${tag}]`;
    }
    return base;
  }

  function getClassBase(value, constructor, tag) {
    const hasName = ObjectPrototypeHasOwnProperty(value, "name");
    const name = (hasName && value.name) || "(anonymous)";
    let base = `class ${name}`;
    if (constructor !== "Function" && constructor !== null) {
      base += ` [${constructor}]`;
    }
    if (tag !== "" && constructor !== tag) {
      base += ` [${tag}]`;
    }
    if (constructor !== null) {
      const superName = ObjectGetPrototypeOf(value).name;
      if (superName) {
        base += ` extends ${superName}`;
      }
    } else {
      base += " extends [null prototype]";
    }
    return `[${base}]`;
  }

  // Node: /^(\s+[^(]*?)\s*{/ applied after stripping comments.
  function stripComments(str) {
    // /(\/\/.*?\n)|(\/\*(.|\n)*?\*\/)/g
    let out = "";
    let i = 0;
    while (i < str.length) {
      const c = StringPrototypeCharCodeAt(str, i);
      if (c === 47 && i + 1 < str.length) {
        const d = StringPrototypeCharCodeAt(str, i + 1);
        if (d === 47) {
          // `.` does not match line terminators (\n \r \u2028 \u2029).
          let j = i + 2;
          let found = -1;
          while (j < str.length) {
            const e = StringPrototypeCharCodeAt(str, j);
            if (e === 10) {
              found = j;
              break;
            }
            if (e === 13 || e === 0x2028 || e === 0x2029) break;
            j++;
          }
          if (found !== -1) {
            i = found + 1;
            continue;
          }
        } else if (d === 42) {
          // `(.|\n)` does not match \r, \u2028, \u2029.
          let j = i + 2;
          let found = -1;
          while (j + 1 < str.length) {
            const e = StringPrototypeCharCodeAt(str, j);
            if (e === 42 && StringPrototypeCharCodeAt(str, j + 1) === 47) {
              found = j;
              break;
            }
            if (e === 13 || e === 0x2028 || e === 0x2029) break;
            j++;
          }
          if (found !== -1) {
            i = found + 2;
            continue;
          }
        }
      }
      out += StringFromCharCode(c);
      i++;
    }
    return out;
  }

  function isJsWhitespace(c) {
    return c === 9 || c === 10 || c === 11 || c === 12 || c === 13 || c === 32 ||
      c === 0xa0 || c === 0x1680 || (c >= 0x2000 && c <= 0x200a) ||
      c === 0x2028 || c === 0x2029 || c === 0x202f || c === 0x205f ||
      c === 0x3000 || c === 0xfeff;
  }

  function classRegExpMatches(str) {
    // /^(\s+[^(]*?)\s*{/ : at least one whitespace, then a `{` with no `(`
    // before it.
    if (str.length === 0 || !isJsWhitespace(StringPrototypeCharCodeAt(str, 0))) return false;
    for (let i = 1; i < str.length; i++) {
      const c = StringPrototypeCharCodeAt(str, i);
      if (c === 123) return true;
      if (c === 40) {
        // `(` may only appear inside the trailing \s* part, which it cannot.
        return false;
      }
    }
    return false;
  }

  function getFunctionBase(value, constructor, tag) {
    const stringified = FunctionPrototypeToString(value);
    if (StringPrototypeStartsWith(stringified, "class") &&
        StringPrototypeEndsWith(stringified, "}")) {
      const slice = StringPrototypeSlice(stringified, 5, -1);
      const bracketIndex = StringPrototypeIndexOf(slice, "{");
      if (bracketIndex !== -1 &&
          (!StringPrototypeIncludes(StringPrototypeSlice(slice, 0, bracketIndex), "(") ||
           // Slow path to guarantee that it's indeed a class.
           classRegExpMatches(stripComments(slice)))) {
        return getClassBase(value, constructor, tag);
      }
    }
    let type = "Function";
    if (isGeneratorFunction(value)) {
      type = `Generator${type}`;
    }
    if (isAsyncFunction(value)) {
      type = `Async${type}`;
    }
    let base = `[${type}`;
    if (constructor === null) {
      base += " (null prototype)";
    }
    if (value.name === "") {
      base += " (anonymous)";
    } else {
      base += `: ${value.name}`;
    }
    base += "]";
    if (constructor !== type && constructor !== null) {
      base += ` ${constructor}`;
    }
    if (tag !== "" && constructor !== tag) {
      base += ` [${tag}]`;
    }
    return base;
  }

  // ---------------------------------------------------------------------------
  // Errors.
  // ---------------------------------------------------------------------------
  function isError(e) {
    return isNativeError(e) || FunctionPrototypeSymbolHasInstance(ErrorCtor, e);
  }

  function identicalSequenceRange(a, b) {
    for (let i = 0; i < a.length - 3; i++) {
      const pos = arrayIndexOf(b, a[i]);
      if (pos !== -1) {
        const rest = b.length - pos;
        if (rest > 3) {
          let len = 1;
          const maxLen = MathMin(a.length - i, rest);
          while (maxLen > len && a[i + len] === b[pos + len]) {
            len++;
          }
          if (len > 3) {
            return { len, offset: i };
          }
        }
      }
    }
    return { len: 0, offset: 0 };
  }

  // Engine adaptation: QuickJS-ng ends every frame line with "\n" (V8 does
  // not), and without a header a raw frame list starts with "    at".
  function normalizeStack(error, stack) {
    if (stack.length > 1 && StringPrototypeEndsWith(stack, "\n")) {
      const lastLineStart = StringPrototypeIndexOf(stack, "\n    at ") !== -1 ||
        StringPrototypeStartsWith(stack, "    at ");
      if (lastLineStart) stack = StringPrototypeSlice(stack, 0, -1);
    }
    if (StringPrototypeStartsWith(stack, "    at ")) {
      stack = `${ErrorPrototypeToString(error)}\n${stack}`;
    }
    return repairHeader(error, stack);
  }

  // QuickJS-ng writes a stack's header through UTF-8, which makes three U+FFFD of each lone
  // surrogate of the message; that header is rebuilt from the error (one U+FFFD on the way out).
  function repairHeader(error, stack) {
    if (!StringPrototypeIncludes(stack, "\ufffd\ufffd\ufffd")) return stack;
    const header = ErrorPrototypeToString(error);
    const written = throughUtf8(header);
    if (written !== header && StringPrototypeStartsWith(stack, written)) {
      return header + StringPrototypeSlice(stack, written.length);
    }
    return stack;
  }

  // `text` as the engine's UTF-8 round trip leaves it: each lone surrogate becomes three U+FFFD.
  function throughUtf8(text) {
    let out = "";
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const c = StringPrototypeCharCodeAt(text, i);
      if (c >= 0xd800 && c <= 0xdbff) {
        const next = StringPrototypeCharCodeAt(text, i + 1);
        if (next >= 0xdc00 && next <= 0xdfff) {
          i++;
          continue;
        }
      } else if (c < 0xdc00 || c > 0xdfff) {
        continue;
      }
      out += `${StringPrototypeSlice(text, start, i)}\ufffd\ufffd\ufffd`;
      start = i + 1;
    }
    return start === 0 ? text : out + StringPrototypeSlice(text, start);
  }

  function getStackString(error) {
    const stack = error.stack;
    return stack ? normalizeStack(error, StringCtor(stack)) : ErrorPrototypeToString(error);
  }

  function getStackFrames(ctx, err, stack) {
    const frames = splitString(stack, "\n");

    let cause;
    try {
      ({ cause } = err);
    } catch {
      // If 'cause' is a getter that throws, ignore it.
    }

    // Remove stack frames identical to frames in cause.
    if (cause != null && isError(cause)) {
      const causeStack = getStackString(cause);
      const causeStackStart = StringPrototypeIndexOf(causeStack, "\n    at");
      if (causeStackStart !== -1) {
        const causeFrames = splitString(StringPrototypeSlice(causeStack, causeStackStart + 1), "\n");
        const { len, offset } = identicalSequenceRange(frames, causeFrames);
        if (len > 0) {
          const skipped = len - 2;
          const msg = `    ... ${skipped} lines matching cause stack trace ...`;
          // frames.splice(offset + 1, skipped, msg)
          const out = [];
          for (let i = 0; i <= offset; i++) push(out, frames[i]);
          push(out, msg);
          for (let i = offset + 1 + skipped; i < frames.length; i++) push(out, frames[i]);
          return out;
        }
      }
    }
    return frames;
  }

  function improveStack(stack, constructor, name, tag) {
    // A stack trace may contain arbitrary data. Only manipulate the output
    // for "regular errors" (errors that "look normal") for now.
    let len = name.length;

    if (constructor === null ||
        (StringPrototypeEndsWith(name, "Error") &&
         StringPrototypeStartsWith(stack, name) &&
         (stack.length === len || stack[len] === ":" || stack[len] === "\n"))) {
      let fallback = "Error";
      if (constructor === null) {
        const start = matchErrorHeader(stack);
        fallback = start || "";
        len = fallback.length;
        fallback = fallback || "Error";
      }
      const prefix = StringPrototypeSlice(getPrefix(constructor, tag, fallback), 0, -1);
      if (name !== prefix) {
        if (StringPrototypeIncludes(prefix, name)) {
          if (len === 0) {
            stack = `${prefix}: ${stack}`;
          } else {
            stack = `${prefix}${StringPrototypeSlice(stack, len)}`;
          }
        } else {
          stack = `${prefix} [${name}]${StringPrototypeSlice(stack, len)}`;
        }
      }
    }
    return stack;
  }

  // /^([A-Z][a-z_ A-Z0-9[\]()-]+)(?::|\n {4}at)/ || /^([a-z_A-Z0-9-]*Error)$/
  function matchErrorHeader(stack) {
    const isUpper = (c) => c >= 65 && c <= 90;
    const isRest = (c) => (c >= 97 && c <= 122) || c === 95 || c === 32 ||
      isUpper(c) || (c >= 48 && c <= 57) || c === 91 || c === 93 ||
      c === 40 || c === 41 || c === 45;
    if (stack.length > 0 && isUpper(StringPrototypeCharCodeAt(stack, 0))) {
      let end = 1;
      while (end < stack.length && isRest(StringPrototypeCharCodeAt(stack, end))) end++;
      // Backtrack (greedy) until the remainder starts with ':' or '\n    at'.
      for (let e = end; e >= 2; e--) {
        const restStr = StringPrototypeSlice(stack, e);
        if (StringPrototypeStartsWith(restStr, ":") ||
            StringPrototypeStartsWith(restStr, "\n    at")) {
          return StringPrototypeSlice(stack, 0, e);
        }
      }
    }
    // /^([a-z_A-Z0-9-]*Error)$/
    if (StringPrototypeEndsWith(stack, "Error")) {
      for (let i = 0; i < stack.length; i++) {
        const c = StringPrototypeCharCodeAt(stack, i);
        const ok = (c >= 97 && c <= 122) || c === 95 || (c >= 65 && c <= 90) ||
          (c >= 48 && c <= 57) || c === 45;
        if (!ok) return null;
      }
      return stack;
    }
    return null;
  }

  function removeDuplicateErrorKeys(ctx, keys, err, stack) {
    if (!ctx.showHidden && keys.length !== 0) {
      const names = ["name", "message", "stack"];
      for (let n = 0; n < names.length; n++) {
        const name = names[n];
        const index = arrayIndexOf(keys, name);
        // Only hide the property in case it's part of the original stack
        if (index !== -1 && StringPrototypeIncludes(stack, err[name])) {
          arraySpliceOne(keys, index);
        }
      }
    }
  }

  function formatError(err, constructor, tag, ctx, keys) {
    const name = err.name != null ? StringCtor(err.name) : "Error";
    let stack = getStackString(err);

    removeDuplicateErrorKeys(ctx, keys, err, stack);

    if ("cause" in err &&
        (keys.length === 0 || !arrayIncludes(keys, "cause"))) {
      push(keys, "cause");
    }

    // Print errors aggregated into AggregateError
    if (ArrayIsArray(err.errors) &&
        (keys.length === 0 || !arrayIncludes(keys, "errors"))) {
      push(keys, "errors");
    }

    stack = improveStack(stack, constructor, name, tag);

    // Ignore the error message if it's contained in the stack.
    const message = err.message;
    let pos = (message && StringPrototypeIndexOf(stack, message)) || -1;
    if (pos !== -1) pos += message.length;
    // Wrap the error in brackets in case it has no stack trace.
    const stackStart = StringPrototypeIndexOf(stack, "\n    at", pos);
    if (stackStart === -1) {
      stack = `[${stack}]`;
    } else {
      const newStack = StringPrototypeSlice(stack, 0, stackStart);
      const stackFramePart = StringPrototypeSlice(stack, stackStart + 1);
      const lines = getStackFrames(ctx, err, stackFramePart);
      stack = `${newStack}\n${join(lines, "\n")}`;
    }
    // The message and the stack have to be indented as well!
    if (ctx.indentationLvl !== 0) {
      const indentation = StringPrototypeRepeat(" ", ctx.indentationLvl);
      stack = replaceAll(stack, "\n", `\n${indentation}`);
    }
    return stack;
  }

  // ---------------------------------------------------------------------------
  // Primitives.
  // ---------------------------------------------------------------------------
  const remainingText = (remaining) => `... ${remaining} more item${remaining > 1 ? "s" : ""}`;

  function formatNumber(number) {
    // Format -0 as '-0'. Checking `number === -0` won't distinguish 0 from -0.
    if (ObjectIs(number, -0)) {
      return "-0";
    }
    return `${number}`;
  }

  function formatBigInt(bigint) {
    return `${StringCtor(bigint)}n`;
  }

  function formatPrimitive(value, ctx) {
    if (typeof value === "string") {
      let trailer = "";
      if (value.length > ctx.maxStringLength) {
        const remaining = value.length - ctx.maxStringLength;
        value = StringPrototypeSlice(value, 0, ctx.maxStringLength);
        trailer = `... ${remaining} more character${remaining > 1 ? "s" : ""}`;
      }
      // (With breakLength Infinity Node never splits strings over lines.)
      return strEscape(value) + trailer;
    }
    if (typeof value === "number") return formatNumber(value);
    if (typeof value === "bigint") return formatBigInt(value);
    if (typeof value === "boolean") return `${value}`;
    if (typeof value === "undefined") return "undefined";
    // es6 symbol primitive
    return SymbolPrototypeToString(value);
  }

  // ---------------------------------------------------------------------------
  // Collections.
  // ---------------------------------------------------------------------------
  // The array is sparse and/or has extra keys
  function formatSpecialArray(ctx, value, recurseTimes, maxLength, output, i) {
    const keys = ObjectKeys(value);
    let index = i;
    for (; i < keys.length && output.length < maxLength; i++) {
      const key = keys[i];
      const tmp = +key;
      // Arrays can only have up to 2^32 - 1 entries
      if (tmp > 2 ** 32 - 2) {
        break;
      }
      if (`${index}` !== key) {
        if (!isCanonicalIndexString(key)) {
          break;
        }
        const emptyItems = tmp - index;
        const ending = emptyItems > 1 ? "s" : "";
        push(output, `<${emptyItems} empty item${ending}>`);
        index = tmp;
        if (output.length === maxLength) {
          break;
        }
      }
      push(output, formatProperty(ctx, value, recurseTimes, key, kArrayType));
      index++;
    }
    const remaining = value.length - index;
    if (output.length !== maxLength) {
      if (remaining > 0) {
        const ending = remaining > 1 ? "s" : "";
        push(output, `<${remaining} empty item${ending}>`);
      }
    } else if (remaining > 0) {
      push(output, remainingText(remaining));
    }
    return output;
  }

  function formatArrayBuffer(ctx, value) {
    let buffer;
    try {
      buffer = new Uint8ArrayCtor(value);
    } catch {
      return ["(detached)"];
    }
    const n = MathMin(ctx.maxArrayLength, buffer.length);
    let str = "";
    for (let i = 0; i < n; i++) {
      const b = buffer[i];
      str += (b < 16 ? "0" : "") + hex(b) + " ";
    }
    str = trimSpaces(str);
    const remaining = buffer.length - ctx.maxArrayLength;
    if (remaining > 0) {
      str += ` ... ${remaining} more byte${remaining > 1 ? "s" : ""}`;
    }
    return [`[Uint8Contents]: <${str}>`];
  }

  function formatArray(ctx, value, recurseTimes) {
    const valLen = value.length;
    const len = MathMin(MathMax(0, ctx.maxArrayLength), valLen);

    const remaining = valLen - len;
    const output = [];
    for (let i = 0; i < len; i++) {
      // Special handle sparse arrays.
      if (!ObjectPrototypeHasOwnProperty(value, i)) {
        return formatSpecialArray(ctx, value, recurseTimes, len, output, i);
      }
      push(output, formatProperty(ctx, value, recurseTimes, i, kArrayType));
    }
    if (remaining > 0) {
      push(output, remainingText(remaining));
    }
    return output;
  }

  function formatTypedArray(value, length, ctx, ignored, recurseTimes) {
    const maxLength = MathMin(MathMax(0, ctx.maxArrayLength), length);
    const remaining = value.length - maxLength;
    const output = [];
    const elementFormatter = value.length > 0 && typeof value[0] === "number"
      ? formatNumber
      : formatBigInt;
    for (let i = 0; i < maxLength; ++i) {
      output[i] = elementFormatter(value[i]);
    }
    if (remaining > 0) {
      output[maxLength] = remainingText(remaining);
    }
    if (ctx.showHidden) {
      // .buffer goes last, it's not a primitive like the others.
      ctx.indentationLvl += 2;
      const hidden = ["BYTES_PER_ELEMENT", "length", "byteLength", "byteOffset", "buffer"];
      for (let i = 0; i < hidden.length; i++) {
        const key = hidden[i];
        const str = formatValue(ctx, value[key], recurseTimes, true);
        push(output, `[${key}]: ${str}`);
      }
      ctx.indentationLvl -= 2;
    }
    return output;
  }

  // `nullProto`: Node passes an iterator (whose `.size` is undefined) for
  // null-prototype sets, which disables the maxArrayLength cut.
  function formatSet(value, nullProto, ctx, ignored, recurseTimes) {
    const length = nullProto ? undefined : SetPrototypeGetSize(value);
    const maxLength = MathMin(MathMax(0, ctx.maxArrayLength), length);
    const remaining = length - maxLength;
    const output = [];
    ctx.indentationLvl += 2;
    let i = 0;
    const it = SetPrototypeValues(value);
    for (;;) {
      const step = SetIteratorPrototypeNext(it);
      if (step.done) break;
      if (i >= maxLength) break;
      push(output, formatValue(ctx, step.value, recurseTimes));
      i++;
    }
    if (remaining > 0) {
      push(output, remainingText(remaining));
    }
    ctx.indentationLvl -= 2;
    return output;
  }

  function formatMap(value, nullProto, ctx, ignored, recurseTimes) {
    const length = nullProto ? undefined : MapPrototypeGetSize(value);
    const maxLength = MathMin(MathMax(0, ctx.maxArrayLength), length);
    const remaining = length - maxLength;
    const output = [];
    ctx.indentationLvl += 2;
    let i = 0;
    const it = MapPrototypeEntries(value);
    for (;;) {
      const step = MapIteratorPrototypeNext(it);
      if (step.done) break;
      if (i >= maxLength) break;
      const entry = step.value;
      push(output,
        `${formatValue(ctx, entry[0], recurseTimes)} => ${formatValue(ctx, entry[1], recurseTimes)}`);
      i++;
    }
    if (remaining > 0) {
      push(output, remainingText(remaining));
    }
    ctx.indentationLvl -= 2;
    return output;
  }

  function formatSetIterInner(ctx, recurseTimes, entries, state) {
    const maxArrayLength = MathMax(ctx.maxArrayLength, 0);
    const maxLength = MathMin(maxArrayLength, entries.length);
    const output = [];
    ctx.indentationLvl += 2;
    for (let i = 0; i < maxLength; i++) {
      output[i] = formatValue(ctx, entries[i], recurseTimes);
    }
    ctx.indentationLvl -= 2;
    if (state === kWeak) {
      sortStrings(output);
    }
    const remaining = entries.length - maxLength;
    if (remaining > 0) {
      push(output, remainingText(remaining));
    }
    return output;
  }

  function formatMapIterInner(ctx, recurseTimes, entries, state) {
    const maxArrayLength = MathMax(ctx.maxArrayLength, 0);
    // Entries exist as [key1, val1, key2, val2, ...]
    const len = entries.length / 2;
    const remaining = len - maxArrayLength;
    const maxLength = MathMin(maxArrayLength, len);
    const output = [];
    let i = 0;
    ctx.indentationLvl += 2;
    if (state === kWeak) {
      for (; i < maxLength; i++) {
        const pos = i * 2;
        output[i] =
          `${formatValue(ctx, entries[pos], recurseTimes)} => ${formatValue(ctx, entries[pos + 1], recurseTimes)}`;
      }
      sortStrings(output);
    } else {
      for (; i < maxLength; i++) {
        const pos = i * 2;
        const res = [
          formatValue(ctx, entries[pos], recurseTimes),
          formatValue(ctx, entries[pos + 1], recurseTimes),
        ];
        output[i] = reduceToSingleString(ctx, res, "", ["[", "]"], kArrayExtrasType, recurseTimes);
      }
    }
    ctx.indentationLvl -= 2;
    if (remaining > 0) {
      push(output, remainingText(remaining));
    }
    return output;
  }

  function formatWeakCollection() {
    return ["<items unknown>"];
  }

  function formatWeakSet(ctx, value, recurseTimes) {
    if (previewEntries === undefined) return formatWeakCollection();
    const entries = previewEntries(value);
    return formatSetIterInner(ctx, recurseTimes, entries, kWeak);
  }

  function formatWeakMap(ctx, value, recurseTimes) {
    if (previewEntries === undefined) return formatWeakCollection();
    const entries = previewEntries(value);
    return formatMapIterInner(ctx, recurseTimes, entries, kWeak);
  }

  function formatIterator(braces, ctx, value, recurseTimes) {
    if (previewEntries === undefined) {
      // Without engine support the remaining entries cannot be read
      // without consuming the iterator.
      return ["<items unknown>"];
    }
    const details = previewEntries(value, true);
    const entries = details[0];
    const isKeyValue = details[1];
    if (isKeyValue) {
      // Mark entry iterators as such.
      if (StringPrototypeEndsWith(braces[0], " Iterator] {")) {
        braces[0] = `${StringPrototypeSlice(braces[0], 0, -12)} Entries] {`;
      }
      return formatMapIterInner(ctx, recurseTimes, entries, kMapEntries);
    }
    return formatSetIterInner(ctx, recurseTimes, entries, kIterator);
  }

  function formatPromise(ctx, value, recurseTimes) {
    let output;
    const details = getPromiseDetails(value);
    const state = details[0];
    const result = details[1];
    if (state === kPending) {
      output = ["<pending>"];
    } else {
      ctx.indentationLvl += 2;
      const str = formatValue(ctx, result, recurseTimes);
      ctx.indentationLvl -= 2;
      output = [state === kRejected ? `<rejected> ${str}` : str];
    }
    return output;
  }

  // ---------------------------------------------------------------------------
  // Properties.
  // ---------------------------------------------------------------------------
  function formatProperty(ctx, value, recurseTimes, key, type, desc, original = value) {
    let name, str;
    const extra = " ";
    desc = desc || ObjectGetOwnPropertyDescriptor(value, key) ||
      { value: value[key], enumerable: true };
    if (desc.get !== undefined && desc.get === nativeErrorStackGetter) {
      desc = { value: ReflectApply(desc.get, original, []), enumerable: desc.enumerable };
    }
    if (desc.value !== undefined) {
      const diff = (ctx.compact !== true || type !== kObjectType) ? 2 : 3;
      ctx.indentationLvl += diff;
      str = formatValue(ctx, desc.value, recurseTimes);
      // (breakLength is Infinity: never moved to its own line.)
      ctx.indentationLvl -= diff;
    } else if (desc.get !== undefined) {
      // `getters` is off: the getter is never called.
      str = desc.set !== undefined ? "[Getter/Setter]" : "[Getter]";
    } else if (desc.set !== undefined) {
      str = "[Setter]";
    } else {
      str = "undefined";
    }
    if (type === kArrayType) {
      return str;
    }
    if (typeof key === "symbol") {
      name = `[${escapeChars(SymbolPrototypeToString(key), 39)}]`;
    } else if (key === "__proto__") {
      name = "['__proto__']";
    } else if (desc.enumerable === false) {
      name = `[${escapeChars(key, 39)}]`;
    } else if (isIdentifierKey(key)) {
      name = key;
    } else {
      name = strEscape(key);
    }
    return `${name}:${extra}${str}`;
  }

  // ---------------------------------------------------------------------------
  // Output assembly.
  // ---------------------------------------------------------------------------
  function isZeroWidthCodePoint(code) {
    return code <= 0x1F ||
      (code >= 0x7F && code <= 0x9F) ||
      (code >= 0x300 && code <= 0x36F) ||
      (code >= 0x200B && code <= 0x200F) ||
      (code >= 0x20D0 && code <= 0x20FF) ||
      (code >= 0xFE00 && code <= 0xFE0F) ||
      (code >= 0xFE20 && code <= 0xFE2F) ||
      (code >= 0xE0100 && code <= 0xE01EF);
  }

  function isFullWidthCodePoint(code) {
    return code >= 0x1100 && (
      code <= 0x115f ||
      code === 0x2329 ||
      code === 0x232a ||
      (code >= 0x2e80 && code <= 0x3247 && code !== 0x303f) ||
      (code >= 0x3250 && code <= 0x4dbf) ||
      (code >= 0x4e00 && code <= 0xa4c6) ||
      (code >= 0xa960 && code <= 0xa97c) ||
      (code >= 0xac00 && code <= 0xd7a3) ||
      (code >= 0xf900 && code <= 0xfaff) ||
      (code >= 0xfe10 && code <= 0xfe19) ||
      (code >= 0xfe30 && code <= 0xfe6b) ||
      (code >= 0xff01 && code <= 0xff60) ||
      (code >= 0xffe0 && code <= 0xffe6) ||
      (code >= 0x1b000 && code <= 0x1b001) ||
      (code >= 0x1f200 && code <= 0x1f251) ||
      (code >= 0x1f300 && code <= 0x1f64f) ||
      (code >= 0x20000 && code <= 0x3fffd)
    );
  }

  // Node's non-ICU getStringWidth (colors are never used, so no VT stripping).
  function getStringWidth(str) {
    let width = 0;
    let i = 0;
    // ASCII fast path (identical to Node's ICU variant).
    for (; i < str.length; i++) {
      const code = StringPrototypeCharCodeAt(str, i);
      if (code >= 127) break;
      width += code >= 32 ? 1 : 0;
    }
    if (i === str.length) return width;
    str = StringPrototypeNormalize(StringPrototypeSlice(str, i), "NFC");
    for (let j = 0; j < str.length; j++) {
      const code = StringPrototypeCodePointAt(str, j);
      if (code > 0xffff) j++;
      if (isFullWidthCodePoint(code)) {
        width += 2;
      } else if (!isZeroWidthCodePoint(code)) {
        width++;
      }
    }
    return width;
  }

  function groupArrayElements(ctx, output, value) {
    let totalLength = 0;
    let maxLength = 0;
    let i = 0;
    let outputLength = output.length;
    if (ctx.maxArrayLength < output.length) {
      // This makes sure the "... n more items" part is not taken into account.
      outputLength--;
    }
    const separatorSpace = 2; // Add 1 for the space and 1 for the separator.
    const dataLen = [];
    for (; i < outputLength; i++) {
      const len = getStringWidth(output[i]);
      dataLen[i] = len;
      totalLength += len + separatorSpace;
      if (maxLength < len) maxLength = len;
    }
    const actualMax = maxLength + separatorSpace;
    if (actualMax * 3 + ctx.indentationLvl < ctx.breakLength &&
        (totalLength / actualMax > 5 || maxLength <= 6)) {
      const approxCharHeights = 2.5;
      const averageBias = MathSqrt(actualMax - totalLength / output.length);
      const biasedMax = MathMax(actualMax - 3 - averageBias, 1);
      const columns = MathMin(
        MathRound(MathSqrt(approxCharHeights * biasedMax * outputLength) / biasedMax),
        MathFloor((ctx.breakLength - ctx.indentationLvl) / actualMax),
        ctx.compact * 4,
        15,
      );
      if (columns <= 1) {
        return output;
      }
      const tmp = [];
      const maxLineLength = [];
      for (let c = 0; c < columns; c++) {
        let lineMaxLength = 0;
        for (let j = c; j < output.length; j += columns) {
          if (dataLen[j] > lineMaxLength) lineMaxLength = dataLen[j];
        }
        maxLineLength[c] = lineMaxLength + separatorSpace;
      }
      let order = StringPrototypePadStart;
      if (value !== undefined) {
        for (let k = 0; k < output.length; k++) {
          if (typeof value[k] !== "number" && typeof value[k] !== "bigint") {
            order = StringPrototypePadEnd;
            break;
          }
        }
      }
      for (let k = 0; k < outputLength; k += columns) {
        const max = MathMin(k + columns, outputLength);
        let str = "";
        let j = k;
        for (; j < max - 1; j++) {
          const padding = maxLineLength[j - k] + output[j].length - dataLen[j];
          str += order(`${output[j]}, `, padding, " ");
        }
        if (order === StringPrototypePadStart) {
          const padding = maxLineLength[j - k] + output[j].length - dataLen[j] - separatorSpace;
          str += StringPrototypePadStart(output[j], padding, " ");
        } else {
          str += output[j];
        }
        push(tmp, str);
      }
      if (ctx.maxArrayLength < output.length) {
        push(tmp, output[outputLength]);
      }
      output = tmp;
    }
    return output;
  }

  function isBelowBreakLength(ctx, output, start, base) {
    let totalLength = output.length + start;
    if (totalLength + output.length > ctx.breakLength) return false;
    for (let i = 0; i < output.length; i++) {
      totalLength += output[i].length;
      if (totalLength > ctx.breakLength) {
        return false;
      }
    }
    // Do not line up properties on the same line if `base` contains line breaks.
    return base === "" || !StringPrototypeIncludes(base, "\n");
  }

  function reduceToSingleString(ctx, output, base, braces, extrasType, recurseTimes, value) {
    if (ctx.compact !== true) {
      if (typeof ctx.compact === "number" && ctx.compact >= 1) {
        const entries = output.length;
        if (extrasType === kArrayExtrasType && entries > 6) {
          output = groupArrayElements(ctx, output, value);
        }
        if (ctx.currentDepth - recurseTimes < ctx.compact && entries === output.length) {
          const start = output.length + ctx.indentationLvl + braces[0].length + base.length + 10;
          if (isBelowBreakLength(ctx, output, start, base)) {
            const joinedOutput = join(output, ", ");
            if (!StringPrototypeIncludes(joinedOutput, "\n")) {
              return `${base ? `${base} ` : ""}${braces[0]} ${joinedOutput}` + ` ${braces[1]}`;
            }
          }
        }
      }
      const indentation = `\n${StringPrototypeRepeat(" ", ctx.indentationLvl)}`;
      return `${base ? `${base} ` : ""}${braces[0]}${indentation}  ` +
        `${join(output, `,${indentation}  `)}${indentation}${braces[1]}`;
    }
    if (isBelowBreakLength(ctx, output, 0, base)) {
      return `${braces[0]}${base ? ` ${base}` : ""} ${join(output, ", ")} ` + braces[1];
    }
    const indentation = StringPrototypeRepeat(" ", ctx.indentationLvl);
    const ln = base === "" && braces[0].length === 1
      ? " "
      : `${base ? ` ${base}` : ""}\n${indentation}  `;
    return `${braces[0]}${ln}${join(output, `,\n${indentation}  `)} ${braces[1]}`;
  }

  // ---------------------------------------------------------------------------
  // util.formatWithOptions.
  // ---------------------------------------------------------------------------
  function hasBuiltInToString(value) {
    // Prevent triggering proxy traps.
    const proxyTarget = getProxyDetails(value, false);
    if (proxyTarget !== undefined) {
      if (proxyTarget === null) {
        return true;
      }
      value = proxyTarget;
    }

    let hasOwnToString = ObjectPrototypeHasOwnProperty;
    let hasOwnToPrimitive = ObjectPrototypeHasOwnProperty;

    // Count objects without `toString` and `Symbol.toPrimitive` function as built-in.
    if (typeof value.toString !== "function") {
      if (typeof value[SymbolToPrimitive] !== "function") {
        return true;
      } else if (ObjectPrototypeHasOwnProperty(value, SymbolToPrimitive)) {
        return false;
      }
      hasOwnToString = returnFalse;
    } else if (ObjectPrototypeHasOwnProperty(value, "toString")) {
      return false;
    } else if (typeof value[SymbolToPrimitive] !== "function") {
      hasOwnToPrimitive = returnFalse;
    } else if (ObjectPrototypeHasOwnProperty(value, SymbolToPrimitive)) {
      return false;
    }

    // Find the object that has the `toString` property or `Symbol.toPrimitive`
    // property as own property in the prototype chain.
    let pointer = value;
    do {
      pointer = ObjectGetPrototypeOf(pointer);
    } while (!hasOwnToString(pointer, "toString") &&
             !hasOwnToPrimitive(pointer, SymbolToPrimitive));

    // Check closer if the object is a built-in.
    const descriptor = ObjectGetOwnPropertyDescriptor(pointer, "constructor");
    return descriptor !== undefined &&
      typeof descriptor.value === "function" &&
      SetPrototypeHas(builtInObjects, descriptor.value.name);
  }

  const firstErrorLine = (error) => splitString(StringCtor(error.message), "\n")[0];
  let CIRCULAR_ERROR_MESSAGE;
  function tryStringify(arg) {
    try {
      return JSONStringify(arg);
    } catch (err) {
      // Populate the circular error message lazily
      if (!CIRCULAR_ERROR_MESSAGE) {
        try {
          const a = {};
          a.a = a;
          JSONStringify(a);
        } catch (circularError) {
          CIRCULAR_ERROR_MESSAGE = firstErrorLine(circularError);
        }
      }
      if (err.name === "TypeError" && firstErrorLine(err) === CIRCULAR_ERROR_MESSAGE) {
        return "[Circular]";
      }
      throw err;
    }
  }

  const optsS = ObjectFreeze({ __proto__: null, compact: 3, depth: 0 });
  const optsO = ObjectFreeze({ __proto__: null, showHidden: true, showProxy: true, depth: 4 });

  // util.formatWithOptions({breakLength: Infinity, compact: true,
  // customInspect: false}, ...args)
  function formatWithOptions(args) {
    const first = args[0];
    let a = 0;
    let str = "";
    let joinStr = "";

    if (typeof first === "string") {
      if (args.length === 1) {
        return first;
      }
      let tempStr;
      let lastPos = 0;

      for (let i = 0; i < first.length - 1; i++) {
        if (StringPrototypeCharCodeAt(first, i) === 37) { // '%'
          const nextChar = StringPrototypeCharCodeAt(first, ++i);
          if (a + 1 !== args.length) {
            switch (nextChar) {
              case 115: { // 's'
                const tempArg = args[++a];
                if (typeof tempArg === "number") {
                  tempStr = formatNumber(tempArg);
                } else if (typeof tempArg === "bigint") {
                  tempStr = formatBigInt(tempArg);
                } else if (typeof tempArg !== "object" ||
                           tempArg === null ||
                           !hasBuiltInToString(tempArg)) {
                  tempStr = StringCtor(tempArg);
                } else {
                  tempStr = inspect(tempArg, optsS);
                }
                break;
              }
              case 106: // 'j'
                tempStr = tryStringify(args[++a]);
                break;
              case 100: { // 'd'
                const tempNum = args[++a];
                if (typeof tempNum === "bigint") {
                  tempStr = formatBigInt(tempNum);
                } else if (typeof tempNum === "symbol") {
                  tempStr = "NaN";
                } else {
                  tempStr = formatNumber(NumberCtor(tempNum));
                }
                break;
              }
              case 79: // 'O'
                tempStr = inspect(args[++a]);
                break;
              case 111: // 'o'
                tempStr = inspect(args[++a], optsO);
                break;
              case 105: { // 'i'
                const tempInteger = args[++a];
                if (typeof tempInteger === "bigint") {
                  tempStr = formatBigInt(tempInteger);
                } else if (typeof tempInteger === "symbol") {
                  tempStr = "NaN";
                } else {
                  tempStr = formatNumber(NumberParseInt(tempInteger));
                }
                break;
              }
              case 102: { // 'f'
                const tempFloat = args[++a];
                if (typeof tempFloat === "symbol") {
                  tempStr = "NaN";
                } else {
                  tempStr = formatNumber(NumberParseFloat(tempFloat));
                }
                break;
              }
              case 99: // 'c'
                a += 1;
                tempStr = "";
                break;
              case 37: // '%'
                str += StringPrototypeSlice(first, lastPos, i);
                lastPos = i + 1;
                continue;
              default: // Any other character is not a correct placeholder
                continue;
            }
            if (lastPos !== i - 1) {
              str += StringPrototypeSlice(first, lastPos, i - 1);
            }
            str += tempStr;
            lastPos = i + 1;
          } else if (nextChar === 37) {
            str += StringPrototypeSlice(first, lastPos, i);
            lastPos = i + 1;
          }
        }
      }
      if (lastPos !== 0) {
        a++;
        joinStr = " ";
        if (lastPos < first.length) {
          str += StringPrototypeSlice(first, lastPos);
        }
      }
    }

    while (a < args.length) {
      const value = args[a];
      str += joinStr;
      str += typeof value !== "string" ? inspect(value) : value;
      joinStr = " ";
      a++;
    }
    return str;
  }

  // ---------------------------------------------------------------------------
  // Payloads (api.md §7.5, §7.6).
  // ---------------------------------------------------------------------------
  const PREVIEW_MAX_CODE_POINTS = 10000;

  // First 10,000 code points, then "…" if anything was cut.
  function truncateCodePoints(str) {
    if (str.length <= PREVIEW_MAX_CODE_POINTS) return str;
    let count = 0;
    let i = 0;
    while (i < str.length) {
      if (count === PREVIEW_MAX_CODE_POINTS) {
        return `${StringPrototypeSlice(str, 0, i)}\u2026`;
      }
      const c = StringPrototypeCharCodeAt(str, i);
      if (c >= 0xd800 && c <= 0xdbff && i + 1 < str.length) {
        const d = StringPrototypeCharCodeAt(str, i + 1);
        i += (d >= 0xdc00 && d <= 0xdfff) ? 2 : 1;
      } else {
        i++;
      }
      count++;
    }
    return str;
  }

  // Replace JSON `\udXXX` escapes of lone surrogates (as produced by a
  // well-formed JSON.stringify) with `\ufffd`.
  function fixJsonSurrogateEscapes(json) {
    if (!StringPrototypeIncludes(json, "\\u")) return wellFormed(json);
    let out = "";
    let last = 0;
    for (let i = 0; i < json.length; i++) {
      if (StringPrototypeCharCodeAt(json, i) !== 92) continue; // '\'
      const next = StringPrototypeCharCodeAt(json, i + 1);
      if (next === 117 && i + 5 < json.length) { // "u"
        const code = NumberParseInt(StringPrototypeSlice(json, i + 2, i + 6), 16);
        if (code >= 0xd800 && code <= 0xdfff) {
          out += `${StringPrototypeSlice(json, last, i)}\\ufffd`;
          last = i + 6;
        }
        i += 5;
      } else {
        i++; // skip the escaped character
      }
    }
    if (last !== 0) json = out + StringPrototypeSlice(json, last);
    return wellFormed(json);
  }

  function previewText(v) {
    const text = typeof v === "string" ? v : inspect(v);
    return truncateCodePoints(wellFormed(text));
  }

  function valueType(v) {
    if (v === null) return "null";
    let isArray = false;
    try {
      isArray = ArrayIsArray(v);
    } catch {
      // revoked proxy
    }
    if (isArray) return "array";
    return typeof v;
  }

  // {"type":T,"preview":P,"json":J} as compact JSON text. Exceptions thrown
  // while computing the preview propagate; a throwing JSON.stringify gives
  // "json": null.
  function previewValue(v) {
    const type = valueType(v);
    const preview = previewText(v);
    let json = null;
    try {
      const j = JSONStringify(v);
      if (typeof j === "string") json = fixJsonSurrogateEscapes(j);
    } catch {
      json = null;
    }
    return `{"type":${JSONStringify(type)},"preview":${JSONStringify(preview)},"json":${json === null ? "null" : json}}`;
  }

  const RENDER_FAILED = "<exception while rendering exception>";

  // {"name","message","stack"} as compact JSON text; never throws.
  function exceptionPayload(e) {
    let name = null;
    let message = RENDER_FAILED;
    let stack = null;
    let errorLike = false;
    try {
      if ((typeof e === "object" && e !== null) || typeof e === "function") {
        let isErr = false;
        try {
          isErr = isNativeError(e) || isInstanceof(e, ErrorCtor);
        } catch {
          isErr = false;
        }
        if (!isErr) {
          try {
            isErr = typeof e.message === "string";
          } catch {
            isErr = false;
          }
        }
        errorLike = isErr;
      }
    } catch {
      errorLike = false;
    }
    if (errorLike) {
      try {
        const n = e.name;
        name = typeof n === "string" ? wellFormed(n) : null;
      } catch {
        name = null;
      }
      try {
        message = wellFormed(StringCtor(e.message));
      } catch {
        message = RENDER_FAILED;
      }
      try {
        const s = e.stack;
        stack = typeof s === "string" ? wellFormed(repairHeader(e, s)) : null;
      } catch {
        stack = null;
      }
    } else {
      try {
        message = previewText(e);
      } catch {
        message = RENDER_FAILED;
      }
    }
    try {
      return `{"name":${name === null ? "null" : JSONStringify(name)},` +
        `"message":${JSONStringify(message)},` +
        `"stack":${stack === null ? "null" : JSONStringify(stack)}}`;
    } catch {
      return `{"name":null,"message":${JSONStringify(RENDER_FAILED)},"stack":null}`;
    }
  }

  return ObjectFreeze({
    __proto__: null,
    inspect: (value) => inspect(value),
    formatWithOptions,
    previewValue,
    exceptionPayload,
    wellFormed,
  });
})
