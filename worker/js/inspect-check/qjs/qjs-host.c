// worker/js/inspect-check/qjs/qjs-host.c
//
// A tiny QuickJS-ng runner for the inspect checker: it compiles the engine
// sources vendored by the `v8x` crate (the same QuickJS-ng deno_core's
// QuickJS backend links) into one binary, installs a `host` object that
// mirrors the deno_core type helpers inspect.js expects, and runs a driver
// script (run-fixtures.js). See build.sh. Test tool only; not shipped.
//
// Globals for the driver: host, print(s), readFile(path) -> string,
// evalScript(src, name) -> completion value (throws on error),
// drainJobs() runs pending promise jobs.
#include "quickjs.c"

// Stubs for the callbacks the v8x shim normally provides from Rust.
void v82jsc_coverage_function(const void *k, const char *f, const char *fn,
                              const char *s, size_t l, int a, int b) {}
void v82jsc_coverage_location(const void *k, int a, int b) {}
void v82jsc_coverage_hit(const void *k, uint32_t pc, int a, int b) {}
void v82jsc_coverage_range(const void *k, uint32_t a, uint32_t b) {}
void v82jsc_coverage_range_hit(const void *k, uint32_t a, uint32_t b) {}
void v82jsc_coverage_function_hit(const void *k) {}
void v82jsc_debugger_statement(void) {}
JSValue v82jsc_throw_type_error_not_a_function_at(JSContext *ctx, const char *f,
                                                  int line, int col) {
  return JS_ThrowTypeError(ctx, "not a function");
}
int v82jsc_snapshot_write_host_object(JSContext *ctx, JSValueConst o,
                                      uint8_t *b, size_t *s) { return -1; }
int v82jsc_snapshot_read_host_object(JSContext *ctx, const uint8_t *b,
                                     size_t s, JSValue *o) { return -1; }
bool v82jsc_snapshot_host_object_has_prototype(JSValueConst o) { return false; }
int v82jsc_locale_compare_utf32(const uint32_t *a, int al, const uint32_t *b,
                                int bl, int numeric) {
  for (int i = 0; i < al && i < bl; i++)
    if (a[i] != b[i]) return a[i] < b[i] ? -1 : 1;
  return al < bl ? -1 : al > bl;
}

static JSValue bool_of(int b) { return b ? JS_TRUE : JS_FALSE; }
static JSClassID cid(JSValueConst v) {
  return JS_VALUE_GET_TAG(v) == JS_TAG_OBJECT ? JS_VALUE_GET_OBJ(v)->class_id : 0;
}
#define CLASS_CHECK(fname, cond)                                               \
  static JSValue fname(JSContext *ctx, JSValueConst this_val, int argc,       \
                       JSValueConst *argv) {                                  \
    JSClassID c = argc > 0 ? cid(argv[0]) : 0;                                \
    (void)c;                                                                  \
    return bool_of(argc > 0 && (cond));                                       \
  }

CLASS_CHECK(h_isProxy, c == JS_CLASS_PROXY)
CLASS_CHECK(h_isDate, c == JS_CLASS_DATE)
CLASS_CHECK(h_isRegExp, c == JS_CLASS_REGEXP)
CLASS_CHECK(h_isMap, c == JS_CLASS_MAP)
CLASS_CHECK(h_isSet, c == JS_CLASS_SET)
CLASS_CHECK(h_isWeakMap, c == JS_CLASS_WEAKMAP)
CLASS_CHECK(h_isWeakSet, c == JS_CLASS_WEAKSET)
CLASS_CHECK(h_isPromise, c == JS_CLASS_PROMISE)
CLASS_CHECK(h_isTypedArray, c >= JS_CLASS_UINT8C_ARRAY && c <= JS_CLASS_FLOAT64_ARRAY)
CLASS_CHECK(h_isArrayBuffer, c == JS_CLASS_ARRAY_BUFFER)
CLASS_CHECK(h_isSharedArrayBuffer, c == JS_CLASS_SHARED_ARRAY_BUFFER)
CLASS_CHECK(h_isDataView, c == JS_CLASS_DATAVIEW)
CLASS_CHECK(h_isAsyncFunction, c == JS_CLASS_ASYNC_FUNCTION || c == JS_CLASS_ASYNC_GENERATOR_FUNCTION)
CLASS_CHECK(h_isGeneratorFunction, c == JS_CLASS_GENERATOR_FUNCTION || c == JS_CLASS_ASYNC_GENERATOR_FUNCTION)
CLASS_CHECK(h_isGeneratorObject, c == JS_CLASS_GENERATOR || c == JS_CLASS_ASYNC_GENERATOR)
CLASS_CHECK(h_isBoxedPrimitive, c == JS_CLASS_NUMBER || c == JS_CLASS_STRING || c == JS_CLASS_BOOLEAN || c == JS_CLASS_SYMBOL || c == JS_CLASS_BIG_INT)
CLASS_CHECK(h_isNumberObject, c == JS_CLASS_NUMBER)
CLASS_CHECK(h_isStringObject, c == JS_CLASS_STRING)
CLASS_CHECK(h_isBooleanObject, c == JS_CLASS_BOOLEAN)
CLASS_CHECK(h_isBigIntObject, c == JS_CLASS_BIG_INT)
CLASS_CHECK(h_isSymbolObject, c == JS_CLASS_SYMBOL)
CLASS_CHECK(h_isNativeError, c == JS_CLASS_ERROR)
CLASS_CHECK(h_isArgumentsObject, c == JS_CLASS_ARGUMENTS || c == JS_CLASS_MAPPED_ARGUMENTS)
CLASS_CHECK(h_isMapIterator, c == JS_CLASS_MAP_ITERATOR)
CLASS_CHECK(h_isSetIterator, c == JS_CLASS_SET_ITERATOR)

