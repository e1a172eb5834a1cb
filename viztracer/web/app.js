/* vizviewer page: loads a trace, draws it on a canvas and handles the interaction.
 * Plain script, no dependencies; the model lives in model.js (VizModel). */
(function () {
  "use strict";

  var M = window.VizModel;

  // ------------------------------------------------------------------ constants
  var LABEL_W = 230;     // track-name column
  var RULER_H = 28;      // time ruler at the top
  var ROW_H = 18;        // one depth level of slices
  var PROC_H = 24;       // process header
  var COUNTER_H = 42;
  var LANE_H = 18;       // instant lanes (global, process)
  var INST_H = 12;       // instant strip on top of a thread
  var PAD = 3;           // space below each thread track
  var BG = "#ffffff", BG_ALT = "#f6f7f9", PROC_BG = "#e8ecf3", GRID = "rgba(0,0,0,0.06)";
  var MERGED = "#9ea5b0", MERGED_DIM = "#dfe2e7", DIM = "#e4e7ec";
  var FONT = "11px system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', sans-serif";
  var FONT_BOLD = "600 12px system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', sans-serif";

  // 48 colours, picked per function name by a hash, so a function keeps its colour.
  var PALETTE = [];
  (function () {
    for (var i = 0; i < 48; i++) {
      var hue = Math.round((i * 137.508) % 360);
      var light = i % 3 === 0 ? 70 : i % 3 === 1 ? 62 : 76;
      PALETTE.push("hsl(" + hue + ",55%," + light + "%)");
    }
  })();
  function hashName(s) {
    var h = 0x811c9dc5;
    for (var i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
    return (h >>> 0) % PALETTE.length;
  }

  // ------------------------------------------------------------------ state
  var S = {
    model: null, ready: false, error: null, empty: false,
    view: { start: 0, end: 1 },
    scrollTop: 0,
    tracks: [], contentH: 0,
    collapsedProc: new Set(), collapsedThread: new Set(),
    selected: null,
    range: null,
    search: { text: "", regex: false, mask: null, count: 0, list: null, cursor: -1, error: null },
    mouse: { x: -1, y: -1, over: false },
    drag: null,
    colour: null,           // Uint8Array name id -> palette index
    nameW: null, shortW: null, shortNames: null,
    timings: {}, frames: 0, lastFrameMs: 0, drawPending: false,
    summarySort: { key: "total", desc: true },
    summaryDirty: true,
    requests: 0
  };

  var el = {};
  ["canvas", "scroller", "spacer", "tooltip", "message", "search", "search-regex", "search-prev", "search-next",
   "search-count", "trace-title", "notice", "details-empty", "details-props", "details-args", "source-head",
   "source-code", "summary-scope", "summary-table", "summary-more", "range-info", "help", "help-button",
   "help-close", "fit-button", "splitter", "panel", "timeline", "tab-details", "tab-summary"].forEach(function (id) {
    el[id] = document.getElementById(id);
  });
  var ctx = el.canvas.getContext("2d", { alpha: false });
  var cssW = 0, cssH = 0, dpr = 1;

  // ------------------------------------------------------------------ helpers
  function fmtDur(us) { return M.fmtDur(us); }
  function absTs(t) { return S.model ? S.model.t0 + t : t; }
  function plainNumber(v) {
    var s = String(Math.round(v * 1000) / 1000);
    return s;
  }
  function threadLabel(t) {
    return (t.name !== null ? t.name : "Thread") + " " + t.tid;
  }
  function procLabel(p) {
    return (p.name !== null ? p.name : "Process") + " (pid " + p.pid + ")";
  }
  function shortName(name) {
    var k = name.lastIndexOf(" (");
    return k > 0 && name.charAt(name.length - 1) === ")" ? name.slice(0, k) : name;
  }
  function setMessage(text, isError) {
    if (text === null) { el.message.hidden = true; return; }
    el.message.hidden = false;
    el.message.textContent = text;
    el.message.className = isError ? "error" : "";
  }
  function nextTick() {
    return new Promise(function (resolve) { setTimeout(resolve, 0); });
  }

  // ------------------------------------------------------------------ loading
  function base64ToBytes(b64) {
    var bin = atob(b64);
    var n = bin.length, out = new Uint8Array(n);
    for (var i = 0; i < n; i++) out[i] = bin.charCodeAt(i);
    return out;
  }

  function gunzip(bytes) {
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("gzip"));
    return new Response(stream).arrayBuffer().then(function (ab) { return new Uint8Array(ab); });
  }

  function buildModel(bytes) {
    try {
      return M.buildFromBytes(bytes);
    } catch (fastError) {
      // The fast loader only reads what it knows; let the JSON parser judge the file.
      var text = new TextDecoder("utf-8").decode(bytes);
      var trace;
      try {
        trace = JSON.parse(text);
      } catch (e) {
        throw new Error("The trace is not valid JSON: " + (e && e.message ? e.message : e));
      }
      return M.build(trace);
    }
  }

  function loadEmbedded(node) {
    var enc = node.getAttribute("data-encoding") || "json";
    var text = node.textContent;
    if (enc === "gzip-base64") {
      return gunzip(base64ToBytes(text.replace(/\s+/g, "")));
    }
    return Promise.resolve(new TextEncoder().encode(text));
  }

  function loadFromServer() {
    var fileInfo = null;
    return fetch("vizviewer_info", { cache: "no-store" }).then(function (r) {
      if (!r.ok) throw new Error("This page needs the vizviewer server (vizviewer_info answered " + r.status + ").");
      return fetch("localtrace", { cache: "no-store" });
    }).then(function (r) {
      if (!r.ok) throw new Error("Could not load the trace (localtrace answered " + r.status + ").");
      // Asked last on purpose: `vizviewer --once` exits after answering it.
      fileInfo = fetch("file_info", { cache: "no-store" }).then(function (f) {
        return f.ok ? f.json() : null;
      }).catch(function () { return null; });
      return r.arrayBuffer();
    }).then(function (ab) {
      var bytes = new Uint8Array(ab);
      S.timings.fetched = performance.now();
      if (bytes[0] === 0x1f && bytes[1] === 0x8b) return gunzip(bytes);
      return bytes;
    }).then(function (bytes) {
      return { bytes: bytes, fileInfo: fileInfo };
    });
  }

  function start() {
    S.timings.start = performance.now();
    var node = document.getElementById("vizviewer-data");
    var title = node ? node.getAttribute("data-title") : null;
    if (title) { el["trace-title"].textContent = title; document.title = title + " - vizviewer"; }
    var p = node ? loadEmbedded(node).then(function (bytes) {
      S.timings.fetched = performance.now();
      return { bytes: bytes, fileInfo: null };
    }) : loadFromServer();
    p.then(function (loaded) {
      setMessage("Reading " + (loaded.bytes.length / 1e6).toFixed(1) + " MB of events...");
      return nextTick().then(function () {
        var model = buildModel(loaded.bytes);
        S.timings.built = performance.now();
        setModel(model);
        if (loaded.fileInfo) {
          loaded.fileInfo.then(function (fi) {
            if (fi && typeof fi === "object" && Object.keys(fi).length && !S.model.fileInfo) {
              S.model.fileInfo = fi;
              if (S.selected) showDetails();
            }
          });
        }
      });
    }).catch(function (err) {
      S.error = String(err && err.message ? err.message : err);
      setMessage("Could not open the trace.\n" + S.error, true);
    });
  }

  function setModel(model) {
    S.model = model;
    var nn = model.names.length;
    S.colour = new Uint8Array(nn);
    S.nameW = new Float32Array(nn).fill(-1);
    S.shortW = new Float32Array(nn).fill(-1);
    S.shortNames = new Array(nn);
    for (var i = 0; i < nn; i++) {
      S.colour[i] = hashName(shortName(model.names[i]));
    }
    var notices = [];
    if (model.metadata && model.metadata.overflow) {
      notices.push("The tracer's buffer was full: the earliest events were dropped (use a larger tracer_entries to keep more).");
    }
    if (model.unmatchedEnd) notices.push(model.unmatchedEnd + " end events without a begin were ignored.");
    if (model.unfinished) notices.push(model.unfinished + " functions had not returned when tracing stopped; they are drawn to the end of the trace.");
    if (notices.length) { el.notice.hidden = false; el.notice.textContent = notices.join(" "); }
    fitAll();
    computeLayout();
    S.empty = model.sliceCount === 0 && model.eventCount === 0;
    var nothing = model.sliceCount === 0 && !model.globalInstants.n &&
      !model.processes.some(function (p) { return p.counters.length || p.instants.n || p.threads.some(function (t) { return t.instants.n; }); });
    S.empty = nothing;
    setMessage(nothing ? "No events in this trace." : null);
    S.summaryDirty = true;
    if (activeTab() === "summary") renderSummary();
    drawNow();
    S.timings.firstFrame = performance.now();
    S.ready = true;
  }

  // ------------------------------------------------------------------ layout
  function computeLayout() {
    var m = S.model, tracks = [], y = 0;
    if (!m) return;
    if (m.globalInstants.n) {
      tracks.push({ kind: "instants", scope: "global", holder: m.globalInstants, name: "Global instants", y: y, h: LANE_H, pid: null, tid: null });
      y += LANE_H;
    }
    for (var pi = 0; pi < m.processes.length; pi++) {
      var p = m.processes[pi];
      var collapsed = S.collapsedProc.has(p);
      tracks.push({ kind: "process", proc: p, name: procLabel(p), y: y, h: PROC_H, pid: p.pid, tid: null, collapsed: collapsed });
      y += PROC_H;
      if (collapsed) continue;
      if (p.instants.n) {
        tracks.push({ kind: "instants", scope: "process", holder: p.instants, proc: p, name: "Process instants", y: y, h: LANE_H, pid: p.pid, tid: null });
        y += LANE_H;
      }
      for (var ci = 0; ci < p.counters.length; ci++) {
        var c = p.counters[ci];
        tracks.push({ kind: "counter", counter: c, proc: p, name: c.name, y: y, h: COUNTER_H, pid: p.pid, tid: null });
        y += COUNTER_H;
      }
      for (var ti = 0; ti < p.threads.length; ti++) {
        var t = p.threads[ti];
        var tc = S.collapsedThread.has(t);
        var rows = Math.max(1, tc ? 1 : t.maxDepth + 1);
        var ih = t.instants.n ? INST_H : 0;
        var h = ih + rows * ROW_H + PAD;
        tracks.push({ kind: "thread", thread: t, proc: p, name: threadLabel(t), y: y, h: h, instH: ih, rows: rows,
                      pid: p.pid, tid: t.tid, collapsed: tc, alt: ti % 2 === 1 });
        y += h;
      }
    }
    S.tracks = tracks;
    S.contentH = y;
    updateSpacer();
  }

  function updateSpacer() {
    var total = RULER_H + S.contentH + 40;
    el.spacer.style.height = Math.max(0, total - cssH) + "px";
  }

  function resize() {
    var w = el.scroller.clientWidth, h = el.scroller.clientHeight;
    var r = window.devicePixelRatio || 1;
    if (w === cssW && h === cssH && r === dpr) return false;
    cssW = w; cssH = h; dpr = r;
    el.canvas.style.width = w + "px";
    el.canvas.style.height = h + "px";
    el.canvas.width = Math.max(1, Math.round(w * dpr));
    el.canvas.height = Math.max(1, Math.round(h * dpr));
    updateSpacer();
    return true;
  }

  // ------------------------------------------------------------------ viewport
  function traceSpan() { return S.model && S.model.span > 0 ? S.model.span : 1; }
  function tlWidth() { return Math.max(10, cssW - LABEL_W); }
  function scale() { return tlWidth() / (S.view.end - S.view.start); }
  function xOf(t) { return LABEL_W + (t - S.view.start) * scale(); }
  function tOf(x) { return S.view.start + (x - LABEL_W) / scale(); }

  function setView(start, end) {
    var span = traceSpan();
    var minSpan = 0.02, maxSpan = span * 1.2;
    var w = end - start;
    if (!(w > minSpan)) { var c = (start + end) / 2; start = c - minSpan / 2; end = c + minSpan / 2; w = minSpan; }
    if (w > maxSpan) { var c2 = (start + end) / 2; start = c2 - maxSpan / 2; end = c2 + maxSpan / 2; w = maxSpan; }
    var lo = -span * 0.1, hi = span * 1.1;
    if (start < lo) { start = lo; end = lo + w; }
    if (end > hi) { end = hi; start = hi - w; }
    S.view.start = start; S.view.end = end;
    requestDraw();
  }
  function fitAll() {
    var span = traceSpan();
    var pad = span * 0.01;
    S.view.start = -pad; S.view.end = span + pad;
    requestDraw();
  }
  function zoomAt(factor, x) {
    var anchor = x >= LABEL_W && x <= cssW ? tOf(x) : (S.view.start + S.view.end) / 2;
    var s = anchor - (anchor - S.view.start) * factor;
    var e = anchor + (S.view.end - anchor) * factor;
    setView(s, e);
  }
  function panBy(dt) { setView(S.view.start + dt, S.view.end + dt); }
  function zoomTo(s, e) {
    var pad = Math.max((e - s) * 0.08, 0.01);
    setView(s - pad, e + pad);
  }
  function setScroll(top) {
    var max = Math.max(0, RULER_H + S.contentH + 40 - cssH);
    top = Math.max(0, Math.min(max, top));
    S.scrollTop = top;
    if (Math.abs(el.scroller.scrollTop - top) >= 1) el.scroller.scrollTop = top;
    requestDraw();
  }

  // ------------------------------------------------------------------ drawing
  function requestDraw() {
    if (S.drawPending) return;
    S.drawPending = true;
    requestAnimationFrame(function () { S.drawPending = false; drawNow(); });
  }

  var buckets = [], mergedRects = [], mergedDimRects = [], dimRects = [];
  var labels = { x: [], y: [], w: [], id: [], n: 0 };

  function pushRect(arr, x, y, w, h) { arr.push(x, y, w, h); }

  function drawNow() {
    var t0 = performance.now();
    resize();
    S.scrollTop = el.scroller.scrollTop;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = BG;
    ctx.fillRect(0, 0, cssW, cssH);
    var m = S.model;
    if (!m) { S.lastFrameMs = performance.now() - t0; return; }
    if (buckets.length !== PALETTE.length) { buckets = PALETTE.map(function () { return []; }); }
    for (var b = 0; b < buckets.length; b++) buckets[b].length = 0;
    mergedRects.length = 0; mergedDimRects.length = 0; dimRects.length = 0;
    labels.n = 0;

    var sc = scale(), vs = S.view.start, ve = S.view.end;
    var top = S.scrollTop, viewH = cssH - RULER_H;
    var tracks = S.tracks;
    // backgrounds and labels column first
    for (var i = 0; i < tracks.length; i++) {
      var tr = tracks[i];
      if (tr.y + tr.h < top || tr.y > top + viewH) continue;
      var y = RULER_H + tr.y - top;
      if (tr.kind === "process") {
        ctx.fillStyle = PROC_BG;
        ctx.fillRect(0, y, cssW, tr.h);
      } else if (tr.alt) {
        ctx.fillStyle = BG_ALT;
        ctx.fillRect(0, y, cssW, tr.h);
      }
    }
    drawGrid(vs, ve, sc);
    for (i = 0; i < tracks.length; i++) {
      tr = tracks[i];
      if (tr.y + tr.h < top || tr.y > top + viewH) continue;
      y = RULER_H + tr.y - top;
      if (tr.kind === "thread") drawThread(tr, y, vs, ve, sc);
      else if (tr.kind === "counter") drawCounter(tr, y, vs, ve, sc);
      else if (tr.kind === "instants") drawInstantLane(tr.holder, y + 3, tr.h - 6, vs, ve, sc);
    }
    flushRects();
    drawLabels();
    drawSelection(sc);
    drawTrackNames(top, viewH);
    drawRuler(vs, ve, sc);
    drawRange(sc);
    S.frames++;
    S.lastFrameMs = performance.now() - t0;
  }

  function drawGrid(vs, ve, sc) {
    var step = tickStep(ve - vs);
    ctx.fillStyle = GRID;
    for (var t = Math.ceil(vs / step) * step; t <= ve; t += step) {
      var x = Math.round(LABEL_W + (t - vs) * sc);
      ctx.fillRect(x, RULER_H, 1, cssH - RULER_H);
    }
  }

  function tickStep(span) {
    var raw = span * 110 / tlWidth();
    var p = Math.pow(10, Math.floor(Math.log10(raw)));
    var n = raw / p;
    return (n < 1.5 ? 1 : n < 3.5 ? 2 : n < 7.5 ? 5 : 10) * p;
  }

  function drawThread(tr, y, vs, ve, sc) {
    var t = tr.thread;
    if (tr.instH) drawInstantLane(t.instants, y + 1, tr.instH - 2, vs, ve, sc);
    var rowsTop = y + tr.instH;
    var mask = S.search.mask;
    var W = cssW;
    var minT = vs, px = 1 / sc;
    for (var d = 0; d < tr.rows && d < t.rows.length; d++) {
      var ry = rowsTop + d * ROW_H;
      if (ry + ROW_H < RULER_H || ry > cssH) continue;
      var row = t.rows[d], st = row.st, en = row.en, ix = row.ix, n = row.n;
      var i = M.upperBound(en, minT, 0, n);
      var h = ROW_H - 1;
      while (i < n) {
        var s = st[i];
        if (s >= ve) break;
        var x0 = LABEL_W + (s - vs) * sc, x1 = LABEL_W + (en[i] - vs) * sc;
        if (x1 - x0 >= 1) {
          var k = ix[i], id = t.nm[k];
          var cx0 = x0 < LABEL_W ? LABEL_W : x0, cx1 = x1 > W ? W : x1;
          var target = mask && !mask[id] ? dimRects : buckets[S.colour[id]];
          target.push(cx0, ry, cx1 - cx0, h);
          if (cx1 - cx0 > 26 && (!mask || mask[id])) {
            labels.x[labels.n] = cx0; labels.y[labels.n] = ry; labels.w[labels.n] = cx1 - cx0; labels.id[labels.n] = id; labels.n++;
          }
          i++;
          continue;
        }
        // A run of slices narrower than a pixel: one grey block.
        var bx0 = x0, bx1 = Math.max(x1, x0 + 1);
        var anyMatch = mask ? mask[t.nm[ix[i]]] : 1;
        i++;
        for (;;) {
          var tEnd = vs + (bx1 - LABEL_W) * px;
          var j = M.upperBound(en, tEnd, i, n);
          if (mask && !anyMatch) {
            for (var q = i; q < j; q++) if (mask[t.nm[ix[q]]]) { anyMatch = 1; break; }
          }
          i = j;
          if (i >= n) break;
          var nx0 = LABEL_W + (st[i] - vs) * sc;
          if (nx0 >= bx1 + 1) break;
          var nx1 = LABEL_W + (en[i] - vs) * sc;
          if (nx1 - nx0 >= 1) break;
          if (mask && !anyMatch && mask[t.nm[ix[i]]]) anyMatch = 1;
          bx1 = Math.max(bx1, nx1, nx0 + 1);
          i++;
        }
        if (bx0 < LABEL_W) bx0 = LABEL_W;
        if (bx1 > bx0) (anyMatch ? mergedRects : mergedDimRects).push(bx0, ry, bx1 - bx0, h);
      }
    }
  }

  function drawInstantLane(holder, y, h, vs, ve, sc) {
    var n = holder.n;
    if (!n) return;
    var ts = holder.ts;
    var i = M.lowerBound(ts, vs - 4 / sc, 0, n);
    ctx.beginPath();
    var lastX = -10;
    while (i < n) {
      var x = LABEL_W + (ts[i] - vs) * sc;
      if (x > cssW + 4) break;
      if (x - lastX >= 2) {
        ctx.moveTo(x - 4, y); ctx.lineTo(x + 4, y); ctx.lineTo(x, y + Math.min(h, 8)); ctx.closePath();
        ctx.rect(x - 0.5, y, 1, h);
        lastX = x;
        i++;
      } else {
        i = M.lowerBound(ts, vs + (lastX + 2 - LABEL_W) / sc, i + 1, n);
      }
    }
    ctx.fillStyle = "#c2410c";
    ctx.fill();
  }

  function drawCounter(tr, y, vs, ve, sc) {
    var c = tr.counter, n = c.n;
    if (!n) return;
    var lo = Math.min(0, c.min), hi = c.max > lo ? c.max : lo + 1;
    var top = y + 4, h = tr.h - 8;
    function yv(v) { return top + h - (v - lo) / (hi - lo) * h; }
    var i = Math.max(0, M.upperBound(c.ts, vs, 0, n) - 1);
    var base = yv(Math.max(lo, Math.min(0, hi)));
    ctx.beginPath();
    var x = Math.max(LABEL_W, LABEL_W + (c.ts[i] - vs) * sc);
    ctx.moveTo(x, base);
    var lastX = -1e9, colMax = -Infinity;
    for (; i < n; i++) {
      var xi = LABEL_W + (c.ts[i] - vs) * sc;
      if (xi > cssW) break;
      if (xi < LABEL_W) xi = LABEL_W;
      var nx = i + 1 < n ? LABEL_W + (c.ts[i + 1] - vs) * sc : LABEL_W + (S.model.span - vs) * sc;
      if (nx > cssW) nx = cssW;
      var yy = yv(c.v[i]);
      ctx.lineTo(xi, yy);
      ctx.lineTo(Math.max(xi, nx), yy);
      lastX = nx;
    }
    ctx.lineTo(lastX > -1e9 ? lastX : x, base);
    ctx.closePath();
    ctx.fillStyle = "rgba(37, 99, 170, 0.28)";
    ctx.fill();
    ctx.strokeStyle = "#2563aa";
    ctx.lineWidth = 1;
    ctx.stroke();
    ctx.fillStyle = "#5a6272";
    ctx.font = FONT;
    ctx.fillText(plainNumber(c.max), LABEL_W + 4, top + 9);
  }

  function flushRects() {
    for (var b = 0; b < buckets.length; b++) fillList(buckets[b], PALETTE[b]);
    fillList(dimRects, DIM);
    fillList(mergedRects, MERGED);
    fillList(mergedDimRects, MERGED_DIM);
  }
  function fillList(list, colour) {
    var n = list.length;
    if (!n) return;
    ctx.fillStyle = colour;
    ctx.beginPath();
    for (var i = 0; i < n; i += 4) ctx.rect(list[i], list[i + 1], list[i + 2], list[i + 3]);
    ctx.fill();
  }

  function textWidth(id, short) {
    var arr = short ? S.shortW : S.nameW;
    var w = arr[id];
    if (w < 0) {
      w = ctx.measureText(short ? shortOf(id) : S.model.names[id]).width;
      arr[id] = w;
    }
    return w;
  }
  function shortOf(id) {
    var s = S.shortNames[id];
    if (s === undefined) { s = shortName(S.model.names[id]); S.shortNames[id] = s; }
    return s;
  }

  function drawLabels() {
    if (!labels.n) return;
    ctx.font = FONT;
    ctx.fillStyle = "#16181d";
    ctx.textBaseline = "middle";
    for (var i = 0; i < labels.n; i++) {
      var id = labels.id[i], avail = labels.w[i] - 6;
      var text;
      if (textWidth(id, false) <= avail) text = S.model.names[id];
      else {
        var sw = textWidth(id, true);
        text = shortOf(id);
        if (sw > avail) {
          var keep = Math.floor(text.length * avail / sw) - 1;
          if (keep < 2) continue;
          text = text.slice(0, keep) + "\u2026";
        }
      }
      ctx.fillText(text, labels.x[i] + 3, labels.y[i] + ROW_H / 2);
    }
    ctx.textBaseline = "alphabetic";
  }

  function drawSelection(sc) {
    var sel = S.selected;
    if (!sel || sel.kind !== "slice") return;
    var tr = trackOfThread(sel.thread);
    if (!tr) return;
    var t = sel.thread, d = t.depth[sel.i];
    if (d >= tr.rows) return;
    var y = RULER_H + tr.y - S.scrollTop + tr.instH + d * ROW_H;
    var x0 = LABEL_W + (t.st[sel.i] - S.view.start) * sc, x1 = LABEL_W + (t.st[sel.i] + t.du[sel.i] - S.view.start) * sc;
    x0 = Math.max(LABEL_W - 2, x0); x1 = Math.min(cssW + 2, Math.max(x1, x0 + 1));
    ctx.strokeStyle = "#0b1a33";
    ctx.lineWidth = 2;
    ctx.strokeRect(x0, y, x1 - x0, ROW_H - 1);
  }

  function drawTrackNames(top, viewH) {
    ctx.fillStyle = "#f3f4f7";
    ctx.fillRect(0, RULER_H, LABEL_W, cssH - RULER_H);
    ctx.font = FONT;
    ctx.textBaseline = "middle";
    var tracks = S.tracks;
    for (var i = 0; i < tracks.length; i++) {
      var tr = tracks[i];
      if (tr.y + tr.h < top || tr.y > top + viewH) continue;
      var y = RULER_H + tr.y - top;
      var label = tr.name, x = 10;
      if (tr.kind === "process") {
        ctx.fillStyle = PROC_BG;
        ctx.fillRect(0, y, LABEL_W, tr.h);
        ctx.font = FONT_BOLD;
        drawFoldMark(4, y + tr.h / 2, tr.collapsed);
        x = 16;
      } else {
        ctx.font = FONT;
        if (tr.kind === "thread") {
          x = 20;
          if (tr.thread.maxDepth > 0) drawFoldMark(8, y + Math.min(tr.h, ROW_H + tr.instH) / 2, tr.collapsed);
        } else {
          x = 20;
        }
      }
      ctx.fillStyle = tr.kind === "counter" ? "#2563aa" : tr.kind === "instants" ? "#9a3412" : "#1d2330";
      var avail = LABEL_W - x - 6;
      var w = ctx.measureText(label).width;
      if (w > avail) {
        var keep = Math.max(1, Math.floor(label.length * avail / w) - 1);
        label = label.slice(0, keep) + "\u2026";
      }
      var ly = tr.kind === "thread" ? y + Math.min(tr.h - PAD, ROW_H + tr.instH) / 2 + (tr.instH ? tr.instH / 2 : 0) : y + tr.h / 2;
      ctx.fillText(label, x, ly);
      ctx.fillStyle = "#e1e4ea";
      ctx.fillRect(0, y + tr.h - 1, cssW, 1);
    }
    ctx.textBaseline = "alphabetic";
    ctx.fillStyle = "#cfd4dc";
    ctx.fillRect(LABEL_W - 1, RULER_H, 1, cssH - RULER_H);
  }

  function drawFoldMark(x, y, collapsed) {
    ctx.fillStyle = "#5a6272";
    ctx.beginPath();
    if (collapsed) { ctx.moveTo(x, y - 4); ctx.lineTo(x + 5, y); ctx.lineTo(x, y + 4); }
    else { ctx.moveTo(x - 1, y - 3); ctx.lineTo(x + 7, y - 3); ctx.lineTo(x + 3, y + 2); }
    ctx.closePath();
    ctx.fill();
  }

  function drawRuler(vs, ve, sc) {
    ctx.fillStyle = "#f7f8fa";
    ctx.fillRect(0, 0, cssW, RULER_H);
    ctx.fillStyle = "#cfd4dc";
    ctx.fillRect(0, RULER_H - 1, cssW, 1);
    var step = tickStep(ve - vs);
    ctx.font = FONT;
    ctx.fillStyle = "#3b4250";
    ctx.textBaseline = "middle";
    for (var t = Math.ceil(vs / step) * step; t <= ve; t += step) {
      var x = Math.round(LABEL_W + (t - vs) * sc);
      ctx.fillRect(x, RULER_H - 9, 1, 8);
      ctx.fillText(M.fmtTick(Math.abs(t) < step * 1e-6 ? 0 : t, step), x + 3, 9);
    }
    // search hits: a tick per pixel column that has a match
    var list = S.search.mask ? ensureMatchList() : null;
    if (list && list.n) {
      ctx.fillStyle = "#d97706";
      var j = M.lowerBound(list.st, vs, 0, list.n);
      while (j < list.n) {
        var mx = Math.floor(LABEL_W + (list.st[j] - vs) * sc);
        if (mx > cssW) break;
        ctx.fillRect(mx, RULER_H - 5, 2, 4);
        j = M.lowerBound(list.st, vs + (mx + 2 - LABEL_W) / sc, j + 1, list.n);
      }
    }
    ctx.textBaseline = "alphabetic";
    ctx.fillStyle = "#f3f4f7";
    ctx.fillRect(0, 0, LABEL_W, RULER_H - 1);
    ctx.fillStyle = "#5a6272";
    ctx.fillText("span " + fmtDur(ve - vs), 10, 18);
  }

  function drawRange(sc) {
    var r = S.range;
    if (!r) return;
    var x0 = LABEL_W + (r.start - S.view.start) * sc, x1 = LABEL_W + (r.end - S.view.start) * sc;
    var a = Math.max(LABEL_W, x0), b = Math.min(cssW, x1);
    if (b > a) {
      ctx.fillStyle = "rgba(59, 130, 246, 0.13)";
      ctx.fillRect(a, 0, b - a, cssH);
    }
    ctx.fillStyle = "#2563eb";
    if (x0 >= LABEL_W && x0 <= cssW) ctx.fillRect(x0 - 0.5, 0, 1, cssH);
    if (x1 >= LABEL_W && x1 <= cssW) ctx.fillRect(x1 - 0.5, 0, 1, cssH);
    var label = fmtDur(r.end - r.start);
    ctx.font = FONT_BOLD;
    var w = ctx.measureText(label).width + 10;
    var cx = Math.max(LABEL_W, Math.min(cssW - w, (a + b) / 2 - w / 2));
    ctx.fillStyle = "#2563eb";
    ctx.fillRect(cx, 2, w, 16);
    ctx.fillStyle = "#fff";
    ctx.textBaseline = "middle";
    ctx.fillText(label, cx + 5, 10);
    ctx.textBaseline = "alphabetic";
  }

  // ------------------------------------------------------------------ hit testing
  function trackOfThread(t) {
    for (var i = 0; i < S.tracks.length; i++) if (S.tracks[i].thread === t) return S.tracks[i];
    return null;
  }

  function trackAtY(y) {
    var cy = y - RULER_H + S.scrollTop;
    var tracks = S.tracks, lo = 0, hi = tracks.length - 1;
    while (lo <= hi) {
      var mid = (lo + hi) >> 1, tr = tracks[mid];
      if (cy < tr.y) hi = mid - 1;
      else if (cy >= tr.y + tr.h) lo = mid + 1;
      else return { track: tr, cy: cy - tr.y };
    }
    return null;
  }

  /** What is under (x, y) in canvas coordinates. */
  function hitTest(x, y) {
    if (!S.model) return null;
    if (y < RULER_H) return { kind: "ruler" };
    var at = trackAtY(y);
    if (!at) return null;
    var tr = at.track;
    if (x < LABEL_W) return { kind: "label", track: tr };
    var sc = scale(), t = tOf(x), tol = 3 / sc;
    if (tr.kind === "thread") {
      var th = tr.thread;
      if (tr.instH && at.cy < tr.instH) {
        var k = nearest(th.instants.ts, th.instants.n, t, tol * 2);
        return k >= 0 ? { kind: "instant", holder: th.instants, i: k, track: tr } : { kind: "empty", track: tr };
      }
      var d = Math.floor((at.cy - tr.instH) / ROW_H);
      if (d < 0 || d >= tr.rows || d >= th.rows.length) return { kind: "empty", track: tr };
      var row = th.rows[d];
      var j = M.upperBound(row.en, t - tol, 0, row.n);
      var best = -1, bestDist = Infinity;
      for (; j < row.n && row.st[j] <= t + tol; j++) {
        var dist = t < row.st[j] ? row.st[j] - t : t > row.en[j] ? t - row.en[j] : 0;
        if (dist < bestDist) { bestDist = dist; best = j; if (dist === 0) break; }
      }
      if (best >= 0) return { kind: "slice", thread: th, i: row.ix[best], track: tr };
      return { kind: "empty", track: tr };
    }
    if (tr.kind === "instants") {
      var h = tr.holder, ki = nearest(h.ts, h.n, t, tol * 2);
      return ki >= 0 ? { kind: "instant", holder: h, i: ki, track: tr } : { kind: "empty", track: tr };
    }
    if (tr.kind === "counter") {
      var ci = M.upperBound(tr.counter.ts, t, 0, tr.counter.n) - 1;
      return ci >= 0 ? { kind: "counter", counter: tr.counter, i: ci, track: tr } : { kind: "empty", track: tr };
    }
    return { kind: "empty", track: tr };
  }

  function nearest(ts, n, t, tol) {
    var j = M.lowerBound(ts, t - tol, 0, n), best = -1, bd = Infinity;
    for (; j < n && ts[j] <= t + tol; j++) {
      var d = Math.abs(ts[j] - t);
      if (d < bd) { bd = d; best = j; }
    }
    return best;
  }

  // ------------------------------------------------------------------ selection and details
  function select(hit) {
    if (hit && (hit.kind === "slice" || hit.kind === "instant" || hit.kind === "counter")) {
      S.selected = hit;
    } else {
      S.selected = null;
    }
    showDetails();
    requestDraw();
  }

  function clearNode(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  function addProp(tbody, key, value) {
    var tr = document.createElement("tr");
    var th = document.createElement("th"); th.textContent = key;
    var td = document.createElement("td"); td.textContent = value;
    tr.appendChild(th); tr.appendChild(td);
    tbody.appendChild(tr);
    return td;
  }

  function showDetails() {
    var sel = S.selected, m = S.model;
    var props = el["details-props"], tbody = props.tBodies[0];
    clearNode(tbody);
    clearNode(el["details-args"]);
    if (!sel || !m) {
      props.hidden = true;
      el["details-empty"].hidden = false;
      showSource(null);
      return;
    }
    if (activeTab() !== "details") switchTab("details");
    props.hidden = false;
    el["details-empty"].hidden = true;
    var ev, name;
    if (sel.kind === "slice") {
      var t = sel.thread, i = sel.i;
      name = m.names[t.nm[i]];
      ev = m.eventAt(t.ev[i]) || {};
      addProp(tbody, "Name", name);
      if (ev.cat !== undefined) addProp(tbody, "Category", String(ev.cat));
      addProp(tbody, "Start", fmtDur(t.st[i]) + "  (ts " + plainNumber(absTs(t.st[i])) + " \u00b5s)");
      addProp(tbody, "Duration", fmtDur(t.du[i]) + (t.flags[i] ? "  (did not return before tracing stopped)" : ""));
      addProp(tbody, "Self time", fmtDur(t.self[i]));
      addProp(tbody, "Thread", threadLabel(t));
      addProp(tbody, "Process", procLabel(t.proc));
      addProp(tbody, "Depth", String(t.depth[i]));
      var args = ev.args;
      if (t.endArgs && t.endArgs.has(t.ev[i])) {
        var endEv = m.eventAt(t.endArgs.get(t.ev[i]));
        if (endEv && endEv.args && typeof endEv.args === "object") args = Object.assign({}, args || {}, endEv.args);
      }
      showArgs(args);
      showSource(name);
    } else if (sel.kind === "instant") {
      var h = sel.holder;
      name = m.names[h.nm[sel.i]];
      ev = m.eventAt(h.ev[sel.i]) || {};
      addProp(tbody, "Instant", name);
      addProp(tbody, "Time", fmtDur(h.ts[sel.i]) + "  (ts " + plainNumber(absTs(h.ts[sel.i])) + " \u00b5s)");
      addProp(tbody, "Scope", ev.s === "g" ? "global" : ev.s === "p" ? "process" : "thread");
      if (sel.track && sel.track.kind === "thread") addProp(tbody, "Thread", threadLabel(sel.track.thread));
      if (ev.pid !== undefined) addProp(tbody, "Process", String(ev.pid));
      showArgs(ev.args);
      showSource(null, true);
    } else if (sel.kind === "counter") {
      var c = sel.counter;
      ev = m.eventAt(c.ev[sel.i]) || {};
      addProp(tbody, "Counter", c.counter);
      addProp(tbody, "Series", c.key);
      addProp(tbody, "Value", plainNumber(c.v[sel.i]));
      addProp(tbody, "Time", fmtDur(c.ts[sel.i]) + "  (ts " + plainNumber(absTs(c.ts[sel.i])) + " \u00b5s)");
      addProp(tbody, "Process", String(c.pid));
      showArgs(ev.args);
      showSource(null, true);
    }
  }

  function showArgs(args) {
    var box = el["details-args"];
    if (args === undefined || args === null) return;
    if (typeof args !== "object") { box.appendChild(jsonNode("args", args, 0)); return; }
    var rest = Object.assign({}, args);
    if (rest.func_args && typeof rest.func_args === "object") {
      var h = document.createElement("h4"); h.textContent = "Arguments"; box.appendChild(h);
      for (var k in rest.func_args) box.appendChild(jsonNode(k, rest.func_args[k], 0));
      delete rest.func_args;
    }
    if ("return_value" in rest) {
      var h2 = document.createElement("h4"); h2.textContent = "Return value"; box.appendChild(h2);
      box.appendChild(jsonNode("return_value", rest.return_value, 0, true));
      delete rest.return_value;
    }
    var keys = Object.keys(rest);
    if (keys.length) {
      var h3 = document.createElement("h4"); h3.textContent = "Args"; box.appendChild(h3);
      for (var i = 0; i < keys.length && i < 500; i++) box.appendChild(jsonNode(keys[i], rest[keys[i]], 0));
    }
  }

  function jsonNode(key, value, depth, bare) {
    if (value !== null && typeof value === "object") {
      var det = document.createElement("details");
      det.open = depth < 2;
      var sum = document.createElement("summary");
      var ks = document.createElement("span"); ks.className = "key"; ks.textContent = key;
      sum.appendChild(ks);
      var isArr = Array.isArray(value);
      var keys = Object.keys(value);
      sum.appendChild(document.createTextNode(": " + (isArr ? "[" + keys.length + "]" : "{" + keys.length + "}")));
      det.appendChild(sum);
      for (var i = 0; i < keys.length && i < 500; i++) det.appendChild(jsonNode(keys[i], value[keys[i]], depth + 1));
      if (keys.length > 500) { var more = document.createElement("div"); more.textContent = "... " + (keys.length - 500) + " more"; det.appendChild(more); }
      return det;
    }
    var div = document.createElement("div");
    div.className = "kv";
    if (!bare) {
      var k = document.createElement("span"); k.className = "key"; k.textContent = key;
      div.appendChild(k);
      div.appendChild(document.createTextNode(": "));
    }
    var v = document.createElement("span");
    v.className = typeof value === "string" ? "str" : typeof value === "number" ? "num" : "lit";
    v.textContent = typeof value === "string" ? value : JSON.stringify(value);
    div.appendChild(v);
    return div;
  }

  function showSource(name, hide) {
    var head = el["source-head"], code = el["source-code"];
    clearNode(code);
    head.textContent = "";
    if (name === null) {
      if (!hide) return;
      return;
    }
    var src = M.sourceOf(S.model.fileInfo, name);
    if (!src) {
      head.textContent = "Source";
      var p = document.createElement("div");
      p.className = "none";
      p.textContent = "Source not available for " + shortName(name) + " (the trace has no file_info for it).";
      code.appendChild(p);
      return;
    }
    head.textContent = src.path + ":" + src.line;
    head.title = src.path;
    var lines = src.source.split("\n");
    if (lines.length && lines[lines.length - 1] === "") lines.pop();
    var frag = document.createDocumentFragment(), hl = null;
    for (var i = 0; i < lines.length; i++) {
      var line = document.createElement("span");
      line.className = "line";
      var ln = document.createElement("span"); ln.className = "ln"; ln.textContent = String(i + 1);
      line.appendChild(ln);
      var text = document.createElement("span"); text.className = "code"; text.textContent = lines[i] + "\n";
      line.appendChild(text);
      if (i + 1 === src.line) { line.className = "line hl"; line.setAttribute("data-highlight", "1"); hl = line; }
      frag.appendChild(line);
    }
    code.appendChild(frag);
    if (hl) {
      code.scrollTop = Math.max(0, hl.offsetTop - code.offsetTop - code.clientHeight / 3);
    }
  }

  // ------------------------------------------------------------------ search
  var searchTimer = 0;
  function scheduleSearch() {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(runSearch, 120);
  }
  function runSearch() {
    clearTimeout(searchTimer);
    var text = el.search.value, regex = el["search-regex"].checked;
    var s = S.search;
    if (text === s.text && regex === s.regex && (s.mask || !text)) return;
    s.text = text; s.regex = regex; s.list = null; s.cursor = -1; s.error = null;
    if (!text || !S.model) {
      s.mask = null; s.count = 0;
    } else {
      var r = M.matchNames(S.model, text, regex);
      if (r.error) { s.mask = null; s.count = 0; s.error = r.error; }
      else { s.mask = r.mask; s.count = r.count; }
    }
    el.search.classList.toggle("bad", !!s.error);
    updateSearchCount();
    requestDraw();
  }
  function ensureMatchList() {
    var s = S.search;
    if (!s.list && s.mask) s.list = M.matchList(S.model, s.mask);
    return s.list;
  }
  function updateSearchCount() {
    var s = S.search, txt;
    if (s.error) txt = "bad regex";
    else if (!s.text) txt = "";
    else if (s.cursor >= 0) txt = (s.cursor + 1) + " / " + s.count;
    else txt = s.count + (s.count === 1 ? " match" : " matches");
    el["search-count"].textContent = txt;
  }
  function stepSearch(dir) {
    runSearch();
    var s = S.search;
    if (!s.mask || !s.count) return;
    var list = ensureMatchList();
    var k;
    if (s.cursor < 0) {
      var mid = S.selected && S.selected.kind === "slice" ? S.selected.thread.st[S.selected.i] : S.view.start;
      k = dir > 0 ? M.lowerBound(list.st, mid, 0, list.n) : M.lowerBound(list.st, mid, 0, list.n) - 1;
      if (k >= list.n) k = 0;
      if (k < 0) k = list.n - 1;
    } else {
      k = (s.cursor + dir + list.n) % list.n;
    }
    s.cursor = k;
    var t = list.threads[list.ti[k]], i = list.ix[k];
    S.selected = { kind: "slice", thread: t, i: i, track: trackOfThread(t) };
    reveal(t, i);
    showDetails();
    updateSearchCount();
    requestDraw();
  }

  function reveal(t, i) {
    // unfold what hides the slice
    var changed = false;
    if (S.collapsedProc.has(t.proc)) { S.collapsedProc.delete(t.proc); changed = true; }
    if (S.collapsedThread.has(t) && t.depth[i] > 0) { S.collapsedThread.delete(t); changed = true; }
    if (changed) computeLayout();
    var s = t.st[i], d = t.du[i], span = S.view.end - S.view.start;
    var px = d * scale();
    if (d > span * 0.9) zoomTo(s, s + d);
    else if (px < 1) {
      var want = Math.max(d * 12, 0.5);
      if (want < span) setView(s + d / 2 - want / 2, s + d / 2 + want / 2);
      else setView(s + d / 2 - span / 2, s + d / 2 + span / 2);
    } else if (s < S.view.start || s + d > S.view.end) {
      setView(s + d / 2 - span / 2, s + d / 2 + span / 2);
    }
    var tr = trackOfThread(t);
    if (tr) {
      var y = tr.y + tr.instH + t.depth[i] * ROW_H;
      var viewH = cssH - RULER_H;
      if (y < S.scrollTop || y + ROW_H > S.scrollTop + viewH) setScroll(y - viewH / 3);
    }
  }

  // ------------------------------------------------------------------ summary
  function activeTab() {
    return el["tab-summary"].classList.contains("active") ? "summary" : "details";
  }
  function switchTab(name) {
    var tabs = document.querySelectorAll("#tabs button");
    for (var i = 0; i < tabs.length; i++) tabs[i].classList.toggle("active", tabs[i].getAttribute("data-tab") === name);
    el["tab-details"].classList.toggle("active", name === "details");
    el["tab-summary"].classList.toggle("active", name === "summary");
    if (name === "summary" && S.summaryDirty) renderSummary();
  }

  var SUMMARY_ROWS = 500;
  function renderSummary() {
    var m = S.model;
    if (!m) return;
    S.summaryDirty = false;
    var r = S.range;
    var sum = r ? M.rangeSummary(m, r.start, r.end) : M.fullSummary(m);
    el["summary-scope"].textContent = r
      ? "Selected range: " + fmtDur(r.start) + " to " + fmtDur(r.end) + " (" + fmtDur(r.end - r.start) + "), slices clipped to the range; " + sum.ids.length + " functions"
      : "Whole trace: " + fmtDur(m.span) + ", " + m.sliceCount + " slices, " + sum.ids.length + " functions";
    var key = S.summarySort.key, desc = S.summarySort.desc;
    var ids = sum.ids.slice();
    var val = function (id) {
      switch (key) {
        case "count": return sum.count[id];
        case "total": return sum.total[id];
        case "self": return sum.self[id];
        case "avg": return sum.count[id] ? sum.total[id] / sum.count[id] : 0;
        case "max": return sum.max[id];
      }
      return 0;
    };
    if (key === "name") {
      ids.sort(function (a, b) { var x = m.names[a], y = m.names[b]; return (x < y ? -1 : x > y ? 1 : 0) * (desc ? -1 : 1); });
    } else {
      ids.sort(function (a, b) { return (val(a) - val(b)) * (desc ? -1 : 1) || a - b; });
    }
    var ths = el["summary-table"].tHead.rows[0].cells;
    for (var i = 0; i < ths.length; i++) {
      var k = ths[i].getAttribute("data-key");
      ths[i].className = (k === "name" ? "name " : "") + (k === key ? (desc ? "sorted-desc" : "sorted-asc") : "");
      ths[i].setAttribute("aria-sort", k === key ? (desc ? "descending" : "ascending") : "none");
    }
    var tbody = el["summary-table"].tBodies[0];
    clearNode(tbody);
    var frag = document.createDocumentFragment();
    for (i = 0; i < ids.length && i < SUMMARY_ROWS; i++) {
      var id = ids[i];
      var tr = document.createElement("tr");
      tr.setAttribute("data-name", m.names[id]);
      cell(tr, m.names[id], null, "name").title = m.names[id];
      cell(tr, String(sum.count[id]), sum.count[id]);
      cell(tr, fmtDur(sum.total[id]), sum.total[id]);
      cell(tr, fmtDur(sum.self[id]), sum.self[id]);
      var avg = sum.count[id] ? sum.total[id] / sum.count[id] : 0;
      cell(tr, fmtDur(avg), avg);
      cell(tr, fmtDur(sum.max[id]), sum.max[id]);
      frag.appendChild(tr);
    }
    tbody.appendChild(frag);
    el["summary-more"].textContent = ids.length > SUMMARY_ROWS ? (ids.length - SUMMARY_ROWS) + " more functions not shown." : "";
  }
  function cell(tr, text, value, cls) {
    var td = document.createElement("td");
    td.textContent = text;
    if (value !== null && value !== undefined) td.setAttribute("data-value", String(value));
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }

  function setRange(r) {
    S.range = r;
    el["range-info"].textContent = r ? "Range: " + fmtDur(r.end - r.start) + " (Esc clears)" : "";
    S.summaryDirty = true;
    if (activeTab() === "summary") scheduleSummary();
    requestDraw();
  }
  var summaryTimer = 0;
  function scheduleSummary() {
    clearTimeout(summaryTimer);
    summaryTimer = setTimeout(renderSummary, 60);
  }

  // ------------------------------------------------------------------ tooltip
  function showTooltip(hit, x, y) {
    var m = S.model, text = null;
    if (hit && hit.kind === "slice") {
      var t = hit.thread;
      text = m.names[t.nm[hit.i]] + "\n" + fmtDur(t.du[hit.i]) + " (self " + fmtDur(t.self[hit.i]) + ")";
    } else if (hit && hit.kind === "instant") {
      text = m.names[hit.holder.nm[hit.i]] + "\ninstant at " + fmtDur(hit.holder.ts[hit.i]);
    } else if (hit && hit.kind === "counter") {
      text = hit.counter.name + " = " + plainNumber(hit.counter.v[hit.i]);
    }
    var tip = el.tooltip;
    if (!text) { tip.hidden = true; return; }
    tip.textContent = text;
    tip.hidden = false;
    var w = tip.offsetWidth, h = tip.offsetHeight;
    var left = x + 14, topY = y + 16;
    if (left + w > cssW) left = Math.max(0, x - w - 10);
    if (topY + h > cssH) topY = Math.max(0, y - h - 8);
    tip.style.left = left + "px";
    tip.style.top = topY + "px";
  }

  // ------------------------------------------------------------------ input
  function canvasXY(ev) {
    var r = el.canvas.getBoundingClientRect();
    return { x: ev.clientX - r.left, y: ev.clientY - r.top };
  }

  el.canvas.addEventListener("mousedown", function (ev) {
    if (ev.button !== 0 || !S.model) return;
    var p = canvasXY(ev);
    ev.preventDefault();
    if (document.activeElement && document.activeElement !== document.body) document.activeElement.blur();
    var rangeMode = p.y < RULER_H || ev.shiftKey;
    S.drag = { x0: p.x, y0: p.y, view0: { start: S.view.start, end: S.view.end }, scroll0: S.scrollTop,
               moved: false, range: rangeMode && p.x >= LABEL_W, label: p.x < LABEL_W };
  });
  window.addEventListener("mousemove", function (ev) {
    var p = canvasXY(ev);
    S.mouse.x = p.x; S.mouse.y = p.y;
    S.mouse.over = p.x >= 0 && p.y >= 0 && p.x < cssW && p.y < cssH;
    var d = S.drag;
    if (d) {
      var dx = p.x - d.x0, dy = p.y - d.y0;
      if (!d.moved && Math.abs(dx) + Math.abs(dy) < 4) return;
      d.moved = true;
      el.tooltip.hidden = true;
      if (d.range) {
        var a = d.view0.start + (d.x0 - LABEL_W) / (tlWidth() / (d.view0.end - d.view0.start));
        var b = tOf(Math.max(LABEL_W, Math.min(cssW, p.x)));
        setRange({ start: Math.min(a, b), end: Math.max(a, b) });
      } else if (!d.label) {
        el.canvas.classList.add("grab");
        var sc = tlWidth() / (d.view0.end - d.view0.start);
        setView(d.view0.start - dx / sc, d.view0.end - dx / sc);
        setScroll(d.scroll0 - dy);
      }
      return;
    }
    if (!S.model || !S.mouse.over || ev.target !== el.canvas) { el.tooltip.hidden = true; return; }
    showTooltip(hitTest(p.x, p.y), p.x, p.y);
  });
  window.addEventListener("mouseup", function (ev) {
    var d = S.drag;
    if (!d) return;
    S.drag = null;
    el.canvas.classList.remove("grab");
    if (d.moved) return;
    var p = canvasXY(ev);
    var hit = hitTest(p.x, p.y);
    if (d.range && p.y < RULER_H) { setRange(null); return; }
    if (hit && hit.kind === "label") { toggleFold(hit.track); return; }
    select(hit);
  });
  el.canvas.addEventListener("dblclick", function (ev) {
    var p = canvasXY(ev);
    var hit = hitTest(p.x, p.y);
    if (hit && hit.kind === "slice") {
      var t = hit.thread;
      zoomTo(t.st[hit.i], t.st[hit.i] + t.du[hit.i]);
    }
  });
  el.canvas.addEventListener("mouseleave", function () { el.tooltip.hidden = true; });

  function toggleFold(tr) {
    if (tr.kind === "process") {
      if (S.collapsedProc.has(tr.proc)) S.collapsedProc.delete(tr.proc); else S.collapsedProc.add(tr.proc);
    } else if (tr.kind === "thread" && tr.thread.maxDepth > 0) {
      if (S.collapsedThread.has(tr.thread)) S.collapsedThread.delete(tr.thread); else S.collapsedThread.add(tr.thread);
    } else {
      return;
    }
    computeLayout();
    setScroll(S.scrollTop);
    requestDraw();
  }

  el.scroller.addEventListener("wheel", function (ev) {
    if (!S.model) return;
    ev.preventDefault();
    var unit = ev.deltaMode === 1 ? 16 : ev.deltaMode === 2 ? cssH : 1;
    var dx = ev.deltaX * unit, dy = ev.deltaY * unit;
    var p = canvasXY(ev);
    if (ev.ctrlKey || ev.metaKey) {
      zoomAt(Math.exp(dy * 0.002), p.x);
    } else if (ev.shiftKey) {
      panBy((dy || dx) / scale());
    } else {
      if (dx) panBy(dx / scale());
      if (dy) setScroll(S.scrollTop + dy);
    }
  }, { passive: false });

  el.scroller.addEventListener("scroll", function () {
    if (Math.abs(el.scroller.scrollTop - S.scrollTop) >= 1) { S.scrollTop = el.scroller.scrollTop; requestDraw(); }
  });

  function isTyping(ev) {
    var t = ev.target;
    return t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable);
  }

  window.addEventListener("keydown", function (ev) {
    if (ev.target === el.search) {
      if (ev.key === "Enter") { ev.preventDefault(); stepSearch(ev.shiftKey ? -1 : 1); }
      else if (ev.key === "Escape") { el.search.blur(); }
      return;
    }
    if (isTyping(ev) || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    if (!S.model) return;
    var x = S.mouse.over ? S.mouse.x : -1;
    var span = S.view.end - S.view.start;
    switch (ev.key) {
      case "w": case "W": zoomAt(0.8, x); break;
      case "s": case "S": zoomAt(1.25, x); break;
      case "a": case "A": case "ArrowLeft": panBy(-span * 0.15); break;
      case "d": case "D": case "ArrowRight": panBy(span * 0.15); break;
      case "ArrowUp": setScroll(S.scrollTop - ROW_H * 3); break;
      case "ArrowDown": setScroll(S.scrollTop + ROW_H * 3); break;
      case "f": case "F": fitAll(); break;
      case "Escape": setRange(null); select(null); el.help.hidden = true; break;
      case "/": el.search.focus(); el.search.select(); break;
      case "?": el.help.hidden = !el.help.hidden; break;
      default: return;
    }
    ev.preventDefault();
  });

  el.search.addEventListener("input", scheduleSearch);
  el["search-regex"].addEventListener("change", runSearch);
  el["search-next"].addEventListener("click", function () { stepSearch(1); });
  el["search-prev"].addEventListener("click", function () { stepSearch(-1); });
  el["fit-button"].addEventListener("click", function () { fitAll(); });
  el["help-button"].addEventListener("click", function () { el.help.hidden = !el.help.hidden; });
  el["help-close"].addEventListener("click", function () { el.help.hidden = true; });

  document.getElementById("tabs").addEventListener("click", function (ev) {
    var tab = ev.target.getAttribute && ev.target.getAttribute("data-tab");
    if (tab) switchTab(tab);
  });
  el["summary-table"].tHead.addEventListener("click", function (ev) {
    var key = ev.target.getAttribute && ev.target.getAttribute("data-key");
    if (!key) return;
    if (S.summarySort.key === key) S.summarySort.desc = !S.summarySort.desc;
    else S.summarySort = { key: key, desc: key !== "name" };
    renderSummary();
  });
  el["summary-table"].tBodies[0].addEventListener("click", function (ev) {
    var tr = ev.target.closest ? ev.target.closest("tr") : null;
    if (!tr) return;
    el.search.value = tr.getAttribute("data-name");
    el["search-regex"].checked = false;
    runSearch();
  });

  // panel splitter
  (function () {
    var dragging = null;
    el.splitter.addEventListener("mousedown", function (ev) {
      dragging = { y: ev.clientY, h: el.panel.offsetHeight };
      ev.preventDefault();
    });
    window.addEventListener("mousemove", function (ev) {
      if (!dragging) return;
      var h = Math.max(60, Math.min(window.innerHeight - 150, dragging.h - (ev.clientY - dragging.y)));
      el.panel.style.height = h + "px";
      requestDraw();
    });
    window.addEventListener("mouseup", function () { dragging = null; });
  })();

  if (typeof ResizeObserver !== "undefined") {
    new ResizeObserver(function () { requestDraw(); }).observe(el.scroller);
  } else {
    window.addEventListener("resize", requestDraw);
  }

  // ------------------------------------------------------------------ test hook
  // A read-only view of the page's state for automated tests and benchmarks.
  function sliceInfo(t, i) {
    var m = S.model;
    return { name: m.names[t.nm[i]], ts: absTs(t.st[i]), dur: t.du[i], self: t.self[i], pid: t.pid, tid: t.tid, depth: t.depth[i] };
  }
  function findSlice(q) {
    var m = S.model;
    if (!m || !q) return null;
    var id = m.nameIds.get(q.name);
    if (id === undefined) return null;
    var best = null, bestD = Infinity;
    for (var pi = 0; pi < m.processes.length; pi++) {
      var p = m.processes[pi];
      if (q.pid !== undefined && q.pid !== p.pid) continue;
      for (var ti = 0; ti < p.threads.length; ti++) {
        var t = p.threads[ti];
        if (q.tid !== undefined && q.tid !== t.tid) continue;
        for (var i = 0; i < t.n; i++) {
          if (t.nm[i] !== id) continue;
          var dd = q.ts === undefined ? 0 : Math.abs(absTs(t.st[i]) - q.ts);
          if (dd < bestD) { bestD = dd; best = { thread: t, i: i }; if (dd === 0) break; }
        }
      }
    }
    return best;
  }
  function rectOf(q) {
    var f = findSlice(q);
    if (!f) return null;
    var tr = trackOfThread(f.thread);
    if (!tr) return null;
    var t = f.thread, d = t.depth[f.i];
    if (d >= tr.rows) return null;
    var sc = scale();
    var x0 = LABEL_W + (t.st[f.i] - S.view.start) * sc, x1 = LABEL_W + (t.st[f.i] + t.du[f.i] - S.view.start) * sc;
    var y = RULER_H + tr.y - S.scrollTop + tr.instH + d * ROW_H;
    var cr = el.canvas.getBoundingClientRect();
    var vx0 = Math.max(x0, LABEL_W), vx1 = Math.min(x1, cssW);
    return {
      x: cr.left + x0, y: cr.top + y, w: x1 - x0, h: ROW_H - 1,
      visible: vx1 - vx0 >= 1 && y >= RULER_H && y + ROW_H <= cssH,
      cx: cr.left + (vx0 + vx1) / 2, cy: cr.top + y + (ROW_H - 1) / 2
    };
  }
  var hook = {};
  Object.defineProperties(hook, {
    ready: { get: function () { return S.ready; }, enumerable: true },
    error: { get: function () { return S.error; }, enumerable: true },
    empty: { get: function () { return S.empty; }, enumerable: true },
    counts: { get: function () {
      var m = S.model;
      if (!m) return null;
      var c = Object.assign({}, m.counts);
      return { phases: c, events: m.eventCount, slices: m.sliceCount, threads: m.threadCount,
               processes: m.processes.length, names: m.names.length, unfinished: m.unfinished,
               unmatchedEnd: m.unmatchedEnd };
    }, enumerable: true },
    tracks: { get: function () {
      var top = el.canvas.getBoundingClientRect().top;
      return S.tracks.map(function (tr) {
        return { kind: tr.kind, name: tr.name, pid: tr.pid, tid: tr.tid, top: top + RULER_H + tr.y - S.scrollTop,
                 height: tr.h, rows: tr.rows || 0, collapsed: !!tr.collapsed,
                 instants: tr.kind === "instants" ? tr.holder.n : tr.kind === "thread" ? tr.thread.instants.n : 0,
                 samples: tr.kind === "counter" ? tr.counter.n : 0 };
      });
    }, enumerable: true },
    viewport: { get: function () {
      return { start: absTs(S.view.start), end: absTs(S.view.end), relStart: S.view.start, relEnd: S.view.end,
               scrollTop: S.scrollTop, width: cssW, height: cssH, labelWidth: LABEL_W, rulerHeight: RULER_H };
    }, enumerable: true },
    trace: { get: function () {
      var m = S.model;
      return m ? { start: m.t0, end: m.t0 + m.span, span: m.span } : null;
    }, enumerable: true },
    selected: { get: function () {
      var sel = S.selected;
      if (!sel) return null;
      if (sel.kind === "slice") { var o = sliceInfo(sel.thread, sel.i); o.kind = "slice"; return o; }
      if (sel.kind === "instant") return { kind: "instant", name: S.model.names[sel.holder.nm[sel.i]], ts: absTs(sel.holder.ts[sel.i]) };
      return { kind: "counter", name: sel.counter.name, ts: absTs(sel.counter.ts[sel.i]), value: sel.counter.v[sel.i] };
    }, enumerable: true },
    range: { get: function () { return S.range ? { start: absTs(S.range.start), end: absTs(S.range.end) } : null; }, enumerable: true },
    search: { get: function () {
      var s = S.search;
      return { text: s.text, regex: s.regex, count: s.count, index: s.cursor, error: s.error };
    }, enumerable: true },
    timings: { get: function () { return Object.assign({}, S.timings); }, enumerable: true },
    frames: { get: function () { return S.frames; }, enumerable: true },
    lastFrameMs: { get: function () { return S.lastFrameMs; }, enumerable: true },
    rectOf: { value: rectOf, enumerable: true }
  });
  Object.freeze(hook);
  Object.defineProperty(window, "vizviewer", { value: hook, writable: false, configurable: false, enumerable: true });

  resize();
  start();
})();
