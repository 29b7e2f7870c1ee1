#!/bin/sh
# worker/js/inspect-check/qjs/build.sh
# Builds the optional QuickJS-ng runner used by run-fixtures.js from the
# QuickJS-ng sources vendored in the cargo registry's v8x crate (no network,
# no cargo). Output: $OUT (default /tmp/inspect-qjs-host).
set -eu
OUT=${OUT:-/tmp/inspect-qjs-host}
Q=${QUICKJS_DIR:-$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/v8x-*/vendor/quickjs-ng 2>/dev/null | tail -n 1)}
[ -f "$Q/quickjs.c" ] || { echo "QuickJS-ng sources not found (set QUICKJS_DIR)" >&2; exit 1; }
HERE=$(cd "$(dirname "$0")" && pwd)
cc -O1 -D_GNU_SOURCE -DNDEBUG -w -I"$Q" -o "$OUT" "$HERE/qjs-host.c" \
  "$Q/libregexp.c" "$Q/libunicode.c" "$Q/dtoa.c" -lm -lpthread
echo "built $OUT from $Q"