static JSValue h_getPromiseDetails(JSContext *ctx, JSValueConst this_val,
                                   int argc, JSValueConst *argv) {
  if (argc < 1 || cid(argv[0]) != JS_CLASS_PROMISE) return JS_UNDEFINED;
  JSPromiseStateEnum st = JS_PromiseState(ctx, argv[0]);
  JSValue arr = JS_NewArray(ctx);
  int state = st == JS_PROMISE_PENDING ? 0 : st == JS_PROMISE_FULFILLED ? 1 : 2;
  JS_SetPropertyUint32(ctx, arr, 0, JS_NewInt32(ctx, state));
  if (state != 0) JS_SetPropertyUint32(ctx, arr, 1, JS_PromiseResult(ctx, argv[0]));
  return arr;
}

static JSValue h_getProxyDetails(JSContext *ctx, JSValueConst this_val,
                                 int argc, JSValueConst *argv) {
  if (argc < 1 || cid(argv[0]) != JS_CLASS_PROXY) return JS_NULL;
  JSProxyData *s = JS_VALUE_GET_OBJ(argv[0])->u.proxy_data;
  JSValue arr = JS_NewArray(ctx);
  if (s->is_revoked) {
    JS_SetPropertyUint32(ctx, arr, 0, JS_NULL);
    JS_SetPropertyUint32(ctx, arr, 1, JS_NULL);
  } else {
    JS_SetPropertyUint32(ctx, arr, 0, js_dup(s->target));
    JS_SetPropertyUint32(ctx, arr, 1, js_dup(s->handler));
  }
  return arr;
}

static JSValue g_print(JSContext *ctx, JSValueConst this_val, int argc,
                       JSValueConst *argv) {
  size_t len;
  const char *s = JS_ToCStringLen(ctx, &len, argv[0]);
  if (!s) return JS_EXCEPTION;
  fwrite(s, 1, len, stdout);
  fputc('\n', stdout);
  JS_FreeCString(ctx, s);
  return JS_UNDEFINED;
}

static JSValue g_readFile(JSContext *ctx, JSValueConst this_val, int argc,
                          JSValueConst *argv) {
  const char *path = JS_ToCString(ctx, argv[0]);
  if (!path) return JS_EXCEPTION;
  FILE *f = fopen(path, "rb");
  if (!f) {
    JS_FreeCString(ctx, path);
    return JS_ThrowTypeError(ctx, "cannot open file");
  }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc(n + 1);
  size_t got = fread(buf, 1, n, f);
  fclose(f);
  JS_FreeCString(ctx, path);
  JSValue r = JS_NewStringLen(ctx, buf, got);
  free(buf);
  return r;
}

static JSValue g_evalScript(JSContext *ctx, JSValueConst this_val, int argc,
                            JSValueConst *argv) {
  size_t len;
  const char *src = JS_ToCStringLen(ctx, &len, argv[0]);
  if (!src) return JS_EXCEPTION;
  const char *name = argc > 1 ? JS_ToCString(ctx, argv[1]) : NULL;
  JSValue r = JS_Eval(ctx, src, len, name ? name : "<eval>", JS_EVAL_TYPE_GLOBAL);
  JS_FreeCString(ctx, src);
  if (name) JS_FreeCString(ctx, name);
  return r;
}

static JSValue g_drainJobs(JSContext *ctx, JSValueConst this_val, int argc,
                           JSValueConst *argv) {
  JSContext *c;
  while (JS_IsJobPending(JS_GetRuntime(ctx))) {
    if (JS_ExecutePendingJob(JS_GetRuntime(ctx), &c) < 0) break;
  }
  return JS_UNDEFINED;
}

