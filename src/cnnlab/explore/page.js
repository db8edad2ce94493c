// cnnlab explore: the page builds itself from the JSON in #cnnlab-data. Handwritten, no
// libraries, nothing loaded from the network.
"use strict";
(function () {
  var errors = [];
  function noteError(msg) {
    errors.push(String(msg).slice(0, 300));
    document.body.setAttribute("data-errors", String(errors.length));
    document.body.setAttribute("data-error-text", errors.join(" | "));
  }
  window.addEventListener("error", function (e) { noteError(e.message || e); });
  var consoleError = console.error.bind(console);
  console.error = function () { noteError(Array.prototype.join.call(arguments, " ")); consoleError.apply(null, arguments); };

  var t0 = performance.now();
  console.info("cnnlab explore: script start");  // benchmarks/explore_pages.py times these
  var D = JSON.parse(document.getElementById("cnnlab-data").textContent);
  var byName = {}, selectCallbacks = [];
  D.nodes.forEach(function (n) {
    byName[n.name] = n;
    if (n.map != null) n.map = D.maps[n.map];
    if (n.in_map != null) n.in_map = D.maps[n.in_map];
    if (n.op && n.op.xin != null) n.op.xin = D.maps[n.op.xin];
  });

  // ---- decoding ------------------------------------------------------------------------
  function bytes(s) {
    var bin = atob(s), a = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) a[i] = bin.charCodeAt(i);
    return a;
  }
  function f32(s) { if (s == null) return null; var b = bytes(s); return new Float32Array(b.buffer, 0, b.length / 4); }
  var cache = new Map();
  function dec(obj, key, fn) {
    if (!cache.has(obj)) cache.set(obj, {});
    var c = cache.get(obj);
    if (!(key in c)) c[key] = fn(obj[key]);
    return c[key];
  }
  // Maps travel as zlib-compressed 8-bit values with one range per channel; ready(m) inflates
  // them (DecompressionStream, no library) once, q8(m) gives the bytes after that.
  function ready(m) {
    if (!m) return Promise.resolve(null);
    if (!m._ready) {
      if (m.q != null) { m._q = bytes(m.q); m._ready = Promise.resolve(m); }
      else {
        var ds = new DecompressionStream("deflate");
        var body = new Blob([bytes(m.z)]).stream().pipeThrough(ds);
        m._ready = new Response(body).arrayBuffer().then(function (b) { m._q = new Uint8Array(b); return m; });
      }
    }
    return m._ready;
  }
  function q8(m) { return m._q; }
  function lo(m, c) { return Array.isArray(m.lo) ? m.lo[Math.min(c || 0, m.lo.length - 1)] : m.lo; }
  function hi(m, c) { return Array.isArray(m.hi) ? m.hi[Math.min(c || 0, m.hi.length - 1)] : m.hi; }
  function step(m, c) { return (hi(m, c) - lo(m, c)) / 255; }
  // the value at channel c, position (y, x) of a full-size map (f = 1), back from 8 bits
  function valueAt(m, c, y, x) { return lo(m, c) + q8(m)[(c * m.h + y) * m.w + x] * step(m, c); }

  // ---- numbers -------------------------------------------------------------------------
  function fmt(v) {
    if (v === Infinity || v === -Infinity) return v > 0 ? "+inf" : "-inf";
    var a = Math.abs(v);
    if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(3);
    return v.toFixed(4);
  }
  function fmt3(v) {
    if (v === -Infinity) return "pad";
    var a = Math.abs(v);
    if (a !== 0 && (a >= 1e4 || a < 1e-3)) return v.toExponential(1);
    return v.toFixed(3);
  }
  function big(n) {
    var u = [[1e9, " G"], [1e6, " M"], [1e3, " k"]];
    for (var i = 0; i < u.length; i++) if (n >= u[i][0]) return (n / u[i][0]).toFixed(2) + u[i][1];
    return String(n);
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }

  // ---- colour scales -------------------------------------------------------------------
  var SEQ = [[13, 8, 135], [84, 2, 163], [139, 10, 165], [185, 50, 137], [219, 92, 104], [244, 136, 73], [254, 188, 43], [240, 249, 33]];
  var DIV = [[33, 102, 172], [103, 169, 207], [209, 229, 240], [247, 247, 247], [253, 219, 199], [239, 138, 98], [178, 24, 43]];
  function lut(stops) {
    var out = new Uint8Array(256 * 3);
    for (var i = 0; i < 256; i++) {
      var t = i / 255 * (stops.length - 1), k = Math.min(Math.floor(t), stops.length - 2), f = t - k;
      for (var c = 0; c < 3; c++) out[i * 3 + c] = Math.round(stops[k][c] * (1 - f) + stops[k + 1][c] * f);
    }
    return out;
  }
  var LUT_SEQ = lut(SEQ), LUT_DIV = lut(DIV);
  function lutFor(m, c) { return lo(m, c) < 0 ? LUT_DIV : LUT_SEQ; }
  function scaleCss(m, c) {
    var s = lo(m, c) < 0 ? DIV : SEQ;
    return "linear-gradient(to right," + s.map(function (c) { return "rgb(" + c.join(",") + ")"; }).join(",") + ")";
  }

  function mapCanvas(m, ch, px) {
    var cv = el("canvas", "map");
    cv.width = m.w; cv.height = m.h;
    var ctx = cv.getContext("2d"), img = ctx.createImageData(m.w, m.h), q = q8(m), L = lutFor(m, ch);
    var off = ch * m.h * m.w;
    for (var i = 0; i < m.h * m.w; i++) {
      var v = q[off + i];
      img.data[4 * i] = L[3 * v]; img.data[4 * i + 1] = L[3 * v + 1]; img.data[4 * i + 2] = L[3 * v + 2]; img.data[4 * i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
    var mx = Math.max(m.w, m.h), s = px >= mx ? Math.floor(px / mx) : px / mx;  // large maps shrink
    cv.style.width = Math.round(m.w * s) + "px"; cv.style.height = Math.round(m.h * s) + "px";
    return cv;
  }
  function vecCanvas(m, width) {
    var cv = el("canvas", "vec"), n = m.s;
    cv.width = n; cv.height = 1;
    var ctx = cv.getContext("2d"), img = ctx.createImageData(n, 1), q = q8(m), L = lutFor(m, 0);
    for (var i = 0; i < n; i++) { var v = q[i]; img.data[4 * i] = L[3 * v]; img.data[4 * i + 1] = L[3 * v + 1]; img.data[4 * i + 2] = L[3 * v + 2]; img.data[4 * i + 3] = 255; }
    ctx.putImageData(img, 0, 0);
    cv.style.width = width + "px"; cv.style.height = "14px";
    return cv;
  }
  function imageCanvas(im, px) {
    var cv = el("canvas", "map");
    cv.width = im.w; cv.height = im.h;
    var ctx = cv.getContext("2d"), img = ctx.createImageData(im.w, im.h), q = dec(im, "q", bytes), n = im.h * im.w;
    for (var i = 0; i < n; i++) {
      for (var c = 0; c < 3; c++) img.data[4 * i + c] = q[(im.c === 1 ? 0 : c) * n + i];
      img.data[4 * i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
    var s = px / Math.max(im.w, im.h);
    cv.style.width = Math.round(im.w * s) + "px"; cv.style.height = Math.round(im.h * s) + "px";
    return cv;
  }
  function scaleBar(m, c) {
    var w = el("div", "scale");
    var bar = el("span", "bar"); bar.style.background = scaleCss(m, c || 0);
    var many = Array.isArray(m.lo) && m.lo.length > 1;
    w.appendChild(el("span", "lo", fmt(lo(m, c || 0)))); w.appendChild(bar); w.appendChild(el("span", "hi", fmt(hi(m, c || 0))));
    if (many) w.appendChild(el("span", "hint", "channel " + (c || 0) + "; each channel has its own scale (its range under it), so small values stay visible"));
    return w;
  }

  // ---- the overview --------------------------------------------------------------------
  var KIND = { Conv2d: "conv", SparseConv2d: "conv", Linear: "linear", BatchNorm2d: "bn", MaxPool2d: "pool", AvgPool2d: "pool",
    AdaptiveAvgPool2d: "pool", ReLU: "act", ReLU6: "act", Sigmoid: "act", Tanh: "act", SiLU: "act", Hardswish: "act", Dropout: "drop", Flatten: "drop" };
  var MERGE = { add: "\u2295 add: the shortcut joins the block's output", cat: "[ | ] concatenate: the channels are stacked", mul: "\u2297 multiply: channel gate" };
  var children = {};
  D.nodes.forEach(function (n) { (children[n.parent] = children[n.parent] || []).push(n); });

  function stats(n) {
    var s = el("div", "stats");
    s.appendChild(el("span", "shape", n.shape));
    s.appendChild(el("span", "params", big(n.params) + " params"));
    s.appendChild(el("span", "macs", big(n.macs) + " MACs"));
    if (n.rf) {
      var rf = el("span", "rf", "RF " + n.rf);
      rf.title = rfExplain(n);
      s.appendChild(rf);
    }
    return s;
  }
  function rfExplain(n) {
    var t = "receptive field: each output pixel depends on a " + n.rf.replace(" (whole map)", "") + " window of input pixels";
    var m = /^(\d+)x(\d+)/.exec(n.rf || "");
    if (m && (+m[1] >= D.input[1] || +m[2] >= D.input[2]) || /whole/.test(n.rf || ""))
      t += ". It is as large as the input or larger: every output pixel sees the whole image (the window reaches past the borders into the padding), so this layer can combine evidence from anywhere in the picture";
    return t;
  }
  function short(v) { var a = Math.abs(v); return a !== 0 && (a >= 1e3 || a < 1e-2) ? v.toExponential(0) : v.toFixed(2); }
  function thumbs(n) {
    var w = el("div", "thumbwrap"), t = el("div", "thumbs");
    w.appendChild(t);
    if (!n.map) return w;
    if (n.map.kind === "vec") t.appendChild(vecCanvas(n.map, 96));
    else for (var c = 0; c < Math.min(3, n.map.s); c++) t.appendChild(mapCanvas(n.map, c, 34));
    var sc = el("div", "miniscale");  // the colour scale of the thumbnails, with its range
    var bar = el("span", "bar"); bar.style.background = scaleCss(n.map, 0);
    sc.appendChild(el("span", null, lo(n.map, 0) < 0 ? "\u2212" + short(hi(n.map, 0)) : short(lo(n.map, 0))));
    sc.appendChild(bar);
    sc.appendChild(el("span", null, short(hi(n.map, 0))));
    sc.title = "colour scale of channel 0 (each channel has its own)";
    w.appendChild(sc);
    return w;
  }
  function boxHead(n, cls) {
    var b = el("div", cls);
    b.setAttribute("data-layer", n.name);
    b.setAttribute("data-kind", KIND[n.type] || "other");
    b.tabIndex = 0;
    var txt = el("div", "txt");
    var title = el("div", "name");
    title.appendChild(el("b", null, n.name.split(".").pop()));
    title.appendChild(el("span", "type", " " + n.type));
    title.title = n.name + " (" + n.type + ")";
    txt.appendChild(title);
    txt.appendChild(stats(n));
    if (n.label) { var rl = el("div", "role", n.label); rl.title = n.label; txt.appendChild(rl); }
    if (n.rf_note) txt.appendChild(el("div", "badge", "RF: " + n.rf_note));
    if (n.aux) txt.appendChild(el("div", "badge aux", "auxiliary head: used in training only" + (n.notrun ? ", not run here" : "")));
    else if (n.notrun) txt.appendChild(el("div", "badge", "not run in eval mode"));
    b.appendChild(thumbs(n));
    b.appendChild(txt);
    b.title = n.name;
    b.addEventListener("click", function (e) { e.stopPropagation(); select(n.name); });
    b.addEventListener("keydown", function (e) { if (e.key === "Enter") select(n.name); });
    return b;
  }
  function buildNode(n) {
    var kids = children[n.name] || [];
    if (!kids.length) return boxHead(n, "box");
    var g = el("div", "group" + (n.aux ? " auxgroup" : ""));
    g.setAttribute("data-group", n.name);
    var head = boxHead(n, "box ghead");
    var tog = el("button", "toggle", "\u25be");
    tog.title = "collapse / expand";
    tog.addEventListener("click", function (e) { e.stopPropagation(); g.classList.toggle("collapsed"); tog.textContent = g.classList.contains("collapsed") ? "\u25b8" : "\u25be"; });
    head.insertBefore(tog, head.firstChild);
    g.appendChild(head);
    var body = el("div", "gbody");
    var cols = (n.cols || []).filter(function (c) { return c.length; });
    var colOf = {};
    cols.forEach(function (c, i) { c.forEach(function (m) { colOf[m] = i; }); });
    var colEls = cols.map(function () { return el("div", "col"); });
    var extra = el("div", "col auxcol");
    kids.forEach(function (k) {
      var top = n.name ? n.name + "." + k.name.slice(n.name.length + 1).split(".")[0] : k.name.split(".")[0];
      var i = colOf[top];
      (i == null ? extra : colEls[i]).appendChild(buildNode(k));
    });
    var used = colEls.filter(function (c) { return c.childNodes.length; });
    var row = el("div", "cols" + (used.length > 1 ? " parallel" : ""));
    used.forEach(function (c) { row.appendChild(c); });
    if (n.merge === "add" && used.length === 1) {
      row.classList.add("identity");
      row.appendChild(el("div", "shortcut", "identity shortcut"));
    } else if (n.merge === "add" && used.length > 1) {
      used[used.length - 1].classList.add("shortcutcol");
      used[used.length - 1].insertBefore(el("div", "collabel", "shortcut"), used[used.length - 1].firstChild);
    }
    if (used.length > 1 && n.merge !== "add") used.forEach(function (c, i) { c.insertBefore(el("div", "collabel", "branch " + (i + 1)), c.firstChild); });
    body.appendChild(row);
    if (extra.childNodes.length) body.appendChild(extra);
    var dense = kids.some(function (k) { return /Dense.*Layer/i.test(k.type); });
    if (n.merge) body.appendChild(el("div", "merge " + n.merge, dense && n.merge === "cat" ? "[ | ] dense connectivity: each layer's input is the concatenation of the block input and all earlier layers' outputs; the block returns them all stacked" : MERGE[n.merge]));
    g.appendChild(body);
    return g;
  }
  function buildOverview() {
    var ov = document.getElementById("overview");
    var inp = el("div", "box inputbox");
    inp.appendChild(imageCanvas(D.image, 48));
    var t = el("div", "txt");
    t.appendChild(el("div", "name", "input " + D.input.join("x")));
    t.appendChild(el("div", "stats", D.source.image || ""));
    inp.appendChild(t);
    inp.addEventListener("click", function () { showInput(); });
    ov.appendChild(inp);
    (children[""] || []).forEach(function (n) { ov.appendChild(buildNode(n)); });
    var sm = el("div", "box softbox");
    sm.setAttribute("data-extra", "softmax");
    var st = el("div", "txt");
    st.appendChild(el("div", "name", "softmax (prediction)"));
    var p = f32(D.probs), best = 0;
    for (var i = 1; i < p.length; i++) if (p[i] > p[best]) best = i;
    st.appendChild(el("div", "stats", (D.trained === false ? "random weights; largest output: " : "predicted: ") + D.classes[best] + " (" + (100 * p[best]).toFixed(1) + " %)"));
    sm.appendChild(st);
    sm.addEventListener("click", function () { showSoftmax(); });
    ov.appendChild(sm);
  }

  // ---- the layer view ------------------------------------------------------------------
  var current = null;
  function select(name) {
    var n = byName[name];
    if (!n) return;
    document.querySelectorAll(".selected").forEach(function (e) { e.classList.remove("selected"); });
    var b = document.querySelector('[data-layer="' + CSS.escape(name) + '"]');
    if (b) b.classList.add("selected");
    current = n;
    showLayer(n);
    selectCallbacks.forEach(function (cb) { try { cb(name); } catch (e) { noteError(e); } });
  }
  function section(parent, title) {
    var s = el("section", "part");
    s.appendChild(el("h3", null, title));
    parent.appendChild(s);
    return s;
  }
  function mapGrid(m, px, onPick) {
    var g = el("div", "grid");
    if (m.w > px && m.s <= 16) px = Math.min(m.w, 224);  // full-size maps: one screen pixel per value
    for (var c = 0; c < Math.min(m.s, 32); c++) {
      var cell = el("figure", "cell");
      var cv = mapCanvas(m, c, px);
      if (onPick) {
        cv.classList.add("pick");
        (function (ch, canvas) {
          canvas.addEventListener("click", function (e) {
            var r = canvas.getBoundingClientRect();
            var x = Math.floor((e.clientX - r.left) / r.width * m.w), y = Math.floor((e.clientY - r.top) / r.height * m.h);
            onPick(ch, Math.min(m.h0 - 1, y * m.f + (m.f >> 1)), Math.min(m.w0 - 1, x * m.f + (m.f >> 1)));
          });
        })(c, cv);
      }
      cell.appendChild(cv);
      var cap = el("figcaption", null, "ch " + c);
      cap.appendChild(el("span", "chrange", " " + short(lo(m, c)) + "\u2026" + short(hi(m, c))));
      cap.title = "channel " + c + ": colour scale from " + fmt(lo(m, c)) + " to " + fmt(hi(m, c));
      cell.appendChild(cap);
      g.appendChild(cell);
    }
    return g;
  }
  function describeMap(m) {
    if (m.kind === "vec") return m.n + " values" + (m.s < m.n ? " (first " + m.s + " shown)" : "");
    var s = m.c + " channel" + (m.c > 1 ? "s" : "") + " of " + m.h0 + "x" + m.w0;
    if (m.s < m.c) s += "; the first " + m.s + " are embedded";
    if (m.f > 1) s += "; shown " + m.h + "x" + m.w + " (mean of " + m.f + "x" + m.f + " blocks)";
    else s += "; every pixel";
    return s;
  }
  var inputView = null;
  // Outline, on the input maps, the window that output pixel (y, x) sees in channels chs.
  function markWindow(y0, x0, kh, kw, chs) {
    if (!inputView) return;
    var m = inputView.map;
    inputView.grid.querySelectorAll(".win").forEach(function (e) { e.remove(); });
    var cells = inputView.grid.children;
    chs.forEach(function (c) {
      if (c >= cells.length) return;
      var cv = cells[c].querySelector("canvas"), s = parseFloat(cv.style.width) / m.w / m.f;
      var d = el("div", "win");
      var top = Math.max(0, y0), left = Math.max(0, x0);
      var bottom = Math.min(m.h0, y0 + kh), right = Math.min(m.w0, x0 + kw);
      d.style.top = (cv.offsetTop + top * s) + "px"; d.style.left = (cv.offsetLeft + left * s) + "px";
      d.style.width = Math.max(2, (right - left) * s) + "px"; d.style.height = Math.max(2, (bottom - top) * s) + "px";
      cells[c].appendChild(d);
    });
  }
  function showLayer(n) {
    inputView = null;
    var L = document.getElementById("layer");
    L.innerHTML = "";
    document.getElementById("arith").innerHTML = "";
    var h = el("h2", null, n.name + " ");
    h.appendChild(el("span", "type", n.type));
    L.appendChild(h);
    var info = el("table", "info");
    [["output", n.shape], ["parameters", n.params.toLocaleString("en")], ["MACs", n.macs.toLocaleString("en")],
      ["receptive field", n.rf ? n.rf + " input pixels" : "-"], ["calls", String(n.calls)]].forEach(function (r) {
      var tr = el("tr"); tr.appendChild(el("th", null, r[0])); tr.appendChild(el("td", null, r[1])); info.appendChild(tr);
    });
    L.appendChild(info);
    if (n.rf && /whole image/.test(rfExplain(n))) L.appendChild(el("p", "note rfnote", rfExplain(n) + "."));
    if (n.map) {
      var s = section(L, "Output: " + describeMap(n.map));
      s.appendChild(scaleBar(n.map));
      if (n.map.kind === "vec") s.appendChild(vecCanvas(n.map, 420));
      else {
        var pick = n.op && (n.op.kind === "conv" || n.op.kind === "pool" || n.op.kind === "bn") ? function (c, y, x) { arith(n, c, y, x, true); } : null;
        if (pick) s.appendChild(el("p", "hint", "Click a pixel of a map to see how it was computed."));
        s.appendChild(mapGrid(n.map, n.map.s > 16 ? 72 : 110, pick));
      }
    }
    if (n.op && n.op.kind === "conv") showKernels(L, n);
    if (n.op && n.op.kind === "bn") showBN(L, n);
    var src = n.input_from === "(input)" ? { map: D.input_map, name: "the network's input" } : n.input_from ? { map: byName[n.input_from].map, name: "the output of " + n.input_from } : null;
    if (n.in_map) {  // what this layer really received
      var same = src && src.map === n.in_map;
      var from = n.input_from && n.input_from !== "(input)" ? byName[n.input_from] : null;
      src = { map: n.in_map, name: same ? src.name : !from ? "what this layer receives" :
        from.calls > 1 ? "what this layer receives, from " + from.name + " (called " + from.calls + " times; its box shows its last call)" :
        "what this layer receives: the output of " + from.name + " after the operations hidden at this depth (an activation, ...)" };
    }
    layerReady = Promise.resolve();
    if (src && src.map && src.map.kind === "map") {
      var si = section(L, "Input: " + src.name + " (" + describeMap(src.map) + (src.map.s > 32 ? "; the first 32 drawn" : "") + ")");
      si.id = "inputpart";
      var m0 = src.map;
      layerReady = ready(m0).then(function () {
        if (current !== n) return;
        si.appendChild(scaleBar(m0));
        inputView = { map: m0, grid: mapGrid(m0, m0.s > 16 ? 56 : 80, null) };
        si.appendChild(inputView.grid);
      });
    }
    if (n.op && n.op.kind === "conv" && n.op.probes.length) {
      var p = n.op.probes[0];
      arith(n, p.co, p.y, p.x);
    }
  }
  var layerReady = Promise.resolve();
  function showKernels(L, n) {
    var op = n.op, W = dec(op, "W", f32), kh = op.k[0], kw = op.k[1], per = op.cin_g * kh * kw;
    var rgb = op.cin_g === 3;
    var s = section(L, "Kernels: " + op.cout + " x " + op.cin_g + " x " + kh + "x" + kw + (op.kc < op.cout ? " (the first " + op.kc + " output channels embedded)" : "") + (rgb ? ", drawn as RGB images (each scaled to its own range)" : ", input channel 0 of each (blue negative, red positive)"));
    var g = el("div", "grid");
    for (var o = 0; o < op.kc; o++) {
      var cv = el("canvas", "map kern"); cv.width = kw; cv.height = kh;
      var ctx = cv.getContext("2d"), img = ctx.createImageData(kw, kh), base = o * per;
      if (rgb) {
        var lo = Infinity, hi = -Infinity;
        for (var i = 0; i < per; i++) { lo = Math.min(lo, W[base + i]); hi = Math.max(hi, W[base + i]); }
        for (var j = 0; j < kh * kw; j++) { for (var c = 0; c < 3; c++) img.data[4 * j + c] = Math.round(255 * (W[base + c * kh * kw + j] - lo) / ((hi - lo) || 1)); img.data[4 * j + 3] = 255; }
      } else {
        var m = 0;
        for (var i2 = 0; i2 < kh * kw; i2++) m = Math.max(m, Math.abs(W[base + i2]));
        for (var j2 = 0; j2 < kh * kw; j2++) { var v = Math.round(127.5 + 127.5 * W[base + j2] / (m || 1)); for (var c2 = 0; c2 < 3; c2++) img.data[4 * j2 + c2] = LUT_DIV[3 * v + c2]; img.data[4 * j2 + 3] = 255; }
      }
      ctx.putImageData(img, 0, 0);
      var px = Math.max(4, Math.floor(44 / Math.max(kh, kw)));
      cv.style.width = kw * px + "px"; cv.style.height = kh * px + "px";
      var cell = el("figure", "cell"); cell.appendChild(cv); cell.appendChild(el("figcaption", null, "out " + o)); g.appendChild(cell);
    }
    s.appendChild(g);
  }
  function showBN(L, n) {
    var op = n.op, mu = dec(op, "mean", f32), va = dec(op, "var", f32), ga = dec(op, "gamma", f32), be = dec(op, "beta", f32);
    var s = section(L, "Batch norm: y = (x - mean) / sqrt(var + eps) * gamma + beta, eps = " + op.eps);
    var t = el("table", "num");
    var hr = el("tr"); ["channel", "running mean", "running var", "gamma", "beta"].forEach(function (x) { hr.appendChild(el("th", null, x)); }); t.appendChild(hr);
    for (var c = 0; c < Math.min(op.kc, 8); c++) {
      var tr = el("tr"); [String(c), fmt(mu[c]), fmt(va[c]), fmt(ga[c]), fmt(be[c])].forEach(function (x) { tr.appendChild(el("td", null, x)); }); t.appendChild(tr);
    }
    s.appendChild(t);
    if (op.kc > 8) s.appendChild(el("p", "hint", "(first 8 of " + op.kc + " channels)"));
  }
  function showInput() {
    var L = document.getElementById("layer"); L.innerHTML = ""; document.getElementById("arith").innerHTML = "";
    L.appendChild(el("h2", null, "Input " + D.input.join("x")));
    L.appendChild(el("p", null, (D.source.image || "") + "; normalised with " + (D.source.norm || "") + "."));
    L.appendChild(imageCanvas(D.image, 224));
    var s = section(L, "What the network receives (after normalisation)");
    s.appendChild(scaleBar(D.input_map));
    s.appendChild(mapGrid(D.input_map, 110, null));
  }

  // ---- the arithmetic ------------------------------------------------------------------
  function actFn(a, v) {
    switch (a.fn) {
      case "relu": return Math.max(0, v);
      case "relu6": return Math.min(6, Math.max(0, v));
      case "sigmoid": return 1 / (1 + Math.exp(-v));
      case "tanh": return Math.tanh(v);
      case "silu": return v / (1 + Math.exp(-v));
      case "hardswish": return v * Math.min(6, Math.max(0, v + 3)) / 6;
      case "hardsigmoid": return Math.min(6, Math.max(0, v + 3)) / 6;
      case "leaky_relu": return v >= 0 ? v : a.slope * v;
    }
    return NaN;
  }
  // The window of input numbers that output pixel (co, y, x) of a convolution sees, from the
  // whole input when the page holds it, else from an embedded probe at that pixel.
  function convWindow(op, co, y, x, n) {
    var kh = op.k[0], kw = op.k[1], cg = op.cin_g, win = new Float32Array(cg * kh * kw);
    var om = n && n.map, M = op.xin;
    if (!op.x && M && q8(M) && om && om.kind === "map" && om.f === 1 && co < om.s) {
      // the page's 8-bit copy of the whole input: every pixel, each number within half a step
      var g8 = Math.floor(co / (op.cout / op.groups)), half = new Float32Array(cg * kh * kw);
      for (var c8 = 0; c8 < cg; c8++) for (var i8 = 0; i8 < kh; i8++) for (var j8 = 0; j8 < kw; j8++) {
        var y8 = y * op.stride[0] - op.pad[0] + i8 * op.dil[0], x8 = x * op.stride[1] - op.pad[1] + j8 * op.dil[1], k8 = (c8 * kh + i8) * kw + j8;
        var in8 = y8 >= 0 && y8 < op.H && x8 >= 0 && x8 < op.Wd;
        win[k8] = in8 ? valueAt(M, g8 * cg + c8, y8, x8) : 0;
        half[k8] = in8 ? step(M, g8 * cg + c8) / 2 : 0;
      }
      for (var q = 0; q < op.probes.length; q++) {  // an exact probe at this very pixel wins
        var pq = op.probes[q];
        if (pq.co === co && pq.y === y && pq.x === x) return { win: dec(pq, "win", f32), v: pq.v, exact: true };
      }
      return { win: win, v: valueAt(om, co, y, x), exact: false, half: half, vtol: step(om, co) / 2 };
    }
    if (op.x) {
      var X = dec(op, "x", f32), g = Math.floor(co / (op.cout / op.groups)), H = op.H, Wd = op.Wd;
      for (var c = 0; c < cg; c++) for (var i = 0; i < kh; i++) for (var j = 0; j < kw; j++) {
        var yy = y * op.stride[0] - op.pad[0] + i * op.dil[0], xx = x * op.stride[1] - op.pad[1] + j * op.dil[1];
        win[(c * kh + i) * kw + j] = (yy >= 0 && yy < H && xx >= 0 && xx < Wd) ? X[((g * cg + c) * H + yy) * Wd + xx] : 0;
      }
      var Y = dec(op, "y", f32);
      return { win: win, v: Y[(co * op.Ho + y) * op.Wo + x], exact: true };
    }
    for (var p = 0; p < op.probes.length; p++) {
      var pr = op.probes[p];
      if (pr.co === co && pr.y === y && pr.x === x) return { win: dec(pr, "win", f32), v: pr.v, exact: true };
    }
    return null;
  }
  function convSum(op, co, win) {
    var W = dec(op, "W", f32), per = win.length, s = 0, abs = 0, prods = new Float64Array(per);
    for (var i = 0; i < per; i++) { prods[i] = W[co * per + i] * win[i]; s += prods[i]; abs += Math.abs(prods[i]); }
    var b = op.b ? dec(op, "b", f32)[co] : 0;
    return { prods: prods, sum: s, bias: b, total: s + b, scale: abs + Math.abs(b) };
  }
  function agrees(js, torch, scale) { return Math.abs(js - torch) <= 1e-4 * Math.max(Math.abs(torch), 1e-3 * scale); }
  // the largest difference the 8-bit copies allow: each input number within half a step
  // (times |w|), PyTorch's output within half a step of the output map
  function bound8(op, co, w) {
    var W = dec(op, "W", f32), per = w.win.length, b = w.vtol;
    for (var i = 0; i < per; i++) b += Math.abs(W[co * per + i]) * w.half[i];
    return b;
  }

  function numGrid(vals, kh, kw, off, cls, hl) {
    var t = el("table", "num " + (cls || ""));
    for (var i = 0; i < kh; i++) {
      var tr = el("tr");
      for (var j = 0; j < kw; j++) { var td = el("td", null, fmt3(vals[off + i * kw + j])); if (hl && hl(i, j)) td.className = "hl"; tr.appendChild(td); }
      t.appendChild(tr);
    }
    return t;
  }
  function labelled(label, node) { var f = el("figure", "lab"); f.appendChild(node); f.appendChild(el("figcaption", null, label)); return f; }

  function arith(n, co, y, x, scroll) {
    var shown = current;
    return layerReady.then(function () { return ready(n.op && n.op.xin); }).then(function () {
      if (current === shown) arithNow(n, co, y, x, scroll);
    });
  }
  function arithNow(n, co, y, x, scroll) {
    var A = document.getElementById("arith");
    A.innerHTML = "";
    var op = n.op;
    if (scroll) setTimeout(function () {  // show the input maps (window outlined) and the sums
      var d = document.getElementById("detail"), t = document.getElementById("inputpart") || A;
      d.scrollTop = t.offsetTop - d.offsetTop - 8;
    }, 0);
    if (op.kind === "conv") return arithConv(A, n, co, y, x);
    if (op.kind === "pool") return arithPool(A, n, co, y, x);
    if (op.kind === "bn") return arithBN(A, n, co, y, x);
  }
  function nearestProbe(op, co, y, x) {
    var best = null, bd = Infinity;
    op.probes.forEach(function (p) { var d = (p.co === co ? 0 : 1e6) + Math.abs(p.y - y) + Math.abs(p.x - x); if (d < bd) { bd = d; best = p; } });
    return best;
  }
  function missing(A, n, co, y, x, what) {
    var p = nearestProbe(n.op, co, y, x);
    A.appendChild(el("p", "hint", "The numbers of pixel (" + y + ", " + x + ") of channel " + co + " are not in this page (" + what + ", to keep the file small). These pixels are:"));
    var ul = el("ul", "probes");
    n.op.probes.forEach(function (q) { var li = el("li"); var a = el("a", null, "channel " + q.co + ", pixel (" + q.y + ", " + q.x + ")"); a.href = "#"; a.addEventListener("click", function (e) { e.preventDefault(); arith(n, q.co, q.y, q.x); }); li.appendChild(a); ul.appendChild(li); });
    A.appendChild(ul);
    return p;
  }
  function arithConv(A, n, co, y, x) {
    var op = n.op, kh = op.k[0], kw = op.k[1];
    A.appendChild(el("h2", null, "How " + n.name + " computes channel " + co + ", pixel (" + y + ", " + x + ")"));
    if (co >= op.kc) { missing(A, n, co, y, x, "only the first " + op.kc + " output channels' kernels are embedded"); return; }
    var w = convWindow(op, co, y, x, n);
    if (!w) { missing(A, n, co, y, x, "the whole input of this layer is too large"); return; }
    var r = convSum(op, co, w.win), W = dec(op, "W", f32), per = w.win.length;
    var g0 = Math.floor(co / (op.cout / op.groups)) * op.cin_g, chs = [];
    for (var cc = g0; cc < g0 + Math.min(op.cin_g, 64); cc++) chs.push(cc);
    markWindow(y * op.stride[0] - op.pad[0], x * op.stride[1] - op.pad[1], (kh - 1) * op.dil[0] + 1, (kw - 1) * op.dil[1] + 1, chs);
    A.appendChild(el("p", "formula", "out[" + co + "," + y + "," + x + "] = b[" + co + "] + \u03a3_c \u03a3_i \u03a3_j w[" + co + ",c,i,j] \u00b7 in[c, " + y + "\u00b7" + op.stride[0] + "+i" + (op.dil[0] > 1 ? "\u00b7" + op.dil[0] : "") + "\u2212" + op.pad[0] + ", " + x + "\u00b7" + op.stride[1] + "+j" + (op.dil[1] > 1 ? "\u00b7" + op.dil[1] : "") + "\u2212" + op.pad[1] + "]"));
    A.appendChild(el("p", "note", "PyTorch's Conv2d computes a cross-correlation: the kernel slides over the input without being flipped. A true convolution (the textbook formula, and cnnlab's NumPy engine) flips the kernel by 180\u00b0 first; its kernel for the same result is shown below the products. Positions outside the input are the zero padding." + (op.groups > 1 ? " This layer has " + op.groups + " groups: output channel " + co + " sees input channels " + (Math.floor(co / (op.cout / op.groups)) * op.cin_g) + " to " + (Math.floor(co / (op.cout / op.groups)) * op.cin_g + op.cin_g - 1) + " only." : "")));
    var shown = Math.min(3, op.cin_g), kk = kh * kw;
    for (var c = 0; c < shown; c++) {
      var row = el("div", "row");
      var part = 0;
      for (var i = 0; i < kk; i++) part += r.prods[c * kk + i];
      row.appendChild(el("div", "rowlabel", "input channel " + c));
      row.appendChild(labelled("input window", numGrid(w.win, kh, kw, c * kk)));
      row.appendChild(el("div", "op", "\u00d7"));
      row.appendChild(labelled("kernel w[" + co + "," + c + "]", numGrid(W, kh, kw, co * per + c * kk, "kern")));
      row.appendChild(el("div", "op", "="));
      row.appendChild(labelled("products, sum " + fmt(part), numGrid(r.prods, kh, kw, c * kk, "prod")));
      A.appendChild(row);
    }
    var flip = new Float32Array(kk), frow = el("div", "row");
    for (var a = 0; a < kh; a++) for (var b2 = 0; b2 < kw; b2++) flip[a * kw + b2] = W[co * per + (kh - 1 - a) * kw + (kw - 1 - b2)];
    frow.appendChild(el("div", "rowlabel", "the same kernel w[" + co + ",0] for a true convolution: flipped by 180\u00b0 (rows and columns reversed)"));
    frow.appendChild(labelled("kernel as PyTorch holds it", numGrid(W, kh, kw, co * per, "kern")));
    frow.appendChild(el("div", "op", "\u21bb"));
    frow.appendChild(labelled("flipped kernel (true convolution)", numGrid(flip, kh, kw, 0, "flip")));
    A.appendChild(frow);
    var rest = 0;
    for (var i2 = shown * kk; i2 < per; i2++) rest += r.prods[i2];
    var t = el("table", "sum");
    function line(label, v, cls) { var tr = el("tr", cls); tr.appendChild(el("th", null, label)); tr.appendChild(el("td", null, fmt(v))); t.appendChild(tr); }
    for (var c2 = 0; c2 < shown; c2++) { var s2 = 0; for (var j2 = 0; j2 < kk; j2++) s2 += r.prods[c2 * kk + j2]; line("sum of products, input channel " + c2, s2); }
    if (op.cin_g > shown) line("sum of products, input channels " + shown + " to " + (op.cin_g - 1) + " (" + ((op.cin_g - shown) * kk) + " products)", rest);
    line("sum of all " + per + " products", r.sum);
    line("+ bias b[" + co + "]", r.bias);
    line("= output (recomputed here, in JavaScript)", r.total, "total");
    line(w.exact ? "value PyTorch computed (shown in the map)" : "value PyTorch computed, from the page's 8-bit copy of the map", w.v, "torch");
    A.appendChild(t);
    if (w.exact) {
      var ok = agrees(r.total, w.v, r.scale);
      A.appendChild(el("p", ok ? "ok" : "bad", ok ? "\u2714 equal to 1e-4 relative" : "\u2718 differs: " + fmt(r.total - w.v)));
    } else {
      var bd = bound8(op, co, w), ok8 = Math.abs(r.total - w.v) <= bd * (1 + 1e-6) + 1e-4 * Math.abs(w.v);
      A.setAttribute("data-bound", String(bd));
      A.appendChild(el("p", ok8 ? "ok" : "bad", (ok8 ? "\u2714 agree within " : "\u2718 differ by more than ") + fmt(bd) + ", the rounding of the page's 8-bit copies (difference " + fmt(r.total - w.v) + ")"));
      A.appendChild(el("p", "note", "This page keeps every layer's input as 8-bit numbers (each channel's range in 255 steps) to stay small, so any pixel can be clicked: the window above is those numbers, each within half a step of PyTorch's float32 value, and the bound is the sum of |w| \u00b7 half a step, plus half a step of the output map. The self-check in the header redoes exact float32 windows."));
    }
    var nx = op.next;
    if (nx && nx.fn) A.appendChild(el("p", "formula", "then " + nx.name + " (" + nx.fn + "): " + nx.fn + "(" + fmt(w.v) + ") = " + fmt(actFn(nx, w.v))));
    else if (nx && nx.type) A.appendChild(el("p", "note", "next, " + nx.name + " (" + nx.type + ") takes this value; select it to follow."));
  }
  function poolWindow(op, co, y, x, n) {
    var kh = op.k[0], kw = op.k[1];
    if (op.x && co < op.kc) {
      var X = dec(op, "x", f32), H = op.H, Wd = op.Wd, win = new Float32Array(kh * kw), inside = new Uint8Array(kh * kw);
      var h0 = y * op.stride[0] - op.pad[0], w0 = x * op.stride[1] - op.pad[1];
      var hEnd = Math.min(h0 + kh, H + op.pad[0]), wEnd = Math.min(w0 + kw, Wd + op.pad[1]);
      var poolSize = (hEnd - h0) * (wEnd - w0), cnt = 0;
      for (var i = 0; i < kh; i++) for (var j = 0; j < kw; j++) {
        var yy = h0 + i * op.dil[0], xx = w0 + j * op.dil[1];
        if (yy >= 0 && yy < H && xx >= 0 && xx < Wd) { win[i * kw + j] = X[(co * H + yy) * Wd + xx]; inside[i * kw + j] = 1; cnt++; }
        else win[i * kw + j] = op.op === "max" ? -Infinity : 0;
      }
      var div = op.include_pad ? poolSize : cnt;
      return { win: win, v: dec(op, "y", f32)[(co * op.Ho + y) * op.Wo + x], div: div };
    }
    for (var p = 0; p < op.probes.length; p++) {
      var pr = op.probes[p];
      if (pr.co === co && pr.y === y && pr.x === x) return { win: dec(pr, "win", f32), v: pr.v, div: null };
    }
    var M = op.xin, om = n && n.map;
    if (M && q8(M) && co < M.s && om && om.kind === "map" && om.f === 1 && co < om.s) {
      var w8 = new Float32Array(kh * kw), h8 = y * op.stride[0] - op.pad[0], v8 = x * op.stride[1] - op.pad[1], cnt8 = 0;
      var hE = Math.min(h8 + kh, op.H + op.pad[0]), wE = Math.min(v8 + kw, op.Wd + op.pad[1]);
      for (var a = 0; a < kh; a++) for (var b = 0; b < kw; b++) {
        var ya = h8 + a * op.dil[0], xb = v8 + b * op.dil[1];
        if (ya >= 0 && ya < op.H && xb >= 0 && xb < op.Wd) { w8[a * kw + b] = valueAt(M, co, ya, xb); cnt8++; }
        else w8[a * kw + b] = op.op === "max" ? -Infinity : 0;
      }
      return { win: w8, v: valueAt(om, co, y, x), div: op.include_pad ? (hE - h8) * (wE - v8) : cnt8, approx: step(M, co) / 2 + step(om, co) / 2 };
    }
    return null;
  }
  function arithPool(A, n, co, y, x) {
    var op = n.op, kh = op.k[0], kw = op.k[1];
    A.appendChild(el("h2", null, "How " + n.name + " computes channel " + co + ", pixel (" + y + ", " + x + ")"));
    var w = poolWindow(op, co, y, x, n);
    if (!w) { missing(A, n, co, y, x, "the whole input of this layer is too large"); return; }
    markWindow(y * op.stride[0] - op.pad[0], x * op.stride[1] - op.pad[1], kh, kw, [co]);
    var res, k = kh * kw, best = -Infinity, bi = -1, s = 0;
    for (var i = 0; i < k; i++) { var v = w.win[i]; if (v < -1e38) v = -Infinity; if (v > best) { best = v; bi = i; } if (isFinite(v)) s += v; }
    var div = w.div || k;
    res = op.op === "max" ? best : s / div;
    A.appendChild(el("p", "formula", op.op === "max" ? "the largest of the " + k + " numbers in the " + kh + "x" + kw + " window (stride " + op.stride.join("x") + ")" : "the mean of the " + kh + "x" + kw + " window: sum / " + div + " (stride " + op.stride.join("x") + ")"));
    A.appendChild(labelled("input window, channel " + co, numGrid(w.win, kh, kw, 0, "", op.op === "max" ? function (a, b) { return a * kw + b === bi; } : null)));
    var t = el("table", "sum");
    function line(label, v, cls) { var tr = el("tr", cls); tr.appendChild(el("th", null, label)); tr.appendChild(el("td", null, fmt(v))); t.appendChild(tr); }
    if (op.op === "avg") { line("sum", s); line("/ " + div, res, "total"); } else line("max", res, "total");
    line(w.approx ? "value PyTorch computed, from the page's 8-bit copy of the map" : "value PyTorch computed", w.v, "torch");
    A.appendChild(t);
    if (w.approx) {
      var okp = Math.abs(res - w.v) <= w.approx * (1 + 1e-6);
      A.appendChild(el("p", okp ? "ok" : "bad", (okp ? "\u2714 agree within " : "\u2718 differ by more than ") + fmt(w.approx) + ", the rounding of the page's 8-bit copies of the input and output"));
    }
  }
  function arithBN(A, n, co, y, x) {
    var op = n.op;
    A.appendChild(el("h2", null, n.name + ": batch norm of channel " + co));
    var mu = dec(op, "mean", f32), va = dec(op, "var", f32), ga = dec(op, "gamma", f32), be = dec(op, "beta", f32);
    var p = null;
    op.probes.forEach(function (q) { if (q.co === co && !p) p = q; });
    if (co >= op.kc) { A.appendChild(el("p", "hint", "statistics of channel " + co + " are not embedded")); return; }
    A.appendChild(el("p", "formula", "y = (x \u2212 " + fmt(mu[co]) + ") / \u221a(" + fmt(va[co]) + " + " + op.eps + ") \u00d7 " + fmt(ga[co]) + " + " + fmt(be[co])));
    A.appendChild(el("p", "note", "In eval mode batch norm uses the running mean and variance collected in training (two of its four statistics) and its learned scale gamma and shift beta (the other two): per channel, one multiplication and one addition."));
    var M = op.xin, om = n.map;
    if (M && q8(M) && co < M.s && om && om.kind === "map" && om.f === 1 && co < om.s && y < M.h && x < M.w) {
      var xin = valueAt(M, co, y, x), yb = (xin - mu[co]) / Math.sqrt(va[co] + op.eps) * ga[co] + be[co], yt = valueAt(om, co, y, x);
      var bb = Math.abs(ga[co]) / Math.sqrt(va[co] + op.eps) * step(M, co) / 2 + step(om, co) / 2;
      A.appendChild(el("p", "formula", "at pixel (" + y + ", " + x + "): x = " + fmt(xin) + " \u2192 y = " + fmt(yb) + " (PyTorch: " + fmt(yt) + ", from the page's 8-bit copies)"));
      var okb = Math.abs(yb - yt) <= bb * (1 + 1e-6);
      A.appendChild(el("p", okb ? "ok" : "bad", (okb ? "\u2714 agree within " : "\u2718 differ by more than ") + fmt(bb) + ", the rounding of the 8-bit copies"));
      p = null;
    }
    if (p) {
      var yv = (p.in - mu[co]) / Math.sqrt(va[co] + op.eps) * ga[co] + be[co];
      A.appendChild(el("p", "formula", "at pixel (" + p.y + ", " + p.x + "): x = " + fmt(p.in) + " \u2192 y = " + fmt(yv) + " (PyTorch: " + fmt(p.v) + ")"));
    }
  }
  function showSoftmax() {
    var L = document.getElementById("layer"); L.innerHTML = ""; document.getElementById("arith").innerHTML = "";
    var z = f32(D.logits), n = z.length, m = -Infinity;
    for (var i = 0; i < n; i++) m = Math.max(m, z[i]);
    var e = new Float64Array(n), s = 0;
    for (var j = 0; j < n; j++) { e[j] = Math.exp(z[j] - m); s += e[j]; }
    L.appendChild(el("h2", null, "Softmax: from logits to probabilities"));
    L.appendChild(el("p", "formula", "p_k = exp(z_k \u2212 max z) / \u03a3_j exp(z_j \u2212 max z)   (subtracting max z = " + fmt(m) + " changes nothing but avoids overflow)"));
    var order = Array.from({ length: n }, function (_, k) { return k; }).sort(function (a, b) { return z[b] - z[a]; });
    var top = order.slice(0, Math.min(10, n));
    var t = el("table", "num soft");
    var hr = el("tr"); ["class", "logit z", "exp(z \u2212 max)", "p = exp / sum", ""].forEach(function (h) { hr.appendChild(el("th", null, h)); }); t.appendChild(hr);
    top.forEach(function (k) {
      var tr = el("tr");
      tr.appendChild(el("td", "cls", D.classes[k] || String(k)));
      tr.appendChild(el("td", null, fmt(z[k]))); tr.appendChild(el("td", null, fmt(e[k]))); tr.appendChild(el("td", null, (100 * e[k] / s).toFixed(2) + " %"));
      var bar = el("td", "barcell"); var b = el("span", "pbar"); b.style.width = Math.max(1, Math.round(240 * e[k] / s)) + "px"; bar.appendChild(b); tr.appendChild(bar);
      t.appendChild(tr);
    });
    L.appendChild(t);
    L.appendChild(el("p", "formula", "sum of the " + n + " exponentials = " + fmt(s) + (n > top.length ? " (the " + top.length + " largest of " + n + " classes are listed)" : "")));
  }

  // ---- self-check: redo PyTorch's convolution sums ------------------------------------
  function selfCheck() {
    var k = 0, total = 0, bad = [];
    D.nodes.forEach(function (n) {
      if (!n.op || n.op.kind !== "conv") return;
      var op = n.op;
      op.probes.forEach(function (p) {
        var r = convSum(op, p.co, dec(p, "win", f32));
        total++;
        if (agrees(r.total, p.v, r.scale)) k++; else bad.push(n.name + "[" + p.co + "," + p.y + "," + p.x + "]");
        if (op.x) {  // the same pixel through the path a click takes (the whole input)
          var w = convWindow(op, p.co, p.y, p.x), r2 = convSum(op, p.co, w.win);
          total++;
          if (agrees(r2.total, w.v, r2.scale) && agrees(r2.total, p.v, r2.scale)) k++; else bad.push(n.name + " (whole input)");
        }
      });
    });
    document.body.setAttribute("data-selfcheck", k + "/" + total);
    var sc = document.getElementById("selfcheck");
    sc.textContent = "self-check: " + k + "/" + total + " convolution outputs recomputed in the browser agree with PyTorch";
    sc.className = k === total && total > 0 ? "ok" : "bad";
    if (bad.length) sc.title = "disagree: " + bad.slice(0, 10).join(", ");
  }

  function header() {
    var T = document.getElementById("title");
    T.appendChild(el("h1", null, D.model));
    T.appendChild(el("div", "src", D.source.what || ""));
    if (D.source.note) T.appendChild(el("div", "src note", D.source.note));
    var S = document.getElementById("summary");
    S.appendChild(imageCanvas(D.image, 64));
    var p = f32(D.probs), best = 0;
    for (var i = 1; i < p.length; i++) if (p[i] > p[best]) best = i;
    var t = el("div", "facts");
    if (D.trained === false) {  // random weights: no confident prediction
      var u = el("div", "pred untrained", "untrained: random weights, so the output means nothing");
      u.setAttribute("data-untrained", "1");
      t.appendChild(u);
      t.appendChild(el("div", "legend", "its largest output is " + D.classes[best] + " (" + (100 * p[best]).toFixed(1) + " %) by chance; give trained weights with --weights FILE"));
    } else t.appendChild(el("div", "pred", "prediction: " + D.classes[best] + " (" + (100 * p[best]).toFixed(1) + " %)"));
    t.appendChild(el("div", null, "input " + D.input.join("x") + " \u00b7 " + D.total_params.toLocaleString("en") + " parameters \u00b7 " + big(D.macs) + " MACs \u00b7 depth " + D.weighted_depth + " \u00b7 " + D.rows + " layer boxes (depth " + D.depth + ")"));
    t.appendChild(el("div", "legend", "box: name, type, output shape, parameters, MACs (multiply-accumulates), RF = receptive field in input pixels; thumbnails: the first channels of the output, each on its own colour scale, blue negative, red positive (or dark to yellow when all \u2265 0)"));
    S.appendChild(t);
  }

  // Boxes that stick out of the overview column (a branch cut off): 0 when the layout holds.
  function overflowCount() {
    var ov = document.getElementById("overview").getBoundingClientRect(), k = 0;
    document.querySelectorAll("#overview .box").forEach(function (b) {
      var r = b.getBoundingClientRect();
      if (r.width > 0 && (r.right > ov.right + 1 || r.left < ov.left - 1)) k++;
    });
    return k;
  }
  function getMap(name) {
    var m = name === "(input)" ? D.input_map : byName[name] && byName[name].map;
    if (!m || m.kind !== "map") return null;
    return ready(m).then(function () {
      var size = m.h * m.w, data = new Float32Array(m.s * size), q = q8(m), a = Infinity, b = -Infinity;
      for (var c = 0; c < m.s; c++) {
        var l = lo(m, c), st = step(m, c);
        a = Math.min(a, l); b = Math.max(b, hi(m, c));
        for (var i = 0; i < size; i++) data[c * size + i] = l + q[c * size + i] * st;
      }
      return { channels: m.s, height: m.h, width: m.w, data: data, range: [a, b] };
    });
  }
  // The stable API other scripts of the page build on (the teaching layer, teach.js).
  window.cnnlabPage = {
    data: D,
    nodes: D.nodes.map(function (n) { return { name: n.name, kind: KIND[n.type] || "other", type: n.type, shape: n.shape, parent: n.parent }; }),
    getMap: getMap,
    onSelect: function (cb) { selectCallbacks.push(cb); },
    select: function (name) { select(name); }
  };

  var shown = D.maps.filter(function (m) { return !m.lazy; });
  Promise.all(shown.concat([D.input_map]).map(ready)).then(function () {
    header();
    buildOverview();
    selfCheck();
    document.body.setAttribute("data-overflow", String(overflowCount()));
    var firstConv = D.nodes.filter(function (n) { return n.op && n.op.kind === "conv"; })[0];
    if (firstConv) select(firstConv.name); else showSoftmax();
    // page.html#layer=NAME&px=C,Y,X opens a layer and the arithmetic of one output pixel;
    // #softmax opens the softmax (links in notes, and the browser tests use them)
    var hash = decodeURIComponent(location.hash.slice(1)), done = layerReady;
    if (hash === "softmax") showSoftmax();
    else if (hash) {
      var args = {};
      hash.split("&").forEach(function (kv) { var i = kv.indexOf("="); if (i > 0) args[kv.slice(0, i)] = kv.slice(i + 1); });
      if (args.layer && byName[args.layer]) {
        select(args.layer);
        done = layerReady;
        var box = document.querySelector('[data-layer="' + CSS.escape(args.layer) + '"]');
        if (box && box.getBoundingClientRect().top > window.innerHeight * 0.8) box.scrollIntoView({ block: "center" });
        var px = (args.px || "").split(",").map(Number);
        if (px.length === 3 && byName[args.layer].op) done = arith(byName[args.layer], px[0], px[1], px[2], true);
      }
    }
    return done;
  }).then(function () {
    // the teaching layer (teach.js) starts on the built page, its first layer selected
    if (window.cnnlabTeach) window.cnnlabTeach.init(window.cnnlabPage);
    document.body.setAttribute("data-ready", "1");
    document.body.setAttribute("data-ready-ms", String(Math.round(performance.now() - t0)));
    console.info("cnnlab explore: ready");
    // the inputs of the layers (for clicks), inflated in the background
    D.maps.forEach(function (m) { if (m.lazy) ready(m); });
  }).catch(function (e) { noteError(e && e.stack || e); });
})();
