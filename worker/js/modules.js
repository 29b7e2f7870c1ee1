// worker/js/modules.js
//
// The JavaScript side of the native modules of spec §8.3: `fs`, `exec` and `database`. Each
// function checks and shapes its arguments, calls a host op (worker/src/engine/ops.rs) and turns
// the result into JavaScript values. The ops enforce every grant themselves; what is checked here
// is only what JavaScript can tell best (argument types, the capability flags for a fast answer).
//
// The file is evaluated as a classic script inside the bootstrap; its completion value is a
// function that takes the host ops and returns `create(grants)`, which builds the module objects
// the template lists. Everything used later is captured now, before any user code runs, so user
// code that replaces built-ins cannot change what the modules do. Errors with a code are `Error`
// objects with an own, enumerable string `code` property.
(function makeModules(ops) {
  "use strict";

  const {
    op_vm_fs_read, op_vm_fs_write, op_vm_fs_exists, op_vm_fs_readdir,
    op_vm_exec_run,
    op_vm_db_configure, op_vm_db_begin, op_vm_db_bind, op_vm_db_bind_blob, op_vm_db_run,
    op_vm_db_blob, op_vm_db_close,
  } = ops;
  const {
    Array: { isArray: ArrayIsArray },
    BigInt,
    Error,
    JSON: { parse: JSONParse },
    Number: { isInteger: NumberIsInteger, isSafeInteger: NumberIsSafeInteger },
    Object: {
      defineProperty: ObjectDefineProperty,
      getOwnPropertyDescriptor: ObjectGetOwnPropertyDescriptor,
      getPrototypeOf: ObjectGetPrototypeOf,
      keys: ObjectKeys,
    },
    RangeError,
    Reflect: { apply: ReflectApply },
    String,
    Symbol: { toStringTag: SymbolToStringTag },
    TypeError,
    Uint8Array,
  } = globalThis;
  const StringPrototypeIncludes = String.prototype.includes;
  const StringPrototypeToLowerCase = String.prototype.toLowerCase;
  const StringPrototypeToWellFormed = String.prototype.toWellFormed;
  // Text as it leaves the engine: a lone surrogate becomes one U+FFFD, as Node writes it (the
  // ops' UTF-8 conversion would make three of it).
  const wellFormed = (text) => ReflectApply(StringPrototypeToWellFormed, text, []);
  // The built-in getter answers the typed array's own kind and `undefined` for anything else
  // (proxies included), without running user code.
  const TypedArrayPrototypeGetToStringTag = ObjectGetOwnPropertyDescriptor(
    ObjectGetPrototypeOf(Uint8Array.prototype),
    SymbolToStringTag,
  ).get;
  const INT64_MIN = -9223372036854775808n;
  const INT64_MAX = 9223372036854775807n;

  function codeError(code, message) {
    const error = new Error(message);
    ObjectDefineProperty(error, "code", {
      value: code,
      writable: true,
      enumerable: true,
      configurable: true,
    });
    return error;
  }

  function received(value) {
    if (value === null) return "null";
    if (isArray(value)) return "an array";
    return `type ${typeof value}`;
  }

  function isArray(value) {
    return ArrayIsArray(value);
  }

  function isUint8Array(value) {
    return ReflectApply(TypedArrayPrototypeGetToStringTag, value, []) === "Uint8Array";
  }

  function checkString(name, value) {
    if (typeof value !== "string") {
      throw new TypeError(`The "${name}" argument must be of type string. Received ${received(value)}`);
    }
  }

  // Own data properties only: user code may have put setters on Object.prototype or
  // Array.prototype.
  function setOwn(object, key, value) {
    ObjectDefineProperty(object, key, { value, writable: true, enumerable: true, configurable: true });
  }

  // ---- fs ------------------------------------------------------------------------------------
  function makeFs(grants) {
    const fsRead = grants.fs_read === true;
    const fsWrite = grants.fs_write === true;
    function needRead() {
      if (!fsRead) {
        throw codeError("ERR_CAPABILITY", "fs: no enabled fs capability grants file access");
      }
    }
    function needWrite() {
      needRead();
      if (!fsWrite) {
        throw codeError("ERR_CAPABILITY", "fs: writing needs an enabled fs capability with write: true");
      }
    }
    function isUtf8(encoding) {
      if (typeof encoding !== "string") return false;
      const lower = ReflectApply(StringPrototypeToLowerCase, encoding, []);
      return lower === "utf8" || lower === "utf-8";
    }
    return {
      readFileSync(path, encoding) {
        needRead();
        checkString("path", path);
        if (encoding !== undefined && !isUtf8(encoding)) {
          throw codeError(
            "ERR_INVALID_ARG",
            `The encoding must be "utf8" or "utf-8". Received ${typeof encoding === "string" ? `"${encoding}"` : received(encoding)}`,
          );
        }
        return op_vm_fs_read(wellFormed(path));
      },
      writeFileSync(path, data) {
        needWrite();
        checkString("path", path);
        op_vm_fs_write(wellFormed(path), wellFormed(String(data)));
      },
      existsSync(path) {
        needRead();
        if (typeof path !== "string") return false;
        return op_vm_fs_exists(wellFormed(path));
      },
      readdirSync(path) {
        needRead();
        checkString("path", path);
        return JSONParse(op_vm_fs_readdir(wellFormed(path)));
      },
    };
  }

  // ---- exec ----------------------------------------------------------------------------------
  function makeExec() {
    return {
      run(cmd, args, options) {
        checkString("cmd", cmd);
        let argc = 0;
        let argv = "";
        if (args !== undefined) {
          if (!isArray(args)) {
            throw new TypeError(`The "args" argument must be an array of strings. Received ${received(args)}`);
          }
          const length = args.length;
          for (let i = 0; i < length; i++) {
            const arg = args[i];
            if (typeof arg !== "string") {
              throw new TypeError(`The "args[${i}]" argument must be of type string. Received ${received(arg)}`);
            }
            if (ReflectApply(StringPrototypeIncludes, arg, ["\0"])) {
              throw new TypeError(`The "args[${i}]" argument must not contain NUL characters`);
            }
            argv = argc === 0 ? wellFormed(arg) : argv + "\0" + wellFormed(arg);
            argc++;
          }
        }
        let timeout = 0;
        if (options !== undefined) {
          if (options === null || typeof options !== "object") {
            throw new TypeError(`The "options" argument must be an object. Received ${received(options)}`);
          }
          const ms = options.timeout_ms;
          if (ms !== undefined) {
            if (typeof ms !== "number" || !NumberIsInteger(ms) || ms <= 0) {
              throw new TypeError(`The "options.timeout_ms" option must be a positive integer. Received ${typeof ms === "number" ? ms : received(ms)}`);
            }
            timeout = ms;
          }
        }
        return JSONParse(op_vm_exec_run(cmd, argc, argv, timeout));
      },
    };
  }

  // ---- database ------------------------------------------------------------------------------
  function bindParam(value, index) {
    switch (typeof value) {
      case "number":
        if (NumberIsSafeInteger(value)) op_vm_db_bind(1, value, "");
        else op_vm_db_bind(2, value, "");
        return;
      case "string":
        op_vm_db_bind(3, 0, wellFormed(value));
        return;
      case "boolean":
        op_vm_db_bind(1, value ? 1 : 0, "");
        return;
      case "bigint":
        if (value < INT64_MIN || value > INT64_MAX) {
          throw new RangeError(`Parameter ${index + 1}: BigInt ${value} is outside the signed 64-bit range`);
        }
        op_vm_db_bind(4, 0, `${value}`);
        return;
      case "object":
        if (value === null) {
          op_vm_db_bind(0, 0, "");
          return;
        }
        if (isUint8Array(value)) {
          op_vm_db_bind_blob(value);
          return;
        }
        break;
    }
    throw new TypeError(
      `Parameter ${index + 1} must be a number, string, boolean, null, BigInt or Uint8Array. Received ${received(value)}`,
    );
  }

  function bindParams(params) {
    let list = params;
    if (params.length === 1 && isArray(params[0])) list = params[0];
    const length = list.length;
    for (let i = 0; i < length; i++) bindParam(list[i], i);
  }

  // A tagged value from the host (see database.rs): ["b", decimal], ["f", name], ["x", index].
  function untag(cell) {
    switch (cell[0]) {
      case "b":
        return BigInt(cell[1]);
      case "f":
        return cell[1] === "NaN" ? NaN : cell[1] === "Infinity" ? Infinity : -Infinity;
      case "x":
        return op_vm_db_blob(cell[1]);
    }
    return cell;
  }

  function makeDatabase() {
    function run(exec, sql, params) {
      op_vm_db_begin();
      checkString("sql", sql);
      bindParams(params);
      return JSONParse(op_vm_db_run(exec, wellFormed(sql)));
    }
    return {
      configure(...args) {
        let path = args[0];
        if (args.length >= 2 && args[1] !== undefined) {
          if (args[0] !== "sqlite" && args[0] !== "sqlite3") {
            throw codeError(
              "ERR_INVALID_ARG",
              `The driver must be "sqlite" or "sqlite3". Received ${typeof args[0] === "string" ? `"${args[0]}"` : received(args[0])}`,
            );
          }
          path = args[1];
        }
        checkString("path", path);
        op_vm_db_configure(wellFormed(path));
      },
      query(sql, ...params) {
        const result = run(false, sql, params);
        const rows = result.r;
        if (result.t === 1) {
          for (let i = 0; i < rows.length; i++) {
            const row = rows[i];
            const names = ObjectKeys(row);
            for (let j = 0; j < names.length; j++) {
              const cell = row[names[j]];
              if (isArray(cell)) setOwn(row, names[j], untag(cell));
            }
          }
        }
        return rows;
      },
      exec(sql, ...params) {
        const result = run(true, sql, params);
        if (isArray(result.last_insert_rowid)) {
          result.last_insert_rowid = untag(result.last_insert_rowid);
        }
        return result;
      },
      close() {
        op_vm_db_close();
      },
    };
  }

  // Module objects for the ids the template lists, in template order: [[id, object], ...].
  return function create(grants) {
    const created = [];
    const ids = grants.modules;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      let module;
      if (id === "fs") module = makeFs(grants);
      else if (id === "exec") module = makeExec();
      else if (id === "database") module = makeDatabase();
      else continue;
      setOwn(created, created.length, [id, module]);
    }
    return created;
  };
})