static const JSCFunctionListEntry host_funcs[] = {
  JS_CFUNC_DEF("isProxy", 1, h_isProxy),
  JS_CFUNC_DEF("isDate", 1, h_isDate),
  JS_CFUNC_DEF("isRegExp", 1, h_isRegExp),
  JS_CFUNC_DEF("isMap", 1, h_isMap),
  JS_CFUNC_DEF("isSet", 1, h_isSet),
  JS_CFUNC_DEF("isWeakMap", 1, h_isWeakMap),
  JS_CFUNC_DEF("isWeakSet", 1, h_isWeakSet),
  JS_CFUNC_DEF("isPromise", 1, h_isPromise),
  JS_CFUNC_DEF("isTypedArray", 1, h_isTypedArray),
  JS_CFUNC_DEF("isArrayBuffer", 1, h_isArrayBuffer),
  JS_CFUNC_DEF("isSharedArrayBuffer", 1, h_isSharedArrayBuffer),
  JS_CFUNC_DEF("isDataView", 1, h_isDataView),
  JS_CFUNC_DEF("isAsyncFunction", 1, h_isAsyncFunction),
  JS_CFUNC_DEF("isGeneratorFunction", 1, h_isGeneratorFunction),
  JS_CFUNC_DEF("isGeneratorObject", 1, h_isGeneratorObject),
  JS_CFUNC_DEF("isBoxedPrimitive", 1, h_isBoxedPrimitive),
  JS_CFUNC_DEF("isNumberObject", 1, h_isNumberObject),
  JS_CFUNC_DEF("isStringObject", 1, h_isStringObject),
  JS_CFUNC_DEF("isBooleanObject", 1, h_isBooleanObject),
  JS_CFUNC_DEF("isBigIntObject", 1, h_isBigIntObject),
  JS_CFUNC_DEF("isSymbolObject", 1, h_isSymbolObject),
  JS_CFUNC_DEF("isNativeError", 1, h_isNativeError),
  JS_CFUNC_DEF("isArgumentsObject", 1, h_isArgumentsObject),
  JS_CFUNC_DEF("isMapIterator", 1, h_isMapIterator),
  JS_CFUNC_DEF("isSetIterator", 1, h_isSetIterator),
  JS_CFUNC_DEF("getPromiseDetails", 1, h_getPromiseDetails),
  JS_CFUNC_DEF("getProxyDetails", 1, h_getProxyDetails),
};

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s driver.js [args...]\n", argv[0]);
    return 2;
  }
  JSRuntime *rt = JS_NewRuntime();
  JSContext *ctx = JS_NewContext(rt);
  JSValue global = JS_GetGlobalObject(ctx);
  JSValue host = JS_NewObject(ctx);
  JS_SetPropertyFunctionList(ctx, host, host_funcs, countof(host_funcs));
  JS_SetPropertyStr(ctx, global, "host", host);
  JS_SetPropertyStr(ctx, global, "print", JS_NewCFunction(ctx, g_print, "print", 1));
  JS_SetPropertyStr(ctx, global, "readFile", JS_NewCFunction(ctx, g_readFile, "readFile", 1));
  JS_SetPropertyStr(ctx, global, "evalScript", JS_NewCFunction(ctx, g_evalScript, "evalScript", 2));
  JS_SetPropertyStr(ctx, global, "drainJobs", JS_NewCFunction(ctx, g_drainJobs, "drainJobs", 0));
  JSValue args = JS_NewArray(ctx);
  for (int i = 2; i < argc; i++) JS_SetPropertyUint32(ctx, args, i - 2, JS_NewString(ctx, argv[i]));
  JS_SetPropertyStr(ctx, global, "scriptArgs", args);
  JS_FreeValue(ctx, global);

  FILE *f = fopen(argv[1], "rb");
  if (!f) { perror(argv[1]); return 2; }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc(n + 1);
  size_t got = fread(buf, 1, n, f);
  buf[got] = 0;
  fclose(f);
  JSValue r = JS_Eval(ctx, buf, got, argv[1], JS_EVAL_TYPE_GLOBAL);
  int status = 0;
  if (JS_IsException(r)) {
    JSValue e = JS_GetException(ctx);
    const char *s = JS_ToCString(ctx, e);
    JSValue st = JS_GetPropertyStr(ctx, e, "stack");
    const char *ss = JS_ToCString(ctx, st);
    fprintf(stderr, "uncaught: %s\n%s\n", s ? s : "?", ss ? ss : "");
    status = 1;
  } else {
    JSValue code = JS_GetPropertyStr(ctx, JS_GetGlobalObject(ctx), "exitCode");
    int32_t c = 0;
    if (JS_ToInt32(ctx, &c, code) == 0) status = c;
  }
  fflush(stdout);
  _exit(status); /* skip teardown: leak checks are not the point here */
}
