/* vizviewer trace model: turns Chrome trace-event JSON into tracks of slices laid
 * out by depth, counter series and instants, all on one time axis.
 *
 * Plain script, no dependencies. In the page it defines `VizModel`; under node it is
 * a CommonJS module, so the model can be checked without a browser.
 *
 * Times inside the model are in microseconds relative to the first event (`t0`).
 */
(function (root, factory) {
  if (typeof module === "object" && module.exports) {
    module.exports = factory();
  } else {
    root.VizModel = factory();
  }
})(typeof self !== "undefined" ? self : this, function () {
  "use strict";

  function num(v, dflt) {
    if (typeof v === "number") return v;
    if (typeof v === "string" && v !== "") {
      var n = Number(v);
      if (n === n) return n;
    }
    return dflt;
  }

  function idKey(v) {
    return v === undefined || v === null ? 0 : v;
  }

  // ---------------------------------------------------------------- formatting

  /** A duration in microseconds as "1.23 ms", "456 ns", "2.5 s". */
  function fmtDur(us) {
    if (us !== us) return "?";
    var a = Math.abs(us);
    if (a === 0) return "0 s";
    if (a < 1) return trim(us * 1000, 1) + " ns";
    if (a < 1000) return trim(us, 3) + " \u00b5s";
    if (a < 1e6) return trim(us / 1000, 3) + " ms";
    return trim(us / 1e6, 3) + " s";
  }

  function trim(v, digits) {
    var s = v.toFixed(digits);
    if (s.indexOf(".") >= 0) s = s.replace(/0+$/, "").replace(/\.$/, "");
    return s;
  }

  /** Label for a ruler tick at time t (us) when ticks are `step` apart. */
  function fmtTick(t, step) {
    var unit, div;
    if (step < 1) { unit = "ns"; div = 0.001; }
    else if (step < 1000) { unit = "\u00b5s"; div = 1; }
    else if (step < 1e6) { unit = "ms"; div = 1000; }
    else { unit = "s"; div = 1e6; }
    var s = step / div;
    var decimals = 0;
    while (decimals < 6 && Math.abs(Math.round(s * Math.pow(10, decimals)) - s * Math.pow(10, decimals)) > 1e-6) decimals++;
    return (t / div).toFixed(decimals) + " " + unit;
  }

  // ---------------------------------------------------------------- binary search

  /** First index i in [lo, hi) with arr[i] > v (arr sorted ascending). */
  function upperBound(arr, v, lo, hi) {
    while (lo < hi) {
      var mid = (lo + hi) >>> 1;
      if (arr[mid] > v) hi = mid; else lo = mid + 1;
    }
    return lo;
  }

  /** First index i in [lo, hi) with arr[i] >= v. */
  function lowerBound(arr, v, lo, hi) {
    while (lo < hi) {
      var mid = (lo + hi) >>> 1;
      if (arr[mid] >= v) hi = mid; else lo = mid + 1;
    }
    return lo;
  }

  // ---------------------------------------------------------------- building

  function newThread(proc, tid) {
    return {
      pid: proc.pid, tid: tid, name: null, sortIndex: 0, proc: proc,
      // filled while reading events
      _ts: [], _du: [], _nm: [], _ev: [], _open: [],
      _its: [], _inm: [], _iev: [],
      n: 0
    };
  }

  function newProcess(pid) {
    return {
      pid: pid, name: null, sortIndex: 0, threads: [], _threads: new Map(),
      _counters: new Map(), counters: [],
      _its: [], _inm: [], _iev: [],
      instants: null
    };
  }

  /**
   * Builds the model from a parsed trace (an object with traceEvents, or a bare
   * list). `onProgress(stage)` is not awaited; it is only for messages.
   */
  function build(trace) {
    var events, fileInfo = null, metadata = null;
    if (Array.isArray(trace)) {
      events = trace;
    } else if (trace && typeof trace === "object") {
      events = Array.isArray(trace.traceEvents) ? trace.traceEvents : [];
      if (trace.file_info && typeof trace.file_info === "object") fileInfo = trace.file_info;
      if (trace.viztracer_metadata && typeof trace.viztracer_metadata === "object") metadata = trace.viztracer_metadata;
    } else {
      throw new Error("The trace is neither an object with traceEvents nor a list of events");
    }

    var counts = Object.create(null);
    var names = [], nameIds = new Map();
    var procs = new Map();
    var global = { _its: [], _inm: [], _iev: [] };
    var tMin = Infinity, tMax = -Infinity;
    var unmatchedEnd = 0, skipped = 0;
    var lastPid = NaN, lastTid = NaN, lastThread = null;

    function nameId(name) {
      if (typeof name !== "string") name = name === undefined || name === null ? "(unnamed)" : String(name);
      var id = nameIds.get(name);
      if (id === undefined) {
        id = names.length;
        names.push(name);
        nameIds.set(name, id);
      }
      return id;
    }
    function proc(pid) {
      var p = procs.get(pid);
      if (p === undefined) { p = newProcess(pid); procs.set(pid, p); }
      return p;
    }
    function thread(pid, tid) {
      if (pid === lastPid && tid === lastTid) return lastThread;
      var p = proc(pid);
      var t = p._threads.get(tid);
      if (t === undefined) { t = newThread(p, tid); p._threads.set(tid, t); }
      lastPid = pid; lastTid = tid; lastThread = t;
      return t;
    }

    var n = events.length;
    for (var i = 0; i < n; i++) {
      var e = events[i];
      if (e === null || typeof e !== "object") { skipped++; continue; }
      var ph = e.ph;
      counts[ph] = (counts[ph] || 0) + 1;
      var pid = idKey(e.pid), tid = idKey(e.tid);
      var ts, t;
      switch (ph) {
        case "X": {
          ts = num(e.ts, NaN);
          if (ts !== ts) { skipped++; break; }
          var dur = num(e.dur, 0);
          if (dur < 0 || dur !== dur) dur = 0;
          t = thread(pid, tid);
          t._ts.push(ts); t._du.push(dur); t._nm.push(nameId(e.name)); t._ev.push(i);
          if (ts < tMin) tMin = ts;
          if (ts + dur > tMax) tMax = ts + dur;
          break;
        }
        case "B": {
          ts = num(e.ts, NaN);
          if (ts !== ts) { skipped++; break; }
          t = thread(pid, tid);
          t._open.push(t._ts.length);
          t._ts.push(ts); t._du.push(NaN); t._nm.push(nameId(e.name)); t._ev.push(i);
          if (ts < tMin) tMin = ts;
          if (ts > tMax) tMax = ts;
          break;
        }
        case "E": {
          ts = num(e.ts, NaN);
          t = thread(pid, tid);
          if (ts !== ts || t._open.length === 0) { unmatchedEnd++; break; }
          var k = t._open.pop();
          t._du[k] = Math.max(0, ts - t._ts[k]);
          if (e.args && typeof e.args === "object") {
            if (!t.endArgs) t.endArgs = new Map();
            t.endArgs.set(k, i);
          }
          if (ts > tMax) tMax = ts;
          break;
        }
        case "i": case "I": case "R": {
          ts = num(e.ts, NaN);
          if (ts !== ts) { skipped++; break; }
          var s = e.s, target;
          if (s === "g") target = global;
          else if (s === "p") target = proc(pid);
          else target = thread(pid, tid);
          target._its.push(ts); target._inm.push(nameId(e.name)); target._iev.push(i);
          if (ts < tMin) tMin = ts;
          if (ts > tMax) tMax = ts;
          break;
        }
        case "C": {
          ts = num(e.ts, NaN);
          if (ts !== ts || !e.args || typeof e.args !== "object") { skipped++; break; }
          var p = proc(pid);
          var cname = e.name === undefined ? "(counter)" : String(e.name);
          if (e.id !== undefined) cname += " " + e.id;
          var c = p._counters.get(cname);
          if (c === undefined) { c = { name: cname, _series: new Map() }; p._counters.set(cname, c); }
          for (var key in e.args) {
            var v = num(e.args[key], NaN);
            if (v !== v) continue;
            var ser = c._series.get(key);
            if (ser === undefined) { ser = { key: key, _ts: [], _v: [], _ev: [] }; c._series.set(key, ser); }
            ser._ts.push(ts); ser._v.push(v); ser._ev.push(i);
          }
          if (ts < tMin) tMin = ts;
          if (ts > tMax) tMax = ts;
          break;
        }
        case "M": {
          var a = e.args || {};
          if (e.name === "process_name") proc(pid).name = a.name === undefined ? null : String(a.name);
          else if (e.name === "process_sort_index") proc(pid).sortIndex = num(a.sort_index, 0);
          else if (e.name === "thread_name") thread(pid, tid).name = a.name === undefined ? null : String(a.name);
          else if (e.name === "thread_sort_index") thread(pid, tid).sortIndex = num(a.sort_index, 0);
          break;
        }
        default:
          // Async, flow, object and sample events are counted but not drawn.
          break;
      }
    }

    if (tMin === Infinity) { tMin = 0; tMax = 0; }
    var span = tMax - tMin;

    // ------------------------------------------------ per-thread layout
    var nn = names.length;
    var nameCount = new Float64Array(nn), nameTotal = new Float64Array(nn),
        nameSelf = new Float64Array(nn), nameMax = new Float64Array(nn);
    var processes = [], sliceCount = 0, unfinished = 0, threadCount = 0;

    procs.forEach(function (p) {
      p._threads.forEach(function (t) {
        unfinished += t._open.length;
        layoutThread(t, tMin, tMax);
        sliceCount += t.n;
        for (var j = 0; j < t.n; j++) {
          var id = t.nm[j], d = t.du[j];
          nameCount[id] += 1;
          nameTotal[id] += d;
          nameSelf[id] += t.self[j];
          if (d > nameMax[id]) nameMax[id] = d;
        }
        t.instants = instantsOf(t, tMin);
        p.threads.push(t);
        threadCount++;
      });
      p.threads.sort(function (a, b) {
        return (a.sortIndex - b.sortIndex) ||
          ((a.tid === p.pid ? 0 : 1) - (b.tid === p.pid ? 0 : 1)) ||
          cmpId(a.tid, b.tid);
      });
      p._counters.forEach(function (c) {
        var multi = c._series.size > 1;
        c._series.forEach(function (ser) {
          p.counters.push(counterOf(p, c.name, ser, multi, tMin));
        });
      });
      p.instants = instantsOf(p, tMin);
      delete p._threads; delete p._counters;
      processes.push(p);
    });
    processes.sort(function (a, b) { return (a.sortIndex - b.sortIndex) || cmpId(a.pid, b.pid); });

    return {
      events: events,
      names: names,
      nameIds: nameIds,
      nameCount: nameCount, nameTotal: nameTotal, nameSelf: nameSelf, nameMax: nameMax,
      processes: processes,
      globalInstants: instantsOf(global, tMin),
      t0: tMin,
      span: span,
      counts: counts,
      sliceCount: sliceCount,
      threadCount: threadCount,
      unfinished: unfinished,
      unmatchedEnd: unmatchedEnd,
      skipped: skipped,
      fileInfo: fileInfo,
      metadata: metadata
    };
  }

  function cmpId(a, b) {
    if (typeof a === "number" && typeof b === "number") return a - b;
    return String(a) < String(b) ? -1 : String(a) > String(b) ? 1 : 0;
  }

  function instantsOf(holder, t0) {
    var m = holder._its.length;
    var order = new Int32Array(m);
    for (var i = 0; i < m; i++) order[i] = i;
    var its = holder._its;
    order.sort(function (a, b) { return its[a] - its[b]; });
    var res = { n: m, ts: new Float64Array(m), nm: new Int32Array(m), ev: new Int32Array(m) };
    for (var j = 0; j < m; j++) {
      var k = order[j];
      res.ts[j] = its[k] - t0; res.nm[j] = holder._inm[k]; res.ev[j] = holder._iev[k];
    }
    delete holder._its; delete holder._inm; delete holder._iev;
    return res;
  }

  function counterOf(p, name, ser, multi, t0) {
    var m = ser._ts.length;
    var order = new Int32Array(m);
    for (var i = 0; i < m; i++) order[i] = i;
    var sts = ser._ts;
    order.sort(function (a, b) { return sts[a] - sts[b]; });
    var ts = new Float64Array(m), v = new Float64Array(m), ev = new Int32Array(m);
    var min = Infinity, max = -Infinity;
    for (var j = 0; j < m; j++) {
      var k = order[j];
      ts[j] = sts[k] - t0; v[j] = ser._v[k]; ev[j] = ser._ev[k];
      if (v[j] < min) min = v[j];
      if (v[j] > max) max = v[j];
    }
    return {
      pid: p.pid, counter: name, key: ser.key,
      name: multi || ser.key !== "value" ? name + "." + ser.key : name,
      n: m, ts: ts, v: v, ev: ev, min: min, max: max
    };
  }

  /** Sorts a thread's slices by (start, longer first), assigns depths with a stack,
   *  computes self times and builds one sorted row per depth. */
  function layoutThread(t, tMin, tMax) {
    var n = t._ts.length;
    var rts = t._ts, rdu = t._du, rnm = t._nm, rev = t._ev;
    var flags = new Uint8Array(n);
    // B events that never ended run to the end of the trace.
    for (var o = 0; o < t._open.length; o++) {
      var k = t._open[o];
      rdu[k] = Math.max(0, tMax - rts[k]);
      flags[k] = 1;
    }
    var sorted = true;
    for (var i = 1; i < n; i++) {
      var d = rts[i] - rts[i - 1];
      if (d < 0 || (d === 0 && rdu[i] > rdu[i - 1])) { sorted = false; break; }
    }
    var order = null;
    if (!sorted) {
      order = new Int32Array(n);
      for (i = 0; i < n; i++) order[i] = i;
      order.sort(function (a, b) { return (rts[a] - rts[b]) || (rdu[b] - rdu[a]); });
    }
    var st = new Float64Array(n), du = new Float64Array(n), nm = new Int32Array(n), ev = new Int32Array(n);
    var fl = order ? new Uint8Array(n) : flags;
    for (i = 0; i < n; i++) {
      var s = order ? order[i] : i;
      st[i] = rts[s] - tMin; du[i] = rdu[s]; nm[i] = rnm[s]; ev[i] = rev[s];
      if (order) fl[i] = flags[s];
    }
    if (t.endArgs && order) {
      var inv = new Int32Array(n);
      for (i = 0; i < n; i++) inv[order[i]] = i;
      var moved = new Map();
      t.endArgs.forEach(function (evIdx, k) { moved.set(inv[k], evIdx); });
      t.endArgs = moved;
    }
    var depth = new Int32Array(n), parent = new Int32Array(n), self = new Float64Array(n);
    var stack = [], sp = 0, maxDepth = -1;
    var rowCount = [];
    for (i = 0; i < n; i++) {
      var s0 = st[i], e0 = s0 + du[i];
      while (sp > 0) {
        var top = stack[sp - 1];
        if (st[top] + du[top] <= s0) sp--;
        else break;
      }
      depth[i] = sp;
      self[i] = du[i];
      if (sp > 0) {
        var par = stack[sp - 1];
        parent[i] = par;
        var pe = st[par] + du[par];
        self[par] -= Math.max(0, Math.min(e0, pe) - s0);
      } else {
        parent[i] = -1;
      }
      stack[sp++] = i;
      if (sp - 1 > maxDepth) maxDepth = sp - 1;
      rowCount[sp - 1] = (rowCount[sp - 1] || 0) + 1;
    }
    for (i = 0; i < n; i++) if (self[i] < 0) self[i] = 0;
    var rows = [];
    for (var r = 0; r <= maxDepth; r++) {
      var c = rowCount[r] || 0;
      rows.push({ st: new Float64Array(c), en: new Float64Array(c), ix: new Int32Array(c), n: 0 });
    }
    for (i = 0; i < n; i++) {
      var row = rows[depth[i]];
      row.st[row.n] = st[i]; row.en[row.n] = st[i] + du[i]; row.ix[row.n] = i; row.n++;
    }
    t.n = n; t.st = st; t.du = du; t.nm = nm; t.ev = ev; t.flags = fl;
    t.depth = depth; t.parent = parent; t.self = self; t.rows = rows; t.maxDepth = maxDepth;
    delete t._ts; delete t._du; delete t._nm; delete t._ev; delete t._open;
  }

  // ---------------------------------------------------------------- queries

  /** Per-function summary of the slices overlapping [r0, r1) (model time), with
   *  durations clipped to the range. Returns {ids, count, total, self, max}. */
  function rangeSummary(model, r0, r1) {
    var nn = model.names.length;
    var count = new Float64Array(nn), total = new Float64Array(nn),
        self = new Float64Array(nn), max = new Float64Array(nn);
    var seen = new Uint8Array(nn);
    for (var pi = 0; pi < model.processes.length; pi++) {
      var threads = model.processes[pi].threads;
      for (var ti = 0; ti < threads.length; ti++) {
        var t = threads[ti];
        for (var r = 0; r < t.rows.length; r++) {
          var row = t.rows[r];
          for (var j = upperBound(row.en, r0, 0, row.n); j < row.n && row.st[j] < r1; j++) {
            var i = row.ix[j];
            var a = Math.max(row.st[j], r0), b = Math.min(row.en[j], r1);
            var d = Math.max(0, b - a);
            var id = t.nm[i];
            seen[id] = 1;
            count[id] += 1;
            total[id] += d;
            self[id] += d;
            if (d > max[id]) max[id] = d;
            var par = t.parent[i];
            if (par >= 0) self[t.nm[par]] -= d;
          }
        }
      }
    }
    var ids = [];
    for (var k = 0; k < nn; k++) if (seen[k]) { ids.push(k); if (self[k] < 0) self[k] = 0; }
    return { ids: ids, count: count, total: total, self: self, max: max };
  }

  /** The whole-trace summary in the same shape as rangeSummary. */
  function fullSummary(model) {
    var ids = [];
    for (var k = 0; k < model.names.length; k++) if (model.nameCount[k] > 0) ids.push(k);
    return { ids: ids, count: model.nameCount, total: model.nameTotal, self: model.nameSelf, max: model.nameMax };
  }

  /** Compiles a search: substring (case-insensitive) or regex. Returns
   *  {mask (per name id), count (slices)} or {error}. */
  function matchNames(model, text, isRegex) {
    var re = null;
    if (isRegex) {
      try { re = new RegExp(text, "i"); } catch (err) { return { error: String(err.message || err) }; }
    }
    var needle = text.toLowerCase();
    var mask = new Uint8Array(model.names.length), count = 0, names = 0;
    for (var k = 0; k < model.names.length; k++) {
      var nm = model.names[k];
      var ok = re ? re.test(nm) : nm.toLowerCase().indexOf(needle) >= 0;
      if (ok && model.nameCount[k] > 0) { mask[k] = 1; count += model.nameCount[k]; names++; }
    }
    return { mask: mask, count: count, names: names };
  }

  /** All slices whose name is in `mask`, ordered by start time:
   *  {n, thread: [thread objects], ti (Int32Array of thread number), ix, st}. */
  function matchList(model, mask) {
    var threads = [], tis = [], ixs = [], sts = [];
    for (var pi = 0; pi < model.processes.length; pi++) {
      var ths = model.processes[pi].threads;
      for (var ti = 0; ti < ths.length; ti++) {
        var t = ths[ti], tn = threads.length;
        threads.push(t);
        for (var i = 0; i < t.n; i++) {
          if (mask[t.nm[i]]) { tis.push(tn); ixs.push(i); sts.push(t.st[i]); }
        }
      }
    }
    var m = sts.length;
    var order = new Int32Array(m);
    for (var j = 0; j < m; j++) order[j] = j;
    order.sort(function (a, b) { return (sts[a] - sts[b]) || (tis[a] - tis[b]) || (ixs[a] - ixs[b]); });
    var res = { n: m, threads: threads, ti: new Int32Array(m), ix: new Int32Array(m), st: new Float64Array(m) };
    for (j = 0; j < m; j++) {
      var o = order[j];
      res.ti[j] = tis[o]; res.ix[j] = ixs[o]; res.st[j] = sts[o];
    }
    return res;
  }

  /** Where a function's source is: {path, line, source} or null. */
  function sourceOf(fileInfo, name) {
    if (!fileInfo || typeof fileInfo !== "object") return null;
    var funcs = fileInfo.functions || {}, files = fileInfo.files || {};
    var path = null, line = 0;
    var f = Object.prototype.hasOwnProperty.call(funcs, name) ? funcs[name] : null;
    if (Array.isArray(f) && f.length >= 2) {
      path = String(f[0]); line = num(f[1], 0);
    } else {
      var m = /\((.*):(\d+)\)$/.exec(name);
      if (m) { path = m[1]; line = Number(m[2]); }
    }
    if (path === null || !Object.prototype.hasOwnProperty.call(files, path)) return null;
    var entry = files[path];
    var source = Array.isArray(entry) ? entry[0] : entry;
    if (typeof source !== "string") return null;
    return { path: path, line: line, source: source };
  }

  /** Value of a counter series at time t (model time): the last sample at or before t. */
  function counterValueAt(series, t) {
    var j = upperBound(series.ts, t, 0, series.n) - 1;
    return j >= 0 ? j : -1;
  }

  return {
    build: build,
    rangeSummary: rangeSummary,
    fullSummary: fullSummary,
    matchNames: matchNames,
    matchList: matchList,
    sourceOf: sourceOf,
    counterValueAt: counterValueAt,
    upperBound: upperBound,
    lowerBound: lowerBound,
    fmtDur: fmtDur,
    fmtTick: fmtTick
  };
});
