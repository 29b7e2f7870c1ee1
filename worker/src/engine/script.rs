//! Thin glue over deno_core's `v8` API: run a classic script or call a function, and tell a
//! value, a thrown exception and a termination apart. Works on both engine backends.

use deno_core::{JsRuntime, v8};

/// How a script or call ended.
pub(crate) enum Completion {
    /// It returned this value.
    Value(v8::Global<v8::Value>),
    /// It threw this value.
    Threw(v8::Global<v8::Value>),
    /// The engine was told to terminate.
    Terminated,
}

/// An argument for `call`.
pub(crate) enum Arg<'a> {
    Str(&'a str),
    Bool(bool),
    Val(&'a v8::Global<v8::Value>),
}

/// Turns the state of a TryCatch scope after a failed call into a `Completion`.
macro_rules! caught {
    ($tc:expr) => {{
        let tc = $tc;
        if tc.has_terminated() || tc.is_execution_terminating() {
            Completion::Terminated
        } else {
            match tc.exception() {
                Some(exception) => Completion::Threw(v8::Global::new(tc, exception)),
                None => Completion::Terminated,
            }
        }
    }};
}

/// A `RangeError` for a string the engine cannot hold.
macro_rules! too_long {
    ($tc:expr) => {{
        let tc = $tc;
        let message = v8::String::new(tc, "string is too long for the engine")
            .unwrap_or_else(|| v8::String::empty(tc));
        let error = v8::Exception::range_error(tc, message);
        Completion::Threw(v8::Global::new(tc, error))
    }};
}

/// Compiles and runs `source` as a classic script named `name` in the runtime's global scope.
pub(crate) fn run(runtime: &mut JsRuntime, name: &str, source: &str) -> Completion {
    deno_core::scope!(scope, runtime);
    v8::tc_scope!(let tc, scope);
    let Some(source) = v8::String::new(tc, source) else {
        return too_long!(tc);
    };
    let Some(name) = v8::String::new(tc, name) else {
        return too_long!(tc);
    };
    let origin = v8::ScriptOrigin::new(
        tc,
        name.into(),
        0,
        0,
        false,
        0,
        None,
        false,
        false,
        false,
        None,
    );
    let result = v8::Script::compile(tc, source, Some(&origin)).and_then(|script| script.run(tc));
    match result {
        Some(value) => Completion::Value(v8::Global::new(tc, value)),
        None => caught!(tc),
    }
}

/// Calls `function` with `args` and `undefined` as `this`.
pub(crate) fn call(
    runtime: &mut JsRuntime,
    function: &v8::Global<v8::Function>,
    args: &[Arg<'_>],
) -> Completion {
    deno_core::scope!(scope, runtime);
    v8::tc_scope!(let tc, scope);
    let mut locals: Vec<v8::Local<'_, v8::Value>> = Vec::with_capacity(args.len());
    for arg in args {
        let local: v8::Local<'_, v8::Value> = match arg {
            Arg::Str(text) => match v8::String::new(tc, text) {
                Some(s) => s.into(),
                None => return too_long!(tc),
            },
            Arg::Bool(flag) => v8::Boolean::new(tc, *flag).into(),
            Arg::Val(global) => v8::Local::new(tc, *global),
        };
        locals.push(local);
    }
    let function = v8::Local::new(tc, function);
    let receiver = v8::undefined(tc).into();
    match function.call(tc, receiver, &locals) {
        Some(value) => Completion::Value(v8::Global::new(tc, value)),
        None => caught!(tc),
    }
}

/// The value as a Rust string (`String(value)`; lone surrogates become U+FFFD).
pub(crate) fn to_string(runtime: &mut JsRuntime, value: &v8::Global<v8::Value>) -> String {
    deno_core::scope!(scope, runtime);
    let local = v8::Local::new(scope, value);
    local.to_rust_string_lossy(scope)
}

/// Reads element `index` of an array value.
pub(crate) fn index(
    runtime: &mut JsRuntime,
    value: &v8::Global<v8::Value>,
    index: u32,
) -> Option<v8::Global<v8::Value>> {
    deno_core::scope!(scope, runtime);
    let local = v8::Local::new(scope, value);
    let object = local.to_object(scope)?;
    let element = object.get_index(scope, index)?;
    Some(v8::Global::new(scope, element))
}

/// The value as an integer (0 when it is not a number).
pub(crate) fn to_i64(runtime: &mut JsRuntime, value: &v8::Global<v8::Value>) -> i64 {
    deno_core::scope!(scope, runtime);
    let local = v8::Local::new(scope, value);
    if local.is_number() {
        local.integer_value(scope).unwrap_or(0)
    } else {
        0
    }
}

/// Extracts the named function members of an object.
pub(crate) fn functions<const N: usize>(
    runtime: &mut JsRuntime,
    object: &v8::Global<v8::Value>,
    names: [&str; N],
) -> Result<[v8::Global<v8::Function>; N], String> {
    deno_core::scope!(scope, runtime);
    let local = v8::Local::new(scope, object);
    let object = local
        .to_object(scope)
        .ok_or_else(|| "host api is not an object".to_string())?;
    let mut found = Vec::with_capacity(N);
    for name in names {
        let key = v8::String::new(scope, name).ok_or_else(|| format!("bad key {name}"))?;
        let value = object
            .get(scope, key.into())
            .ok_or_else(|| format!("host api has no {name}"))?;
        let function = v8::Local::<v8::Function>::try_from(value)
            .map_err(|_| format!("host api member {name} is not a function"))?;
        found.push(v8::Global::new(scope, function));
    }
    found
        .try_into()
        .map_err(|_| "host api arity mismatch".to_string())
}
