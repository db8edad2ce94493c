// cnnlab explore: the teaching views (a kernel sliding over its input, a unit's window and
// receptive field, explanations per layer type in three languages, a digit drawn in the page
// and run through the whole network here, a stride/padding playground). Handwritten, no
// libraries. Uses only window.cnnlabPage ({data, nodes, getMap, onSelect}) and
// data.teach (cnnlab/explore/teach.py); texts come from window.cnnlabI18n (i18n.js).
"use strict";
(function () {
  var I18N = window.cnnlabI18n || {};
  var LANGS = ["en", "es", "pt"];
  var lang = "en";
  var S = null;          // data.teach
  var page = null;
  var root = null;       // section#teach
  var relabel = [];      // functions that redraw texts when the language changes

  // ---- small helpers -------------------------------------------------------------------
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  function tr(key, vars) {
    var table = (I18N[lang] || I18N.en || { ui: {} }).ui, s = table[key];
    if (s == null) s = ((I18N.en || { ui: {} }).ui)[key] || key;
    return s.replace(/\{(\w+)\}/g, function (_, k) { return vars && vars[k] != null ? String(vars[k]) : "{" + k + "}"; });
  }
  function topic(key) { var t = (I18N[lang] || I18N.en).topics[key] || I18N.en.topics[key]; return t; }
  function bytes(s) {
    var bin = atob(s), a = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) a[i] = bin.charCodeAt(i);
    return a;
  }
  function f32(s) { var b = bytes(s); return new Float32Array(b.buffer, 0, b.length >> 2); }
  function fmt(v) {
    if (v === -Infinity) return "\u2212\u221e";
    var a = Math.abs(v);
    if (a !== 0 && (a >= 1e4 || a < 1e-3)) return v.toExponential(2);
    return v.toFixed(3);
  }
  function pair(a) { return a[0] === a[1] ? String(a[0]) : a[0] + "x" + a[1]; }
  function button(key, onClick, cls) {
    var b = el("button", cls || null);
    b.type = "button";
    b.setAttribute("data-t", key);
    b.addEventListener("click", onClick);
    relabel.push(function () { b.textContent = tr(key); });
    return b;
  }
  function label(key, tag, cls) {
    var e = el(tag || "span", cls);
    relabel.push(function () { e.textContent = tr(key); });
    return e;
  }
  function textOf(fn, tag, cls) {  // an element whose text is fn() in the current language
    var e = el(tag || "p", cls);
    relabel.push(function () { e.textContent = fn(); });
    return e;
  }
  function setLang(l) {
    if (LANGS.indexOf(l) < 0) return;
    lang = l;
    try { window.localStorage.setItem("cnnlab-lang", l); } catch (e) { /* file:// without storage */ }
    document.body.setAttribute("data-lang", l);
    if (root) root.querySelectorAll("[data-lang-btn]").forEach(function (b) { b.classList.toggle("on", b.getAttribute("data-lang-btn") === l); });
    relabel.forEach(function (f) { f(); });
  }
  function initialLang() {
    var l = null;
    try { l = window.localStorage.getItem("cnnlab-lang"); } catch (e) { l = null; }
    var m = /(?:^|[#&])lang=(\w+)/.exec(location.hash);
    if (m) l = m[1];
    if (!l) l = (navigator.language || "en").slice(0, 2);
    return LANGS.indexOf(l) >= 0 ? l : "en";
  }
  var DIV = [[33, 102, 172], [103, 169, 207], [209, 229, 240], [247, 247, 247], [253, 219, 199], [239, 138, 98], [178, 24, 43]];
  var SEQ = [[13, 8, 135], [84, 2, 163], [139, 10, 165], [185, 50, 137], [219, 92, 104], [244, 136, 73], [254, 188, 43], [240, 249, 33]];
  function colour(v, lo, hi) {  // diverging around 0 when the range is signed
    var stops = lo < 0 ? DIV : SEQ, t;
    if (lo < 0) { var m = Math.max(-lo, hi) || 1; t = (v / m + 1) / 2; } else t = hi > lo ? (v - lo) / (hi - lo) : 0.5;
    t = Math.max(0, Math.min(1, t)) * (stops.length - 1);
    var k = Math.min(Math.floor(t), stops.length - 2), f = t - k, c = [];
    for (var i = 0; i < 3; i++) c.push(Math.round(stops[k][i] * (1 - f) + stops[k + 1][i] * f));
    return "rgb(" + c.join(",") + ")";
  }
  function ink(rgb) { var m = /(\d+),(\d+),(\d+)/.exec(rgb); return m && (+m[1] * 0.3 + +m[2] * 0.59 + +m[3] * 0.11) < 120 ? "#fff" : "#111"; }

  // ---- layer kinds and explanations ------------------------------------------------------
  var TOPICS = ["conv", "depthwise", "act", "pool", "bn", "add", "cat", "linear", "softmax"];
  var ACT = /^(ReLU|ReLU6|Sigmoid|Tanh|SiLU|Hardswish|Hardsigmoid|LeakyReLU|ELU|GELU|ScaledTanh|Mish)$/;
  function layerOf(name) { for (var i = 0; i < S.layers.length; i++) if (S.layers[i].name === name) return S.layers[i]; return null; }
  function topicOf(name) {
    if (name === "softmax") return "softmax";
    var n = null;
    (page.nodes || []).forEach(function (m) { if (m.name === name) n = m; });
    var L = layerOf(name), type = n ? n.type : L ? L.type : "";
    if (L && L.kind === "conv") return L.groups > 1 && L.groups === L.cin ? "depthwise" : "conv";
    if (/Conv/.test(type)) return "conv";
    if (/Pool|Subsampling/.test(type)) return "pool";
    if (/BatchNorm/.test(type)) return "bn";
    if (ACT.test(type)) return "act";
    if (/Linear|RBF/.test(type)) return "linear";
    if (/Softmax/.test(type)) return "softmax";
    if (n && n.merge === "add") return "add";
    if (n && n.merge === "cat") return "cat";
    if (/\.add$|^add$/.test(name)) return "add";
    if (/\.cat$|^cat$/.test(name)) return "cat";
    return null;
  }
  var explainPane, selectedTopic = "conv", selectedName = null;
  function buildExplain(p) {
    explainPane = p;
    var cur = el("div", "explain current");
    var chips = el("div", "chips");
    TOPICS.forEach(function (k) {
      var b = el("button", "chip");
      b.type = "button";
      b.setAttribute("data-topic", k);
      b.addEventListener("click", function () { selectedTopic = k; drawExplain(); });
      relabel.push(function () { b.textContent = topic(k)[0]; });
      chips.appendChild(b);
    });
    p.appendChild(cur);
    p.appendChild(label("allTopics", "h4"));
    p.appendChild(chips);
    relabel.push(drawExplain);
  }
  function drawExplain() {
    var cur = explainPane.querySelector(".explain.current");
    cur.innerHTML = "";
    var t = topic(selectedTopic);
    cur.setAttribute("data-topic", selectedTopic);
    var h = el("h4", null, (selectedName ? tr("thisLayer") + " (" + selectedName + "): " : "") + t[0]);
    cur.appendChild(h);
    cur.appendChild(el("p", "explain-text", t[1]));
    explainPane.querySelectorAll(".chip").forEach(function (b) { b.classList.toggle("on", b.getAttribute("data-topic") === selectedTopic); });
  }

  // ---- (a) + (b): the kernel sliding over its input ----------------------------------------
  var A = null;  // the animation's state
  function buildSlide(p) {
    if (!S.layers.length) { p.appendChild(textOf(function () { return tr("noLayers"); }, "p", "hint")); return; }
    var top = el("div", "slide-controls");
    var sel = el("select", "slide-layer");
    S.layers.forEach(function (L) { var o = el("option", null, L.name + " (" + L.type + ")"); o.value = L.name; sel.appendChild(o); });
    sel.addEventListener("change", function () { startLayer(sel.value); });
    top.appendChild(label("layer", "label"));
    top.appendChild(sel);
    top.appendChild(button("play", function () { play(!A.timer); }, "play"));
    top.appendChild(button("step", function () { pause(); advance(); }, "step"));
    top.appendChild(button("end", function () { pause(); while (A.pos < A.n) advance(true); draw(); }, "end"));
    top.appendChild(button("reset", function () { pause(); resetAnim(); }, "reset"));
    var sp = el("select", "speed");
    [["slow", 500], ["normal", 150], ["fast", 25]].forEach(function (v) {
      var o = el("option"); o.value = String(v[1]); relabel.push(function () { o.textContent = tr(v[0]); }); sp.appendChild(o);
    });
    sp.value = "150";
    sp.addEventListener("change", function () { if (A && A.timer) { pause(); play(true); } });
    top.appendChild(label("speed", "label"));
    top.appendChild(sp);
    p.appendChild(top);
    var cap = el("p", "slide-caption"), note = el("p", "slide-note");
    p.appendChild(cap); p.appendChild(note);
    var row = el("div", "slide-row");
    function fig(key, canvas) { var f = el("figure", "slide-fig"); f.appendChild(canvas); f.appendChild(label(key, "figcaption")); return f; }
    var cin = el("canvas", "slide-in"), ck = el("canvas", "slide-k"), cout = el("canvas", "slide-out"), cimg = el("canvas", "slide-img");
    row.appendChild(fig("input", cin)); row.appendChild(fig("kernel", ck)); row.appendChild(fig("output", cout)); row.appendChild(fig("image", cimg));
    p.appendChild(row);
    var stepText = el("p", "slide-step formula"), hover = el("p", "slide-hover"), check = el("p", "slide-check");
    p.appendChild(stepText); p.appendChild(hover); p.appendChild(check);
    p.appendChild(textOf(function () { return tr("hover"); }, "p", "hint"));
    A = { p: p, sel: sel, speed: sp, cap: cap, note: note, cin: cin, ck: ck, cout: cout, cimg: cimg, stepText: stepText, hover: hover, check: check, timer: null };
    cout.addEventListener("mousemove", function (e) { hoverAt(e, "out"); });
    cin.addEventListener("mousemove", function (e) { hoverAt(e, "in"); });
    cout.addEventListener("mouseleave", function () { A.hot = null; draw(); });
    cin.addEventListener("mouseleave", function () { A.hot = null; draw(); });
    relabel.push(function () { if (A.L) { captions(); draw(); } });
    if (S.layers.length) startLayer(S.layers[0].name);
  }
  function captions() {
    var L = A.L, v = { name: L.name, k: L.k[0] + "x" + L.k[1], s: pair(L.stride), p: pair(L.pad), d: pair(L.dil), ci: L.ci, cin: L.cin, co: L.co, cil: L.ci - Math.floor(L.co / Math.max(1, L.cout / L.groups)) * L.cin_g, op: L.op };
    A.cap.textContent = tr(L.kind === "conv" ? "convCaption" : "poolCaption", v);
    var n = [L.cropped ? tr("cropped", L) : tr("whole", L)];
    if (L.kind === "conv") n.push(L.full ? tr("fullNote") : tr("partial", { n: L.cin_g, b: fmt(L.total_bias), ci: L.ci }));
    A.note.textContent = n.join(" ");
  }
  function startLayer(name) {
    var L = layerOf(name);
    if (!L) return;
    pause();
    A.L = L; A.sel.value = name;
    A.x = f32(L.x); A.inside = bytes(L.inside); A.expect = f32(L.y);
    A.kern = L.kind === "conv" ? f32(L.kernel) : null;
    A.n = L.oh * L.ow;
    var lo = Infinity, hi = -Infinity;
    for (var i = 0; i < A.x.length; i++) if (A.inside[i]) { lo = Math.min(lo, A.x[i]); hi = Math.max(hi, A.x[i]); }
    A.inLo = Math.min(lo, 0); A.inHi = hi;
    var olo = Infinity, ohi = -Infinity;
    for (var j = 0; j < A.expect.length; j++) { olo = Math.min(olo, A.expect[j]); ohi = Math.max(ohi, A.expect[j]); }
    A.outLo = olo; A.outHi = ohi;
    var side = Math.max(L.ih, L.iw);
    A.cs = Math.max(6, Math.min(30, Math.floor(380 / side)));
    A.os = Math.max(8, Math.min(30, Math.floor(240 / Math.max(L.oh, L.ow))));
    A.cin.width = L.iw * A.cs; A.cin.height = L.ih * A.cs;
    A.cout.width = L.ow * A.os; A.cout.height = L.oh * A.os;
    A.ck.width = L.k[1] * 30; A.ck.height = L.k[0] * 30;
    A.p.setAttribute("data-anim-layer", L.name);
    captions();
    resetAnim();
    if (A.started && !A.p.hidden) play(true);
  }
  function resetAnim() { A.pos = 0; A.vals = []; A.hot = null; A.maxdiff = 0; A.check.textContent = ""; A.check.className = "slide-check"; status(); draw(); }
  function windowValue(oy, ox) {
    // the value of output (oy, ox) from the crop: conv = sum of products (+ bias), pool = max / mean
    var L = A.L, kh = L.k[0], kw = L.k[1], s = 0, best = -Infinity, cnt = 0, terms = [];
    for (var i = 0; i < kh; i++) for (var j = 0; j < kw; j++) {
      var r = oy * L.stride[0] + i * L.dil[0], c = ox * L.stride[1] + j * L.dil[1], k = r * L.iw + c;
      var inb = A.inside[k] === 1, v = inb ? A.x[k] : 0;
      if (L.kind === "conv") { s += A.kern[i * kw + j] * v; terms.push(v); }
      else if (inb) { best = Math.max(best, v); s += v; cnt++; }
    }
    if (L.kind === "conv") return { v: s + L.bias, terms: terms };
    if (L.op === "max") return { v: best };
    var div;
    if (L.include_pad) {  // PyTorch: the window clipped to the padded input
      var h0 = oy * L.stride[0] + L.y0, w0 = ox * L.stride[1] + L.x0;
      var hEnd = Math.min(h0 + kh, L.H + L.pad[0]), wEnd = Math.min(w0 + kw, L.W + L.pad[1]);
      div = (hEnd - h0) * (wEnd - w0);
    } else div = cnt;
    return { v: s / div, div: div };
  }
  function advance(quiet) {
    if (!A.L || A.pos >= A.n) return;
    var L = A.L, oy = Math.floor(A.pos / L.ow), ox = A.pos % L.ow, r = windowValue(oy, ox);
    A.vals.push(r.v);
    A.maxdiff = Math.max(A.maxdiff, Math.abs(r.v - A.expect[A.pos]));
    A.pos++;
    A.last = { y: oy, x: ox, v: r.v };
    if (!quiet) { status(); draw(); } else if (A.pos === A.n) status();
  }
  function status() {
    A.p.setAttribute("data-anim-pos", A.pos + "/" + A.n);
    A.p.setAttribute("data-anim-values", JSON.stringify(A.vals.map(function (v) { return +v.toPrecision(7); })));
    A.p.setAttribute("data-anim-maxdiff", A.maxdiff.toExponential(2));
    if (A.pos === A.n && A.n > 0) {
      var scale = Math.max(1e-3, Math.abs(A.outHi), Math.abs(A.outLo)), ok = A.maxdiff <= 1e-4 * scale;
      A.check.className = "slide-check " + (ok ? "ok" : "bad");
      A.check.textContent = ok ? tr("checkAnim", { n: A.n, d: A.maxdiff.toExponential(1) }) : "\u2718 max |js \u2212 torch| = " + A.maxdiff.toExponential(2);
      if (!ok) console.error("cnnlab teach: " + A.L.name + " animation differs from PyTorch by " + A.maxdiff);
    }
    if (A.last && A.pos > 0) {
      var L = A.L, v = { y: A.last.y, x: A.last.x, v: fmt(A.last.v), op: L.op };
      A.stepText.textContent = (L.kind === "conv" ? tr("stepConv", v) + (L.bias ? tr("stepBias", { b: fmt(L.bias) }) : "") : tr("stepPool", v));
    } else A.stepText.textContent = "";
  }
  function play(on) {
    if (!on) return pause();
    A.started = true;
    if (A.timer) pause();
    if (A.pos >= A.n) resetAnim();
    var ms = +A.speed.value;
    A.timer = setInterval(function () { advance(); if (A.pos >= A.n) pause(); }, ms);
    A.p.querySelector("button.play").setAttribute("data-t", "pause");
    A.p.querySelector("button.play").textContent = tr("pause");
  }
  function pause() {
    if (A && A.timer) { clearInterval(A.timer); A.timer = null; }
    var b = A && A.p.querySelector("button.play");
    if (b) { b.setAttribute("data-t", "play"); b.textContent = tr("play"); }
  }
  function cell(ctx, x, y, s, fill, text, textColour) {
    ctx.fillStyle = fill; ctx.fillRect(x * s, y * s, s, s);
    ctx.strokeStyle = "rgba(0,0,0,0.15)"; ctx.strokeRect(x * s + 0.5, y * s + 0.5, s - 1, s - 1);
    if (text != null && s >= 24) { ctx.fillStyle = textColour || ink(fill); ctx.font = Math.floor(s * 0.32) + "px sans-serif"; ctx.textAlign = "center"; ctx.textBaseline = "middle"; ctx.fillText(text, x * s + s / 2, y * s + s / 2); }
  }
  function outline(ctx, x, y, w, h, s, colour, lw) { ctx.strokeStyle = colour; ctx.lineWidth = lw || 3; ctx.strokeRect(x * s + 1.5, y * s + 1.5, w * s - 3, h * s - 3); ctx.lineWidth = 1; }
  function windowAt(oy, ox) {  // crop rows/cols of output (oy, ox)'s window
    var L = A.L;
    return { r: oy * L.stride[0], c: ox * L.stride[1], h: (L.k[0] - 1) * L.dil[0] + 1, w: (L.k[1] - 1) * L.dil[1] + 1 };
  }
  function draw() {
    var L = A.L;
    if (!L) return;
    var ctx = A.cin.getContext("2d"), cs = A.cs, i, j;
    for (i = 0; i < L.ih; i++) for (j = 0; j < L.iw; j++) {
      var k = i * L.iw + j;
      if (A.inside[k]) cell(ctx, j, i, cs, colour(A.x[k], A.inLo, A.inHi), fmt(A.x[k]).replace(/0+$/, "").slice(0, 5));
      else { cell(ctx, j, i, cs, "#d9d9d9", L.op === "max" ? "\u2212\u221e" : "0", "#777"); }
    }
    // the current (or hovered) window: its taps, spaced by the dilation
    var cur = A.hot && A.hot.kind === "out" ? A.hot : A.pos > 0 ? { y: Math.floor((A.pos - 1) / L.ow), x: (A.pos - 1) % L.ow } : { y: 0, x: 0 };
    var w = windowAt(cur.y, cur.x);
    outline(ctx, w.c, w.r, w.w, w.h, cs, "#1f6feb", 2);
    for (i = 0; i < L.k[0]; i++) for (j = 0; j < L.k[1]; j++) { ctx.fillStyle = "rgba(255,176,0,0.35)"; ctx.fillRect((w.c + j * L.dil[1]) * cs + 2, (w.r + i * L.dil[0]) * cs + 2, cs - 4, cs - 4); }
    outline(ctx, w.c, w.r, w.w, w.h, cs, "#1f6feb", 3);
    if (A.hot && A.hot.kind === "in") outline(ctx, A.hot.x, A.hot.y, 1, 1, cs, "#e8006f", 3);
    // kernel
    var kc = A.ck.getContext("2d");
    A.ck.parentNode.style.display = L.kind === "conv" ? "" : "none";
    if (L.kind === "conv") {
      var klo = Infinity, khi = -Infinity;
      for (i = 0; i < A.kern.length; i++) { klo = Math.min(klo, A.kern[i]); khi = Math.max(khi, A.kern[i]); }
      for (i = 0; i < L.k[0]; i++) for (j = 0; j < L.k[1]; j++) cell(kc, j, i, 30, colour(A.kern[i * L.k[1] + j], Math.min(klo, -Math.abs(khi)), Math.max(khi, Math.abs(klo))), fmt(A.kern[i * L.k[1] + j]).slice(0, 5));
    }
    // output: filled so far
    var oc = A.cout.getContext("2d"), os = A.os;
    oc.clearRect(0, 0, A.cout.width, A.cout.height);
    for (i = 0; i < L.oh; i++) for (j = 0; j < L.ow; j++) {
      var q = i * L.ow + j;
      if (q < A.pos) cell(oc, j, i, os, colour(A.vals[q], A.outLo, A.outHi), fmt(A.vals[q]).slice(0, 5));
      else cell(oc, j, i, os, "#fafafa", null);
    }
    outline(oc, cur.x, cur.y, 1, 1, os, "#1f6feb", 3);
    drawImage(cur);
  }
  function rfRect(rf, y, x) {  // rows/cols of the image a unit at (y, x) sees
    if (!rf) return { r0: y, r1: y, c0: x, c1: x };
    var cy = rf.start[0] + y * rf.jump[0], cx = rf.start[1] + x * rf.jump[1];
    return { r0: Math.round(cy - (rf.size[0] - 1) / 2), r1: Math.round(cy + (rf.size[0] - 1) / 2), c0: Math.round(cx - (rf.size[1] - 1) / 2), c1: Math.round(cx + (rf.size[1] - 1) / 2) };
  }
  var imgCache = null;
  function imageCanvas() {  // the input image at its stored size, drawn once
    var im = S.image;
    if (!imgCache) {
      var off = document.createElement("canvas"); off.width = im.w; off.height = im.h;
      var oc = off.getContext("2d"), d = oc.createImageData(im.w, im.h), q = bytes(im.q), n = im.w * im.h;
      for (var i = 0; i < n; i++) { for (var c = 0; c < 3; c++) d.data[4 * i + c] = q[(im.c === 1 ? 0 : c) * n + i]; d.data[4 * i + 3] = 255; }
      oc.putImageData(d, 0, 0); imgCache = off;
    }
    return imgCache;
  }
  function drawImage(cur) {
    var im = S.image, cv = A.cimg, scale = Math.max(1, Math.floor(160 / Math.max(im.w, im.h)));
    cv.width = im.w * scale; cv.height = im.h * scale;
    var ctx = cv.getContext("2d");
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(imageCanvas(), 0, 0, cv.width, cv.height);
    var L = A.L, rect;
    if (A.hot && A.hot.kind === "in") rect = L.in_rf ? rfRect(L.in_rf, A.hot.y + L.y0, A.hot.x + L.x0) : rfRect(null, A.hot.y + L.y0, A.hot.x + L.x0);
    else rect = rfRect(L.rf, cur.y, cur.x);
    var f = cv.width / im.W;  // image pixels -> canvas pixels
    var r0 = Math.max(0, rect.r0), c0 = Math.max(0, rect.c0), r1 = Math.min(im.H - 1, rect.r1), c1 = Math.min(im.W - 1, rect.c1);
    ctx.strokeStyle = "#00e0ff"; ctx.lineWidth = 2;
    ctx.strokeRect(c0 * f + 1, r0 * f + 1, Math.max(2, (c1 - c0 + 1) * f - 2), Math.max(2, (r1 - r0 + 1) * f - 2));
    A.rect = rect;
  }
  function hoverAt(e, kind) {
    var L = A.L, cv = kind === "out" ? A.cout : A.cin, s = kind === "out" ? A.os : A.cs, r = cv.getBoundingClientRect();
    var x = Math.floor((e.clientX - r.left) / r.width * cv.width / s), y = Math.floor((e.clientY - r.top) / r.height * cv.height / s);
    hover(kind, y, x);
  }
  function hover(kind, y, x) {
    var L = A.L;
    if (kind === "out" && (y < 0 || x < 0 || y >= L.oh || x >= L.ow)) return;
    if (kind === "in" && (y < 0 || x < 0 || y >= L.ih || x >= L.iw)) return;
    A.hot = { kind: kind, y: y, x: x };
    draw();
    var prev = L.input_from || tr("theInput"), rect = A.rect, rf = (rect.r1 - rect.r0 + 1) + "x" + (rect.c1 - rect.c0 + 1);
    var clipped = rect.r0 < 0 || rect.c0 < 0 || rect.r1 >= S.image.H || rect.c1 >= S.image.W ? tr("clipped") : "";
    if (kind === "out") {
      var w = windowAt(y, x);
      A.hover.textContent = tr("hoverOut", { y: y, x: x, r0: w.r + L.y0, r1: w.r + L.y0 + w.h - 1, c0: w.c + L.x0, c1: w.c + L.x0 + w.w - 1, prev: prev, rf: rf + clipped });
    } else A.hover.textContent = tr("hoverIn", { y: y + L.y0, x: x + L.x0, prev: prev, rf: rf + clipped });
    A.p.setAttribute("data-hover-rf", [rect.r0, rect.c0, rect.r1, rect.c1].join(","));
  }

  // ---- (b) on any layer: a unit's window in the previous layer and its field in the image --
  var U = null;
  function buildUnits(p) {
    p.appendChild(textOf(function () { return tr("unitsHint"); }, "p", "hint"));
    var row = el("div", "slide-row"), cout = el("canvas", "units-out"), cprev = el("canvas", "units-prev"), cimg = el("canvas", "units-img");
    var capOut = textOf(function () { return U && U.name ? tr("thisMap", { name: U.name }) : ""; }, "figcaption");
    var capPrev = textOf(function () { return U && U.u ? (U.u.from ? tr("prevMap", { name: U.u.from }) : tr("image")) : ""; }, "figcaption");
    [[cout, capOut], [cprev, capPrev], [cimg, label("image", "figcaption")]].forEach(function (f) { var g = el("figure", "slide-fig"); g.appendChild(f[0]); g.appendChild(f[1]); row.appendChild(g); });
    var msg = el("p", "units-msg"), text = el("p", "slide-hover units-text");
    p.appendChild(msg); p.appendChild(row); p.appendChild(text);
    U = { p: p, cout: cout, cprev: cprev, cimg: cimg, msg: msg, text: text, row: row };
    cout.addEventListener("mousemove", function (e) {
      if (!U.u) return;
      var r = cout.getBoundingClientRect();
      unitsHover(Math.floor((e.clientY - r.top) / r.height * U.u.h), Math.floor((e.clientX - r.left) / r.width * U.u.w));
    });
    relabel.push(function () { if (U.name) unitsShow(U.name); });
  }
  function paintMap(cv, m, px) {  // channel 0 of a map {channels,height,width,data,range}
    var s = Math.max(1, Math.floor(px / Math.max(m.width, m.height)));
    cv.width = m.width * s; cv.height = m.height * s;
    var ctx = cv.getContext("2d"), n = m.height * m.width, lo = Infinity, hi = -Infinity, i, j;
    for (i = 0; i < n; i++) { lo = Math.min(lo, m.data[i]); hi = Math.max(hi, m.data[i]); }  // this channel's own range
    if (!(hi > lo)) { lo = m.range[0]; hi = m.range[1]; }
    for (i = 0; i < m.height; i++) for (j = 0; j < m.width; j++) { ctx.fillStyle = colour(m.data[i * m.width + j], lo, hi); ctx.fillRect(j * s, i * s, s, s); }
  }
  function unitsShow(name) {
    if (!U) return;
    var u = S.units && S.units[name];
    U.name = name; U.u = null; U.hot = null;
    U.text.textContent = "";
    var get = function (n) { var r = page.getMap ? page.getMap(n) : null; return Promise.resolve(r); };
    if (!u) { U.msg.textContent = tr("unitsNone", { name: name }); U.row.hidden = true; return; }
    Promise.all([get(name), get(u.from || "(input)")]).then(function (r) {
      if (U.name !== name) return;
      if (!r[0]) { U.msg.textContent = tr("unitsNone", { name: name }); U.row.hidden = true; return; }
      U.u = u; U.m = r[0]; U.pm = r[1]; U.msg.textContent = ""; U.row.hidden = false;
      U.p.setAttribute("data-units-layer", name);
      relabelUnits();
    });
  }
  function relabelUnits() {
    U.row.querySelectorAll("figcaption").forEach(function (f, i) { if (i === 0) f.textContent = tr("thisMap", { name: U.name }); if (i === 1) f.textContent = U.u.from ? tr("prevMap", { name: U.u.from }) : tr("image"); });
    drawUnits();
  }
  function drawUnits() {
    paintMap(U.cout, U.m, 220);
    var prevH = U.u.from ? S.units[U.u.from].h : S.image.H, prevW = U.u.from ? S.units[U.u.from].w : S.image.W;
    if (U.pm) paintMap(U.cprev, U.pm, 220); else { U.cprev.width = 1; U.cprev.height = 1; }
    var im = S.image, sc = Math.max(1, Math.floor(220 / Math.max(im.w, im.h)));
    U.cimg.width = im.w * sc; U.cimg.height = im.h * sc;
    var ictx = U.cimg.getContext("2d");
    ictx.imageSmoothingEnabled = false;
    ictx.drawImage(imageCanvas(), 0, 0, U.cimg.width, U.cimg.height);
    if (!U.hot) return;
    var y = U.hot.y, x = U.hot.x, oc = U.cout.getContext("2d"), fy = U.cout.height / U.u.h, fx = U.cout.width / U.u.w;
    oc.strokeStyle = "#00e0ff"; oc.lineWidth = 2; oc.strokeRect(x * fx + 1, y * fy + 1, Math.max(2, fx - 2), Math.max(2, fy - 2));
    var rect = rfRect(U.u.rf, y, x), w = U.hot.win;
    if (U.pm) {
      var pc = U.cprev.getContext("2d"), py = U.cprev.height / prevH, px = U.cprev.width / prevW;
      pc.strokeStyle = "#00e0ff"; pc.lineWidth = 2;
      pc.strokeRect(w.c0 * px + 1, w.r0 * py + 1, Math.max(2, (w.c1 - w.c0 + 1) * px - 2), Math.max(2, (w.r1 - w.r0 + 1) * py - 2));
    }
    var f = U.cimg.width / im.W, r0 = Math.max(0, rect.r0), c0 = Math.max(0, rect.c0), r1 = Math.min(im.H - 1, rect.r1), c1 = Math.min(im.W - 1, rect.c1);
    ictx.strokeStyle = "#00e0ff"; ictx.lineWidth = 2;
    ictx.strokeRect(c0 * f + 1, r0 * f + 1, Math.max(2, (c1 - c0 + 1) * f - 2), Math.max(2, (r1 - r0 + 1) * f - 2));
  }
  function unitsHover(y, x) {
    var u = U.u;
    if (!u || y < 0 || x < 0 || y >= u.h || x >= u.w) return;
    // the previous layer's units whose fields lie inside this unit's field: its window
    var rect = rfRect(u.rf, y, x), prf = u.from ? S.units[u.from].rf : null;
    var prevH = u.from ? S.units[u.from].h : S.image.H, prevW = u.from ? S.units[u.from].w : S.image.W;
    function span(lo, hi, k) {
      if (!prf) return [lo, hi];
      var half = (prf.size[k] - 1) / 2;
      return [Math.ceil((lo + half - prf.start[k]) / prf.jump[k] - 1e-9), Math.floor((hi - half - prf.start[k]) / prf.jump[k] + 1e-9)];
    }
    var rs = span(rect.r0, rect.r1, 0), cs = span(rect.c0, rect.c1, 1);
    var win = { r0: Math.max(0, rs[0]), r1: Math.min(prevH - 1, rs[1]), c0: Math.max(0, cs[0]), c1: Math.min(prevW - 1, cs[1]) };
    var clippedWin = win.r0 !== rs[0] || win.r1 !== rs[1] || win.c0 !== cs[0] || win.c1 !== cs[1];
    U.hot = { y: y, x: x, win: win };
    drawUnits();
    var clipped = rect.r0 < 0 || rect.c0 < 0 || rect.r1 >= S.image.H || rect.c1 >= S.image.W ? tr("clipped") : "";
    U.text.textContent = tr("hoverOut", { y: y, x: x, r0: win.r0, r1: win.r1 + (clippedWin ? tr("clipped") : ""), c0: win.c0, c1: win.c1, prev: u.from || tr("theInput"), rf: (rect.r1 - rect.r0 + 1) + "x" + (rect.c1 - rect.c0 + 1) + clipped });
    U.p.setAttribute("data-units-window", [win.r0, win.c0, win.r1, win.c1].join(","));
    U.p.setAttribute("data-units-rf", [rect.r0, rect.c0, rect.r1, rect.c1].join(","));
  }

  // ---- (d) the whole forward pass in the page ----------------------------------------------
  var W = null;
  function T3(c, h, w, d) { return { c: c, h: h, w: w, d: d || new Float64Array(c * h * w) }; }
  function act(fn, v, op) {
    switch (fn) {
      case "relu": return v > 0 ? v : 0;
      case "relu6": return Math.min(6, Math.max(0, v));
      case "sigmoid": return 1 / (1 + Math.exp(-v));
      case "tanh": return Math.tanh(v);
      case "silu": return v / (1 + Math.exp(-v));
      case "hardswish": return v * Math.min(6, Math.max(0, v + 3)) / 6;
      case "hardsigmoid": return Math.min(6, Math.max(0, v + 3)) / 6;
      case "leaky_relu": return v >= 0 ? v : v * op.slope;
      case "elu": return v > 0 ? v : op.alpha * (Math.exp(v) - 1);
    }
    throw new Error("activation " + fn);
  }
  function wt(o, key) { var r = o[key]; return W.subarray(r[0], r[0] + r[1]); }
  function conv(x, o) {
    var co = o.wshape[0], cig = o.wshape[1], kh = o.k[0], kw = o.k[1], sh = o.stride[0], sw = o.stride[1], ph = o.pad[0], pw = o.pad[1], dh = o.dil[0], dw = o.dil[1];
    var ho = Math.floor((x.h + 2 * ph - dh * (kh - 1) - 1) / sh) + 1, wo = Math.floor((x.w + 2 * pw - dw * (kw - 1) - 1) / sw) + 1;
    var y = T3(co, ho, wo), w = wt(o, "w"), b = o.b ? wt(o, "b") : null, per = co / o.groups;
    for (var c = 0; c < co; c++) {
      var g0 = Math.floor(c / per) * cig;
      for (var i = 0; i < ho; i++) for (var j = 0; j < wo; j++) {
        var s = b ? b[c] : 0;
        for (var ci = 0; ci < cig; ci++) {
          var xb = (g0 + ci) * x.h * x.w, wb = (c * cig + ci) * kh * kw;
          for (var a = 0; a < kh; a++) {
            var r = i * sh - ph + a * dh;
            if (r < 0 || r >= x.h) continue;
            for (var e = 0; e < kw; e++) {
              var q = j * sw - pw + e * dw;
              if (q < 0 || q >= x.w) continue;
              s += w[wb + a * kw + e] * x.d[xb + r * x.w + q];
            }
          }
        }
        y.d[(c * ho + i) * wo + j] = s;
      }
    }
    return y;
  }
  function pool(x, o) {
    var kh = o.k[0], kw = o.k[1], sh = o.stride[0], sw = o.stride[1], ph = o.pad[0], pw = o.pad[1], dh = o.dil[0], dw = o.dil[1];
    function size(n, k, s, p, d) {
      var o2 = (n + 2 * p - d * (k - 1) - 1) / s + 1, out = o.ceil ? Math.ceil(o2) : Math.floor(o2);
      if (o.ceil && (out - 1) * s >= n + p) out--;
      return out;
    }
    var ho = size(x.h, kh, sh, ph, dh), wo = size(x.w, kw, sw, pw, dw), y = T3(x.c, ho, wo);
    for (var c = 0; c < x.c; c++) for (var i = 0; i < ho; i++) for (var j = 0; j < wo; j++) {
      var best = -Infinity, s = 0, cnt = 0, h0 = i * sh - ph, w0 = j * sw - pw;
      for (var a = 0; a < kh; a++) for (var e = 0; e < kw; e++) {
        var r = h0 + a * dh, q = w0 + e * dw;
        if (r < 0 || r >= x.h || q < 0 || q >= x.w) continue;
        var v = x.d[(c * x.h + r) * x.w + q];
        if (v > best) best = v;
        s += v; cnt++;
      }
      var div = cnt;
      if (o.op === "avg" && o.include_pad) div = (Math.min(h0 + kh, x.h + ph) - h0) * (Math.min(w0 + kw, x.w + pw) - w0);
      y.d[(c * ho + i) * wo + j] = o.op === "max" ? best : s / div;
    }
    return y;
  }
  function adaptive(x, o) {
    var oh = o.out[0], ow = o.out[1], y = T3(x.c, oh, ow);
    for (var c = 0; c < x.c; c++) for (var i = 0; i < oh; i++) for (var j = 0; j < ow; j++) {
      var r0 = Math.floor(i * x.h / oh), r1 = Math.ceil((i + 1) * x.h / oh), c0 = Math.floor(j * x.w / ow), c1 = Math.ceil((j + 1) * x.w / ow), s = 0;
      for (var r = r0; r < r1; r++) for (var q = c0; q < c1; q++) s += x.d[(c * x.h + r) * x.w + q];
      y.d[(c * oh + i) * ow + j] = s / ((r1 - r0) * (c1 - c0));
    }
    return y;
  }
  function forward(xin) {
    var sm = S.small, inp = sm.input, vals = {}, last = null;
    vals[-1] = T3(inp[0], inp[1], inp[2], Float64Array.from(xin));
    sm.ops.forEach(function (o) {
      var x = vals[o.inputs[0]], y;
      switch (o.op) {
        case "conv": y = conv(x, o); break;
        case "affine": {
          var sc = wt(o, "scale"), sh = wt(o, "shift"), hw = x.h * x.w;
          y = T3(x.c, x.h, x.w);
          for (var i = 0; i < x.d.length; i++) { var c = Math.floor(i / hw); y.d[i] = x.d[i] * sc[c] + sh[c]; }
          break;
        }
        case "linear": {
          var w = wt(o, "w"), b = o.b ? wt(o, "b") : null, no = o.wshape[0], ni = o.wshape[1];
          if (x.d.length !== ni) throw new Error(o.name + ": " + x.d.length + " inputs for " + ni);
          y = T3(no, 1, 1);
          for (var k = 0; k < no; k++) { var s = b ? b[k] : 0; for (var m = 0; m < ni; m++) s += w[k * ni + m] * x.d[m]; y.d[k] = s; }
          break;
        }
        case "max": case "avg": y = pool(x, o); break;
        case "adaptive_avg": y = adaptive(x, o); break;
        case "pass": y = x; break;
        case "zeropad": {
          var st = o.stride, h2 = Math.ceil(x.h / st), w2 = Math.ceil(x.w / st);
          y = T3(o.cout, h2, w2);
          for (var c2 = 0; c2 < x.c; c2++) for (var r = 0; r < h2; r++) for (var q = 0; q < w2; q++) y.d[(c2 * h2 + r) * w2 + q] = x.d[(c2 * x.h + r * st) * x.w + q * st];
          break;
        }
        case "add": {
          var x2 = vals[o.inputs[1]];
          y = T3(x.c, x.h, x.w);
          for (var a = 0; a < x.d.length; a++) y.d[a] = x.d[a] + x2.d[a];
          break;
        }
        case "cat": {
          var parts = o.inputs.map(function (id) { return vals[id]; }), ctot = 0;
          parts.forEach(function (t) { ctot += t.c; });
          y = T3(ctot, x.h, x.w);
          var off = 0;
          parts.forEach(function (t) { y.d.set(t.d, off); off += t.d.length; });
          break;
        }
        default: {
          y = T3(x.c, x.h, x.w);
          for (var z = 0; z < x.d.length; z++) y.d[z] = act(o.op, x.d[z], o);
        }
      }
      vals[o.id] = y; last = y;
    });
    return (vals[sm.output] || last).d;
  }
  function softmax(z) {
    var m = -Infinity, s = 0, p = new Float64Array(z.length), i;
    for (i = 0; i < z.length; i++) m = Math.max(m, z[i]);
    for (i = 0; i < z.length; i++) { p[i] = Math.exp(z[i] - m); s += p[i]; }
    for (i = 0; i < z.length; i++) p[i] /= s;
    return p;
  }
  function selfCheck() {
    var sm = S.small, z = forward(f32(sm.x)), ref = f32(sm.logits), d = 0, big = 1;
    for (var i = 0; i < ref.length; i++) { d = Math.max(d, Math.abs(z[i] - ref[i])); big = Math.max(big, Math.abs(ref[i])); }
    var ok = z.length === ref.length && d <= 1e-4 * big;
    document.body.setAttribute("data-teach-check", d.toExponential(2));
    document.body.setAttribute("data-teach-check-ok", ok ? "1" : "0");
    if (!ok) console.error("cnnlab teach: the page's forward pass differs from PyTorch's logits by " + d);
    return { d: d, n: ref.length, ok: ok };
  }
  var D = null;  // the draw pane's state
  function buildDraw(p) {
    var sm = S.small;
    if (!sm.ok) { p.appendChild(textOf(function () { return tr("notSmall", { why: sm.why }); }, "p", "hint")); return; }
    W = f32(sm.weights);
    var c = sm.input[0], h = sm.input[1], w = sm.input[2];
    p.appendChild(textOf(function () { return tr("drawHint"); }, "p", "hint"));
    var row = el("div", "draw-row");
    var pad = el("canvas", "draw-pad"), small = el("canvas", "draw-input");
    var side = 8 * Math.max(h, w) > 320 ? 8 * Math.max(h, w) : 280;
    pad.width = Math.round(side * w / Math.max(h, w)); pad.height = Math.round(side * h / Math.max(h, w));
    small.width = w; small.height = h;
    var f1 = el("figure"); f1.appendChild(pad); f1.appendChild(label("input", "figcaption"));
    var f2 = el("figure"); f2.appendChild(small); f2.appendChild(label("sees", "figcaption"));
    small.style.width = (w * Math.max(3, Math.floor(112 / w))) + "px";
    var out = el("div", "draw-out");
    row.appendChild(f1); row.appendChild(f2); row.appendChild(out);
    var btns = el("div", "draw-buttons");
    btns.appendChild(button("clear", function () { clearPad(); predict(); }));
    btns.appendChild(button("useDefault", function () { defaultImage(); }));
    p.appendChild(btns);
    p.appendChild(row);
    var check = el("p", "draw-check");
    p.appendChild(check);
    D = { p: p, pad: pad, small: small, out: out, c: c, h: h, w: w, drawing: false, last: null };
    var r = selfCheck();
    relabel.push(function () { check.textContent = tr("selfcheck", { d: r.d.toExponential(2), n: r.n }); check.className = "draw-check " + (r.ok ? "ok" : "bad"); if (D.result) showResult(); });
    var ctx = pad.getContext("2d");
    ctx.lineCap = "round"; ctx.lineJoin = "round";
    function pos(e) { var b = pad.getBoundingClientRect(); return [(e.clientX - b.left) * pad.width / b.width, (e.clientY - b.top) * pad.height / b.height]; }
    function start(e, at) { D.drawing = true; D.last = pos(at || e); stroke(D.last); e.preventDefault(); }
    function move(e, at) { if (!D.drawing) return; stroke(pos(at || e)); e.preventDefault(); }
    function end() { if (D.drawing) { D.drawing = false; predict(); } }
    function stroke(q) {
      ctx.strokeStyle = "#fff"; ctx.lineWidth = pad.width / 11;
      ctx.beginPath(); ctx.moveTo(D.last[0], D.last[1]); ctx.lineTo(q[0] + 0.01, q[1]); ctx.stroke();
      D.last = q;
    }
    pad.addEventListener("mousedown", start); pad.addEventListener("mousemove", move);
    window.addEventListener("mouseup", end); pad.addEventListener("mouseleave", end);
    pad.addEventListener("touchstart", function (e) { start(e, e.touches[0]); }, { passive: false });
    pad.addEventListener("touchmove", function (e) { move(e, e.touches[0]); }, { passive: false });
    pad.addEventListener("touchend", end);
    p.addEventListener("dragover", function (e) { e.preventDefault(); p.classList.add("drop"); });
    p.addEventListener("dragleave", function () { p.classList.remove("drop"); });
    p.addEventListener("drop", function (e) {
      e.preventDefault(); p.classList.remove("drop");
      var file = e.dataTransfer && e.dataTransfer.files[0];
      if (file) loadFile(file);
    });
    defaultImage();
  }
  function clearPad() { var ctx = D.pad.getContext("2d"); ctx.fillStyle = "#000"; ctx.fillRect(0, 0, D.pad.width, D.pad.height); }
  function loadFile(file) {
    var url = URL.createObjectURL(file), img = new Image();
    img.onload = function () {
      clearPad();
      var ctx = D.pad.getContext("2d"), s = Math.min(D.pad.width / img.width, D.pad.height / img.height);
      ctx.drawImage(img, (D.pad.width - img.width * s) / 2, (D.pad.height - img.height * s) / 2, img.width * s, img.height * s);
      URL.revokeObjectURL(url); predict();
    };
    img.onerror = function () { D.out.textContent = tr("dropBad"); };
    img.src = url;
  }
  function defaultImage() {  // the page's default input, back through the normalisation
    var sm = S.small, x = f32(sm.x), n = D.h * D.w, ctx = D.pad.getContext("2d");
    var off = document.createElement("canvas"); off.width = D.w; off.height = D.h;
    var oc = off.getContext("2d"), d = oc.createImageData(D.w, D.h);
    for (var i = 0; i < n; i++) {
      for (var c = 0; c < 3; c++) { var ch = D.c === 1 ? 0 : c; d.data[4 * i + c] = Math.round(Math.max(0, Math.min(1, (x[ch * n + i] - sm.affine.b[ch]) / sm.affine.a[ch])) * 255); }
      d.data[4 * i + 3] = 255;
    }
    oc.putImageData(d, 0, 0);
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(off, 0, 0, D.pad.width, D.pad.height);
    predict(x);
  }
  function predict(exact) {  // exact: the page's own input (the default image), not re-read

    var sctx = D.small.getContext("2d");
    sctx.imageSmoothingEnabled = true; sctx.imageSmoothingQuality = "high";
    sctx.drawImage(D.pad, 0, 0, D.w, D.h);
    var px = sctx.getImageData(0, 0, D.w, D.h).data, n = D.h * D.w, sm = S.small, x = new Float64Array(D.c * n);
    for (var c = 0; c < D.c; c++) for (var i = 0; i < n; i++) {
      var v = D.c === 1 ? (0.299 * px[4 * i] + 0.587 * px[4 * i + 1] + 0.114 * px[4 * i + 2]) / 255 : px[4 * i + c] / 255;
      x[c * n + i] = sm.affine.a[c] * v + sm.affine.b[c];
    }
    var z = forward(exact || x), p = softmax(z);
    D.result = { z: z, p: p };
    D.p.setAttribute("data-input-png", D.small.toDataURL("image/png"));
    D.p.setAttribute("data-logits", JSON.stringify(Array.from(z, function (v) { return +v.toPrecision(8); })));
    showResult();
  }
  function classes() { var d = page.data || {}; return d.classes || []; }
  function showResult() {
    var p = D.result.p, order = Array.from(p.keys()).sort(function (a, b) { return p[b] - p[a]; }), names = classes();
    D.out.innerHTML = "";
    var best = order[0];
    D.p.setAttribute("data-pred", String(best));
    var h = el("div", "draw-pred", tr("prediction") + ": " + (names[best] || best) + " (" + (100 * p[best]).toFixed(1) + " %)");
    D.out.appendChild(h);
    order.slice(0, Math.min(5, p.length)).forEach(function (k) {
      var r = el("div", "draw-bar"), b = el("span", "bar");
      b.style.width = Math.max(1, Math.round(160 * p[k])) + "px";
      r.appendChild(el("span", "cls", String(names[k] || k))); r.appendChild(b); r.appendChild(el("span", "pct", (100 * p[k]).toFixed(1) + " %"));
      D.out.appendChild(r);
    });
  }

  // ---- (e) the stride / padding playground ---------------------------------------------------
  function outSize(n, k, s, p, d) { return Math.floor((n + 2 * p - d * (k - 1) - 1) / s) + 1; }
  function buildPlayground(p) {
    var L = null;
    S.layers.forEach(function (l) { if (!L && l.kind === "conv") L = l; });
    if (!L) { p.appendChild(textOf(function () { return tr("noLayers"); }, "p", "hint")); return; }
    p.appendChild(textOf(function () { return tr("pgIntro"); }, "p", "hint"));
    var form = el("div", "pg-form"), inputs = {};
    var init = { H: L.H, k: L.k[0], s: L.stride[0], p: L.pad[0], d: L.dil[0] };
    var spec = [["H", "pgSize", 1, Math.max(64, L.H)], ["k", "pgK", 1, 11], ["s", "pgS", 1, 5], ["p", "pgP", 0, 6], ["d", "pgD", 1, 4]];
    spec.forEach(function (f) {
      var lab = el("label", "pg-field"), inp = el("input");
      inp.type = "range"; inp.min = String(f[2]); inp.max = String(f[3]); inp.value = String(init[f[0]]);
      inp.setAttribute("data-pg", f[0]);
      var val = el("span", "pg-val", inp.value);
      inp.addEventListener("input", function () { val.textContent = inp.value; update(); });
      lab.appendChild(label(f[1])); lab.appendChild(inp); lab.appendChild(val);
      form.appendChild(lab); inputs[f[0]] = { inp: inp, val: val };
    });
    p.appendChild(form);
    p.appendChild(button("pgBack", function () { Object.keys(init).forEach(function (k) { inputs[k].inp.value = String(init[k]); inputs[k].val.textContent = String(init[k]); }); update(); }));
    var formula = el("p", "pg-formula formula"), filled = el("p", "pg-filled formula"), warn = el("p", "pg-warn"), real = el("p", "pg-real");
    var cv = el("canvas", "pg-grid");
    p.appendChild(el("p", "formula", "H_out = \u230a(H + 2p \u2212 d\u00b7(k \u2212 1) \u2212 1) / s\u230b + 1"));
    p.appendChild(filled); p.appendChild(warn); p.appendChild(cv); p.appendChild(textOf(function () { return tr("pgLegend"); }, "p", "hint")); p.appendChild(real);
    function update() {
      var v = {}; Object.keys(inputs).forEach(function (k) { v[k] = +inputs[k].inp.value; });
      var num = v.H + 2 * v.p - v.d * (v.k - 1) - 1, o = Math.floor(num / v.s) + 1, ext = v.d * (v.k - 1) + 1;
      filled.textContent = "H_out = \u230a(" + v.H + " + 2\u00b7" + v.p + " \u2212 " + v.d + "\u00b7(" + v.k + " \u2212 1) \u2212 1) / " + v.s + "\u230b + 1 = \u230a" + num + " / " + v.s + "\u230b + 1 = " + (o >= 1 ? o : "\u2205");
      p.setAttribute("data-pg-out", String(o >= 1 ? o : 0));
      var left = o >= 1 ? (v.H + 2 * v.p) - ((o - 1) * v.s + ext) : 0;
      warn.textContent = o < 1 ? tr("pgEmpty", { e: ext, hp: v.H + 2 * v.p }) : left > 0 ? tr("pgLeft", { n: left }) : "";
      real.textContent = tr("pgReal", { name: L.name, k: L.k[0], s: L.stride[0], p: L.pad[0], d: L.dil[0], o: outSize(L.H, L.k[0], L.stride[0], L.pad[0], L.dil[0]), t: L.Ho });
      // the padded input (rows) with the first and last window
      var hp = v.H + 2 * v.p, cs = Math.max(3, Math.min(16, Math.floor(320 / hp)));
      cv.width = hp * cs; cv.height = hp * cs;
      var ctx = cv.getContext("2d");
      for (var i = 0; i < hp; i++) for (var j = 0; j < hp; j++) {
        var pad = i < v.p || j < v.p || i >= v.p + v.H || j >= v.p + v.H;
        ctx.fillStyle = pad ? "#d0d0d0" : "#fff"; ctx.fillRect(j * cs, i * cs, cs, cs);
        ctx.strokeStyle = "#e4e4e4"; ctx.strokeRect(j * cs + 0.5, i * cs + 0.5, cs - 1, cs - 1);
      }
      function taps(y0, x0, col) {
        ctx.fillStyle = col;
        for (var a = 0; a < v.k; a++) for (var b = 0; b < v.k; b++) {
          var r = y0 + a * v.d, c = x0 + b * v.d;
          if (r < hp && c < hp) ctx.fillRect(c * cs + 1, r * cs + 1, cs - 2, cs - 2);
        }
      }
      if (o >= 1) { taps(0, 0, "rgba(31,111,235,0.55)"); taps((o - 1) * v.s, (o - 1) * v.s, "rgba(255,140,0,0.55)"); }
    }
    relabel.push(update);
  }

  // ---- the panel ----------------------------------------------------------------------------
  function init(pg) {
    page = pg;
    S = pg && pg.data && pg.data.teach;
    if (!S) return;
    lang = initialLang();
    root = el("section", "teach");
    root.id = "teach";
    var bar = el("div", "teach-bar");
    bar.appendChild(label("learn", "b", "teach-title"));
    var tabs = el("div", "teach-tabs"), panes = el("div", "teach-panes");
    var list = [["explain", buildExplain], ["slide", buildSlide], ["units", buildUnits], ["draw", buildDraw], ["playground", buildPlayground]];
    list.forEach(function (t, i) {
      var b = button(t[0], function () { show(t[0]); }, "tab");
      b.setAttribute("data-tab", t[0]);
      tabs.appendChild(b);
      var p = el("div", "teach-pane pane-" + t[0]);
      p.setAttribute("data-pane", t[0]);
      panes.appendChild(p);
      t.push(p);
      if (i > 0) p.hidden = true;
    });
    function show(name) {
      panes.querySelectorAll(".teach-pane").forEach(function (p) { p.hidden = p.getAttribute("data-pane") !== name; });
      tabs.querySelectorAll(".tab").forEach(function (b) { b.classList.toggle("on", b.getAttribute("data-tab") === name); });
      root.setAttribute("data-tab", name);
      if (name === "slide" && A && A.L && !A.started) { A.started = true; play(true); }  // it moves on its own, once
    }
    bar.appendChild(tabs);
    var langs = el("div", "teach-langs");
    langs.appendChild(label("language", "span", "label"));
    LANGS.forEach(function (l) {
      var b = el("button", "lang", l.toUpperCase());
      b.type = "button"; b.title = (I18N[l] || {}).name || l;
      b.setAttribute("data-lang-btn", l);
      b.addEventListener("click", function () { setLang(l); });
      langs.appendChild(b);
    });
    bar.appendChild(langs);
    root.appendChild(bar);
    root.appendChild(panes);
    var header = document.getElementById("top");
    if (header && header.parentNode) header.parentNode.insertBefore(root, header.nextSibling);
    else document.body.insertBefore(root, document.body.firstChild);
    list.forEach(function (t) { t[1](t[2]); });
    show("explain");
    setLang(lang);
    if (pg.onSelect) pg.onSelect(function (name) {
      selectedName = name;
      var k = topicOf(name);
      if (k) { selectedTopic = k; drawExplain(); }
      if (A && A.L && layerOf(name)) startLayer(name);
      unitsShow(name);
    });
    var sel = document.querySelector(".selected[data-layer]");
    if (sel) { selectedName = sel.getAttribute("data-layer"); selectedTopic = topicOf(selectedName) || selectedTopic; drawExplain(); unitsShow(selectedName); }
    var m = /(?:^|[#&])teach=(\w+)/.exec(location.hash);
    if (m) show(m[1]);
    window.cnnlabTeach.ready = true;
  }
  window.cnnlabTeach = { init: init, setLang: setLang, forward: function (x) { return forward(x); }, hover: function (k, y, x) { hover(k, y, x); }, unitsHover: function (y, x) { unitsHover(y, x); }, startLayer: function (n) { startLayer(n); } };
})();
