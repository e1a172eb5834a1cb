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

  function newThread(proc, tid, num_) {
    return {
      pid: proc.pid, tid: tid, name: null, sortIndex: 0, proc: proc, num: num_,
      _open: [], _its: [], _inm: [], _iev: [],
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

  /** Collects events (from either loader) into flat typed arrays. */
  function Builder(capacity) {
    capacity = Math.max(1024, capacity | 0);
    this.cap = capacity;
    this.gts = new Float64Array(capacity); this.gdu = new Float64Array(capacity);
    this.gnm = new Int32Array(capacity); this.gth = new Int32Array(capacity); this.gev = new Int32Array(capacity);
    this.K = 0;
    this.cX = 0; this.cB = 0; this.cE = 0; this.cI = 0; this.cC = 0; this.cM = 0;
    this.counts = Object.create(null);
    this.names = []; this.nameIds = new Map();
    this.procs = new Map(); this.threadList = [];
    this.global = { _its: [], _inm: [], _iev: [] };
    this.tMin = Infinity; this.tMax = -Infinity;
    this.unmatchedEnd = 0; this.skipped = 0;
    this.lastPid = NaN; this.lastTid = NaN; this.lastThread = null;
  }

  Builder.prototype.grow = function () {
    var cap = this.cap * 2;
    function g(a, T) { var b = new T(cap); b.set(a); return b; }
    this.gts = g(this.gts, Float64Array); this.gdu = g(this.gdu, Float64Array);
    this.gnm = g(this.gnm, Int32Array); this.gth = g(this.gth, Int32Array); this.gev = g(this.gev, Int32Array);
    this.cap = cap;
  };

  Builder.prototype.nameId = function (name) {
    if (typeof name !== "string") name = name === undefined || name === null ? "(unnamed)" : String(name);
    var id = this.nameIds.get(name);
    if (id === undefined) {
      id = this.names.length;
      this.names.push(name);
      this.nameIds.set(name, id);
    }
    return id;
  };

  Builder.prototype.proc = function (pid) {
    var p = this.procs.get(pid);
    if (p === undefined) { p = newProcess(pid); this.procs.set(pid, p); }
    return p;
  };

  Builder.prototype.thread = function (pid, tid) {
    if (pid === this.lastPid && tid === this.lastTid) return this.lastThread;
    var p = this.proc(pid);
    var t = p._threads.get(tid);
    if (t === undefined) {
      t = newThread(p, tid, this.threadList.length);
      p._threads.set(tid, t);
      this.threadList.push(t);
    }
    this.lastPid = pid; this.lastTid = tid; this.lastThread = t;
    return t;
  };

  Builder.prototype.slice = function (pid, tid, ts, dur, nmId, ev) {
    if (!(dur >= 0)) dur = 0;
    var t = this.thread(pid, tid);
    var K = this.K;
    if (K === this.cap) this.grow();
    this.gts[K] = ts; this.gdu[K] = dur; this.gnm[K] = nmId; this.gth[K] = t.num; this.gev[K] = ev;
    this.K = K + 1;
    t.n++;
    if (ts < this.tMin) this.tMin = ts;
    if (ts + dur > this.tMax) this.tMax = ts + dur;
  };

  Builder.prototype.begin = function (pid, tid, ts, nmId, ev) {
    var t = this.thread(pid, tid);
    var K = this.K;
    if (K === this.cap) this.grow();
    t._open.push(K);
    this.gts[K] = ts; this.gdu[K] = NaN; this.gnm[K] = nmId; this.gth[K] = t.num; this.gev[K] = ev;
    this.K = K + 1;
    t.n++;
    if (ts < this.tMin) this.tMin = ts;
    if (ts > this.tMax) this.tMax = ts;
  };

  Builder.prototype.end = function (pid, tid, ts, ev, hasArgs) {
    var t = this.thread(pid, tid);
    if (ts !== ts || t._open.length === 0) { this.unmatchedEnd++; return; }
    var k = t._open.pop();
    this.gdu[k] = Math.max(0, ts - this.gts[k]);
    if (hasArgs) {
      if (!t.endArgs) t.endArgs = new Map();
      t.endArgs.set(this.gev[k], ev);
    }
    if (ts > this.tMax) this.tMax = ts;
  };

  Builder.prototype.instant = function (pid, tid, scope, ts, nmId, ev) {
    var target;
    if (scope === "g") target = this.global;
    else if (scope === "p") target = this.proc(pid);
    else target = this.thread(pid, tid);
    target._its.push(ts); target._inm.push(nmId); target._iev.push(ev);
    if (ts < this.tMin) this.tMin = ts;
    if (ts > this.tMax) this.tMax = ts;
  };

  Builder.prototype.counter = function (pid, name, id, args, ts, ev) {
    if (!args || typeof args !== "object") { this.skipped++; return; }
    var p = this.proc(pid);
    var cname = name === undefined || name === null ? "(counter)" : String(name);
    if (id !== undefined && id !== null) cname += " " + id;
    var c = p._counters.get(cname);
    if (c === undefined) { c = { name: cname, _series: new Map() }; p._counters.set(cname, c); }
    for (var key in args) {
      var v = num(args[key], NaN);
      if (v !== v) continue;
      var ser = c._series.get(key);
      if (ser === undefined) { ser = { key: key, _ts: [], _v: [], _ev: [] }; c._series.set(key, ser); }
      ser._ts.push(ts); ser._v.push(v); ser._ev.push(ev);
    }
    if (ts < this.tMin) this.tMin = ts;
    if (ts > this.tMax) this.tMax = ts;
  };

  Builder.prototype.meta = function (pid, tid, name, a) {
    if (!a || typeof a !== "object") a = {};
    if (name === "process_name") this.proc(pid).name = a.name === undefined ? null : String(a.name);
    else if (name === "process_sort_index") this.proc(pid).sortIndex = num(a.sort_index, 0);
    else if (name === "thread_name") this.thread(pid, tid).name = a.name === undefined ? null : String(a.name);
    else if (name === "thread_sort_index") this.thread(pid, tid).sortIndex = num(a.sort_index, 0);
  };

  Builder.prototype.other = function (ph) {
    var k = typeof ph === "string" ? ph : String(ph);
    this.counts[k] = (this.counts[k] || 0) + 1;
  };

  /** Loads the events of an already parsed trace (objects). */
  function feedObjects(b, events) {
    var n = events.length;
    var lastName = null, lastNameId = -1;
    for (var i = 0; i < n; i++) {
      var e = events[i];
      if (e === null || typeof e !== "object" || Array.isArray(e) || e.ph === undefined) { b.skipped++; continue; }
      var ph = e.ph, ts;
      if (ph === "X") {
        b.cX++;
        ts = num(e.ts, NaN);
        if (ts !== ts) { b.skipped++; continue; }
        var name = e.name, nmId;
        if (name === lastName) nmId = lastNameId;
        else { nmId = b.nameId(name); lastName = name; lastNameId = nmId; }
        b.slice(idKey(e.pid), idKey(e.tid), ts, num(e.dur, 0), nmId, i);
        continue;
      }
      switch (ph) {
        case "B":
          b.cB++;
          ts = num(e.ts, NaN);
          if (ts !== ts) { b.skipped++; break; }
          b.begin(idKey(e.pid), idKey(e.tid), ts, b.nameId(e.name), i);
          break;
        case "E":
          b.cE++;
          b.end(idKey(e.pid), idKey(e.tid), num(e.ts, NaN), i, !!(e.args && typeof e.args === "object"));
          break;
        case "i": case "I": case "R":
          b.cI++;
          ts = num(e.ts, NaN);
          if (ts !== ts) { b.skipped++; break; }
          b.instant(idKey(e.pid), idKey(e.tid), e.s, ts, b.nameId(e.name), i);
          break;
        case "C":
          b.cC++;
          ts = num(e.ts, NaN);
          if (ts !== ts) { b.skipped++; break; }
          b.counter(idKey(e.pid), e.name, e.id, e.args, ts, i);
          break;
        case "M":
          b.cM++;
          b.meta(idKey(e.pid), idKey(e.tid), e.name, e.args);
          break;
        default:
          // Async, flow, object and sample events are counted but not drawn.
          b.other(ph);
      }
    }
  }

  /**
   * Builds the model from a parsed trace (an object with traceEvents, or a bare list).
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
    var b = new Builder(events.length);
    feedObjects(b, events);
    return finish(b, function (i) { return events[i]; }, events.length, fileInfo, metadata);
  }

  function finish(b, eventAt, eventCount, fileInfo, metadata) {
    var counts = b.counts;
    if (b.cX) counts.X = b.cX;
    if (b.cB) counts.B = b.cB;
    if (b.cE) counts.E = b.cE;
    if (b.cI) counts.i = b.cI;
    if (b.cC) counts.C = b.cC;
    if (b.cM) counts.M = b.cM;
    var tMin = b.tMin, tMax = b.tMax;
    if (tMin === Infinity) { tMin = 0; tMax = 0; }
    var span = tMax - tMin;
    var K = b.K, gts = b.gts, gdu = b.gdu, gnm = b.gnm, gth = b.gth, gev = b.gev;
    var threadList = b.threadList, names = b.names;

    // B events that never ended run to the end of the trace.
    var gfl = new Uint8Array(K);
    var unfinished = 0;
    for (var ti = 0; ti < threadList.length; ti++) {
      var open = threadList[ti]._open;
      for (var o = 0; o < open.length; o++) {
        gdu[open[o]] = Math.max(0, tMax - gts[open[o]]);
        gfl[open[o]] = 1;
        unfinished++;
      }
    }

    // Group the slices by thread (counting sort), then sort each thread's slices by
    // start time, longer first (they are usually in end order: children first).
    var T = threadList.length;
    var off = new Int32Array(T + 1);
    for (ti = 0; ti < T; ti++) off[ti + 1] = off[ti] + threadList[ti].n;
    var fill = off.slice(0, T);
    var order = new Int32Array(K);
    for (var q = 0; q < K; q++) order[fill[gth[q]]++] = q;
    var cmp = function (a, c) { return (gts[a] - gts[c]) || (gdu[c] - gdu[a]); };
    for (ti = 0; ti < T; ti++) {
      var lo = off[ti], hi = off[ti + 1], sorted = true;
      for (q = lo + 1; q < hi; q++) {
        var d = gts[order[q]] - gts[order[q - 1]];
        if (d < 0 || (d === 0 && gdu[order[q]] > gdu[order[q - 1]])) { sorted = false; break; }
      }
      if (!sorted) order.subarray(lo, hi).sort(cmp);
    }
    var st = new Float64Array(K), du = new Float64Array(K), nm = new Int32Array(K),
        ev = new Int32Array(K), fl = new Uint8Array(K);
    for (q = 0; q < K; q++) {
      var g = order[q];
      st[q] = gts[g] - tMin; du[q] = gdu[g]; nm[q] = gnm[g]; ev[q] = gev[g]; fl[q] = gfl[g];
    }
    b.gts = b.gdu = b.gnm = b.gth = b.gev = null;
    gts = gdu = gnm = gth = gev = gfl = order = null;
    var depth = new Int32Array(K), parent = new Int32Array(K), self = new Float64Array(K);

    var nn = names.length;
    var nameCount = new Float64Array(nn), nameTotal = new Float64Array(nn),
        nameSelf = new Float64Array(nn), nameMax = new Float64Array(nn);
    for (ti = 0; ti < T; ti++) {
      var th = threadList[ti], a0 = off[ti], a1 = off[ti + 1];
      th.n = a1 - a0;
      th.st = st.subarray(a0, a1); th.du = du.subarray(a0, a1); th.nm = nm.subarray(a0, a1);
      th.ev = ev.subarray(a0, a1); th.flags = fl.subarray(a0, a1);
      th.depth = depth.subarray(a0, a1); th.parent = parent.subarray(a0, a1); th.self = self.subarray(a0, a1);
      layoutThread(th);
      for (var j = 0; j < th.n; j++) {
        var id = th.nm[j], dd = th.du[j];
        nameCount[id] += 1;
        nameTotal[id] += dd;
        nameSelf[id] += th.self[j];
        if (dd > nameMax[id]) nameMax[id] = dd;
      }
      th.instants = instantsOf(th, tMin);
      delete th._open;
    }

    var processes = [];
    b.procs.forEach(function (p) {
      p._threads.forEach(function (t) { p.threads.push(t); });
      p.threads.sort(function (x, y) {
        return (x.sortIndex - y.sortIndex) ||
          ((x.tid === p.pid ? 0 : 1) - (y.tid === p.pid ? 0 : 1)) ||
          cmpId(x.tid, y.tid);
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
    processes.sort(function (x, y) { return (x.sortIndex - y.sortIndex) || cmpId(x.pid, y.pid); });

    return {
      eventAt: eventAt,
      eventCount: eventCount,
      names: names,
      nameIds: b.nameIds,
      nameCount: nameCount, nameTotal: nameTotal, nameSelf: nameSelf, nameMax: nameMax,
      processes: processes,
      globalInstants: instantsOf(b.global, tMin),
      t0: tMin,
      span: span,
      counts: counts,
      sliceCount: K,
      threadCount: T,
      unfinished: unfinished,
      unmatchedEnd: b.unmatchedEnd,
      skipped: b.skipped,
      fileInfo: fileInfo,
      metadata: metadata
    };
  }

  // ---------------------------------------------------------------- fast loader

  var POW10 = [];
  for (var pw = 0; pw <= 22; pw++) POW10.push(Math.pow(10, pw));

  /**
   * Builds the model straight from the bytes of a JSON trace, without creating an
   * object per event: only the fields the timeline needs are read, and an event's
   * full JSON is parsed when someone asks for it (eventAt). Throws on anything it
   * does not understand; the caller then falls back to JSON.parse + build.
   */
  function buildFromBytes(buf) {
    var DEC = new TextDecoder("utf-8");
    var L = buf.length;
    var b = new Builder(Math.floor(L / 100));
    var evCap = Math.max(1024, Math.floor(L / 100));
    var evStart = new Uint32Array(evCap), evEnd = new Uint32Array(evCap), evN = 0;
    var NUM = 0;
    var rawHash = new Map(), rawS = [], rawE = [], rawId = [];
    var fileInfoRange = null, metaRange = null;

    function fail(p, what) {
      throw new Error("fast loader: " + what + " at byte " + p);
    }
    function ws(p) {
      var c;
      while (p < L && ((c = buf[p]) === 32 || c === 10 || c === 13 || c === 9)) p++;
      return p;
    }
    // p at the opening quote; returns the index of the closing quote.
    function strEnd(p) {
      p++;
      for (;;) {
        if (p >= L) fail(p, "unterminated string");
        var c = buf[p];
        if (c === 34) return p;
        p += c === 92 ? 2 : 1;
      }
    }
    function hasEscape(s, e) {
      for (var q = s; q < e; q++) if (buf[q] === 92) return true;
      return false;
    }
    // s/e: inside the quotes
    function decodeStr(s, e) {
      if (hasEscape(s, e)) return JSON.parse(DEC.decode(buf.subarray(s - 1, e + 1)));
      return DEC.decode(buf.subarray(s, e));
    }
    function skipValue(p) {
      var c = buf[p];
      if (c === 34) return strEnd(p) + 1;
      if (c === 123 || c === 91) {
        var depth = 0;
        for (;;) {
          if (p >= L) fail(p, "unterminated value");
          c = buf[p];
          if (c === 34) { p = strEnd(p) + 1; continue; }
          if (c === 123 || c === 91) depth++;
          else if (c === 125 || c === 93) { if (--depth === 0) return p + 1; }
          p++;
        }
      }
      var s = p;
      while (p < L && (c = buf[p]) !== 44 && c !== 125 && c !== 93 && c !== 32 && c !== 10 && c !== 13 && c !== 9) p++;
      if (p === s) fail(p, "missing value");
      return p;
    }
    // Reads a number (or a numeric string, or null) into NUM; returns the end.
    function number(p) {
      var c = buf[p];
      if (c === 34) {
        var e = strEnd(p);
        NUM = num(decodeStr(p + 1, e), NaN);
        return e + 1;
      }
      var start = p, neg = false;
      if (c === 45) { neg = true; p++; }
      var mant = 0, digits = 0, frac = 0;
      while ((c = buf[p]) >= 48 && c <= 57) { mant = mant * 10 + (c - 48); digits++; p++; }
      if (c === 46) {
        p++;
        while ((c = buf[p]) >= 48 && c <= 57) { mant = mant * 10 + (c - 48); digits++; frac++; p++; }
      }
      if (c === 101 || c === 69 || digits > 15 || digits === 0) {
        p = skipValue(start);
        var text = String.fromCharCode.apply(null, buf.subarray(start, p));
        NUM = text === "null" ? NaN : Number(text);
        return p;
      }
      NUM = frac ? mant / POW10[frac] : mant;
      if (neg) NUM = -NUM;
      return p;
    }
    // pid/tid: a number or a string
    function idValue(p) {
      var c = buf[p];
      if (c === 34) {
        var e = strEnd(p);
        NUM = decodeStr(p + 1, e);
        return e + 1;
      }
      if (c === 110) { NUM = 0; return skipValue(p); } // null
      return number(p);
    }
    function nameIdRaw(s, e) {
      var h = (0x811c9dc5 ^ (e - s)) | 0;
      for (var q = s; q < e; q++) h = Math.imul(h ^ buf[q], 16777619);
      var hit = rawHash.get(h);
      if (hit !== undefined) {
        if (typeof hit === "number") {
          if (same(hit, s, e)) return rawId[hit];
          hit = [hit];
          rawHash.set(h, hit);
        } else {
          for (var k = 0; k < hit.length; k++) if (same(hit[k], s, e)) return rawId[hit[k]];
        }
      }
      var id = b.nameId(decodeStr(s, e));
      var entry = rawS.length;
      rawS.push(s); rawE.push(e); rawId.push(id);
      if (hit === undefined) rawHash.set(h, entry); else hit.push(entry);
      return id;
    }
    function same(entry, s, e) {
      var a = rawS[entry];
      if (rawE[entry] - a !== e - s) return false;
      for (var q = 0; q < e - s; q++) if (buf[a + q] !== buf[s + q]) return false;
      return true;
    }
    function parseRange(s, e) {
      return JSON.parse(DEC.decode(buf.subarray(s, e)));
    }

    // One event object; p at '{'. Returns the position after '}'.
    function event(p, i) {
      var ph = 0, phS = -1, phE = -1, pid = 0, tid = 0, ts = NaN, dur = 0;
      var nameS = -1, nameE = -1, scope = 0, argsS = -1, argsE = -1, idS = -1, idE = -1;
      p = ws(p + 1);
      if (buf[p] !== 125) {
        for (;;) {
          if (buf[p] !== 34) fail(p, "expected a key");
          var ks = p + 1, ke = strEnd(p);
          p = ws(ke + 1);
          if (buf[p] !== 58) fail(p, "expected ':'");
          p = ws(p + 1);
          var kl = ke - ks, k0 = buf[ks], k1 = buf[ks + 1];
          if (kl === 2 && k0 === 112 && k1 === 104) { // ph
            if (buf[p] !== 34) fail(p, "ph is not a string");
            var pe = strEnd(p);
            if (pe === p + 2 && buf[p + 1] !== 92) ph = buf[p + 1]; else { ph = -1; phS = p + 1; phE = pe; }
            p = pe + 1;
          } else if (kl === 2 && k0 === 116 && k1 === 115) { // ts
            p = number(p); ts = NUM;
          } else if (kl === 3 && k0 === 100 && k1 === 117 && buf[ks + 2] === 114) { // dur
            p = number(p); dur = NUM;
          } else if (kl === 3 && k1 === 105 && buf[ks + 2] === 100 && (k0 === 112 || k0 === 116)) { // pid, tid
            p = idValue(p);
            if (k0 === 112) pid = NUM; else tid = NUM;
          } else if (kl === 4 && k0 === 110 && k1 === 97 && buf[ks + 2] === 109 && buf[ks + 3] === 101) { // name
            if (buf[p] === 34) { nameS = p + 1; nameE = strEnd(p); p = nameE + 1; }
            else { nameS = p; p = skipValue(p); nameE = -p; }
          } else if (kl === 4 && k0 === 97 && k1 === 114 && buf[ks + 2] === 103 && buf[ks + 3] === 115) { // args
            argsS = p; p = skipValue(p); argsE = p;
          } else if (kl === 1 && k0 === 115) { // s
            if (buf[p] === 34) { var se = strEnd(p); scope = se === p + 2 ? buf[p + 1] : 0; p = se + 1; }
            else p = skipValue(p);
          } else if (kl === 2 && k0 === 105 && k1 === 100) { // id
            idS = p; p = skipValue(p); idE = p;
          } else {
            p = skipValue(p);
          }
          p = ws(p);
          var c = buf[p];
          if (c === 44) { p = ws(p + 1); continue; }
          if (c === 125) break;
          fail(p, "expected ',' or '}'");
        }
      }
      p++;
      if (evN === evCap) {
        evCap *= 2;
        var ns = new Uint32Array(evCap); ns.set(evStart); evStart = ns;
        var ne = new Uint32Array(evCap); ne.set(evEnd); evEnd = ne;
      }
      evStart[i] = evS; evEnd[i] = p; evN = i + 1;

      if (ph === 0) { b.skipped++; return p; } // no "ph": not an event
      if (ph === -1) {
        var phs = decodeStr(phS, phE);
        ph = phs.length === 1 ? phs.charCodeAt(0) : -1;
        if (ph === -1) { b.other(phs); return p; }
      }
      var nm;
      if (ph === 88) { // X
        b.cX++;
        if (ts !== ts) { b.skipped++; return p; }
        nm = nameS < 0 ? b.nameId(undefined) : nameE < 0 ? b.nameId(String(parseRange(nameS, -nameE))) : nameIdRaw(nameS, nameE);
        b.slice(pid, tid, ts, dur, nm, i);
        return p;
      }
      switch (ph) {
        case 66: // B
          b.cB++;
          if (ts !== ts) { b.skipped++; break; }
          nm = nameS < 0 ? b.nameId(undefined) : nameE < 0 ? b.nameId(String(parseRange(nameS, -nameE))) : nameIdRaw(nameS, nameE);
          b.begin(pid, tid, ts, nm, i);
          break;
        case 69: // E
          b.cE++;
          b.end(pid, tid, ts, i, argsS >= 0 && buf[argsS] === 123);
          break;
        case 105: case 73: case 82: // i I R
          b.cI++;
          if (ts !== ts) { b.skipped++; break; }
          nm = nameS < 0 ? b.nameId(undefined) : nameE < 0 ? b.nameId(String(parseRange(nameS, -nameE))) : nameIdRaw(nameS, nameE);
          b.instant(pid, tid, scope === 103 ? "g" : scope === 112 ? "p" : "t", ts, nm, i);
          break;
        case 67: // C
          b.cC++;
          if (ts !== ts) { b.skipped++; break; }
          b.counter(pid, nameS < 0 ? undefined : nameE < 0 ? parseRange(nameS, -nameE) : decodeStr(nameS, nameE),
            idS < 0 ? undefined : parseRange(idS, idE), argsS < 0 ? null : parseRange(argsS, argsE), ts, i);
          break;
        case 77: // M
          b.cM++;
          b.meta(pid, tid, nameS < 0 || nameE < 0 ? null : decodeStr(nameS, nameE), argsS < 0 ? null : parseRange(argsS, argsE));
          break;
        default:
          b.other(String.fromCharCode(ph));
      }
      return p;
    }
    var evS = 0;
    function events(p) {
      p = ws(p + 1);
      var i = 0;
      if (buf[p] === 93) return p + 1;
      for (;;) {
        if (buf[p] === 123) {
          evS = p;
          p = event(p, i);
        } else {
          evS = p;
          p = skipValue(p);
          if (evN === evCap) fail(p, "too many events");
          evStart[i] = evS; evEnd[i] = p; evN = i + 1;
          b.skipped++;
        }
        i++;
        p = ws(p);
        var c = buf[p];
        if (c === 44) { p = ws(p + 1); continue; }
        if (c === 93) return p + 1;
        fail(p, "expected ',' or ']'");
      }
    }

    var p = 0;
    if (buf[0] === 0xef && buf[1] === 0xbb && buf[2] === 0xbf) p = 3;
    p = ws(p);
    if (buf[p] === 91) {
      p = events(p);
    } else if (buf[p] === 123) {
      p = ws(p + 1);
      if (buf[p] !== 125) {
        for (;;) {
          if (buf[p] !== 34) fail(p, "expected a key");
          var ke = strEnd(p);
          var key = decodeStr(p + 1, ke);
          p = ws(ke + 1);
          if (buf[p] !== 58) fail(p, "expected ':'");
          p = ws(p + 1);
          var vs = p;
          if (key === "traceEvents" && buf[p] === 91) p = events(p);
          else p = skipValue(p);
          if (key === "file_info") fileInfoRange = [vs, p];
          else if (key === "viztracer_metadata") metaRange = [vs, p];
          p = ws(p);
          if (buf[p] === 44) { p = ws(p + 1); continue; }
          if (buf[p] === 125) break;
          fail(p, "expected ',' or '}'");
        }
      }
      p = ws(p + 1);
      if (p < L && buf[p] !== 0) fail(p, "trailing data");
    } else {
      fail(p, "not a JSON object or list");
    }
    var fileInfo = fileInfoRange ? parseRange(fileInfoRange[0], fileInfoRange[1]) : null;
    var metadata = metaRange ? parseRange(metaRange[0], metaRange[1]) : null;
    if (fileInfo !== null && typeof fileInfo !== "object") fileInfo = null;
    if (metadata !== null && typeof metadata !== "object") metadata = null;
    function eventAt(i) {
      if (i < 0 || i >= evN) return null;
      return parseRange(evStart[i], evEnd[i]);
    }
    return finish(b, eventAt, evN, fileInfo, metadata);
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

  /** Assigns depths to a thread's sorted slices with a stack, computes self times
   *  and builds one row per depth (rows never overlap, so their ends are sorted). */
  function layoutThread(t) {
    var n = t.n, st = t.st, du = t.du, depth = t.depth, parent = t.parent, self = t.self;
    var stack = new Int32Array(64), sp = 0, maxDepth = -1;
    var rowCount = new Int32Array(64);
    for (var i = 0; i < n; i++) {
      var s0 = st[i], e0 = s0 + du[i];
      while (sp > 0 && st[stack[sp - 1]] + du[stack[sp - 1]] <= s0) sp--;
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
      if (sp >= stack.length) {
        var bigger = new Int32Array(stack.length * 2); bigger.set(stack); stack = bigger;
        var rc = new Int32Array(rowCount.length * 2); rc.set(rowCount); rowCount = rc;
      }
      stack[sp++] = i;
      if (sp - 1 > maxDepth) maxDepth = sp - 1;
      rowCount[sp - 1]++;
    }
    for (i = 0; i < n; i++) if (self[i] < 0) self[i] = 0;
    var rows = [];
    for (var r = 0; r <= maxDepth; r++) {
      var c = rowCount[r];
      rows.push({ st: new Float64Array(c), en: new Float64Array(c), ix: new Int32Array(c), n: 0 });
    }
    for (i = 0; i < n; i++) {
      var row = rows[depth[i]];
      row.st[row.n] = st[i]; row.en[row.n] = st[i] + du[i]; row.ix[row.n] = i; row.n++;
    }
    t.rows = rows; t.maxDepth = maxDepth;
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
    buildFromBytes: buildFromBytes,
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
