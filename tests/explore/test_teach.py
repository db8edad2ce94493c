"""The explorer's teaching views (``teach.py`` / ``teach.js``): their data against independent
PyTorch arithmetic, and the page driven in headless Chromium by script events (a digit drawn
on the canvas, the language switch, the kernel animation, a hovered unit, the playground).

Each browser test writes a copy of the page with a short script appended after the page's
own, which acts as a student would (clicks, mouse strokes, slider moves); the page then
writes what it computed into ``data-*`` attributes that the test reads from the dumped DOM.
"""

from __future__ import annotations

import base64
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import cnnlab
from cnnlab.explore import explore_data, render_html, write_page
from cnnlab.explore.teach import SMALL_PARAMS, teach_data
from cnnlab.graph import trace_graph
from tests.helpers import REPO
from tests.helpers.browser import browse, need_chromium, page_data

ARTIFACTS = REPO / "artifacts" / "explore"


def f32(s: str) -> np.ndarray:
    return np.frombuffer(base64.b64decode(s), dtype="<f4")


def tiny() -> nn.Module:
    """Stride, padding and dilation everywhere, max and average pooling with padding."""
    torch.manual_seed(1)
    return nn.Sequential(nn.Conv2d(1, 3, 3, stride=2, padding=2, dilation=2), nn.ReLU(),
                         nn.MaxPool2d(3, 2, 1),
                         nn.AvgPool2d(3, 1, 1, count_include_pad=False),
                         nn.Flatten(), nn.Linear(3 * 4 * 4, 5)).eval()


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("teach")
    path = tmp / "lenet5.html"
    write_page("lenet5", path)
    model = tiny()
    x = torch.randn(1, 1, 15, 15)
    tpath = tmp / "tiny.html"
    tpath.write_text(render_html(explore_data(model, x, model_name="tiny")), encoding="utf-8")
    return {"lenet5": path, "tiny": tpath, "tiny_model": model, "tiny_x": x}


def lenet5() -> nn.Module:
    """The model of ``cnnlab explore lenet5``: LeNet-5 with the bundled digits weights."""
    return cnnlab.create_model("lenet5", weights="digits").eval()


def layer_inputs(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    got: dict[str, torch.Tensor] = {}

    def keep(name):
        def hook(mod, args, out):  # returns None: the output is left as it is
            got.setdefault(name, args[0].detach())
        return hook
    hooks = [m.register_forward_hook(keep(n)) for n, m in model.named_modules() if n]
    with torch.no_grad():
        model(x)
    for h in hooks:
        h.remove()
    return got


def expected_crop(model, x, rec) -> np.ndarray:
    """The animated region's output, from the module's real input (independent of teach.py)."""
    mod = model.get_submodule(rec["module"])
    inp = layer_inputs(model, x)[rec["module"]][:, rec["ci"]:rec["ci"] + 1]
    if rec["kind"] == "conv":
        w = mod.weight[rec["co"]:rec["co"] + 1, rec["ci"] - 0:rec["ci"] + 1].detach()
        b = mod.bias[rec["co"]:rec["co"] + 1].detach() if rec["full"] else None
        out = F.conv2d(inp, w, b, mod.stride, mod.padding, mod.dilation)
    else:
        out = mod(inp)
    return out[0, 0, :rec["oh"], :rec["ow"]].numpy()


# --- the data, without a browser -----------------------------------------------------------

def test_animation_crops_are_pytorchs_outputs(pages):
    for model, x in ((lenet5(), page_data(pages["lenet5"])["teach"]), (pages["tiny_model"], None)):
        if x is None:
            x = pages["tiny_x"]
            data = teach_data(model, x, trace_graph(model, tuple(x.shape[1:])))
        else:
            data, x = x, torch.from_numpy(f32(x["small"]["x"]).reshape(1, 1, 32, 32).copy())
        kinds = [(r["module"], r["kind"], r.get("op")) for r in data["layers"]]
        assert len(kinds) >= 3
        for rec in data["layers"]:
            got = f32(rec["y"]).reshape(rec["oh"], rec["ow"])
            np.testing.assert_allclose(got, expected_crop(model, x, rec), rtol=1e-5, atol=1e-6)
            # the input region: rows y0.. / cols x0.. of the layer input, padding outside
            inp = layer_inputs(model, x)[rec["module"]][0, rec["ci"]]
            region = f32(rec["x"]).reshape(rec["ih"], rec["iw"])
            inside = np.frombuffer(base64.b64decode(rec["inside"]), np.uint8).reshape(region.shape)
            for i, j in ((0, 0), (rec["ih"] - 1, rec["iw"] - 1), (rec["ih"] // 2, 1)):
                y, xx = i + rec["y0"], j + rec["x0"]
                ok = 0 <= y < rec["H"] and 0 <= xx < rec["W"]
                assert inside[i, j] == ok
                if ok:
                    assert region[i, j] == pytest.approx(float(inp[y, xx]))
    tiny_layers = {r["module"]: r for r in data["layers"]}
    assert tiny_layers["0"]["pad"] == [2, 2] and tiny_layers["0"]["dil"] == [2, 2]
    assert tiny_layers["0"]["y0"] == -2 and not tiny_layers["0"]["cropped"]
    assert tiny_layers["3"]["include_pad"] is False


def test_small_model_rule():
    torch.manual_seed(0)
    ok = cnnlab.create_model("resnet20").eval()  # adds, BN, option-A shortcuts: computed
    g = trace_graph(ok, (3, 32, 32))
    d = teach_data(ok, torch.randn(1, 3, 32, 32), g)
    assert not d["small"]["ok"] and "269,722 parameters" in d["small"]["why"]
    d = teach_data(ok, torch.randn(1, 3, 32, 32), g, small_params=1_000_000)
    assert d["small"]["ok"] and {o["op"] for o in d["small"]["ops"]} >= {"conv", "affine",
                                                                         "add", "zeropad"}
    paper = cnnlab.create_model("lenet5_paper").eval()  # custom RBF output: not computed
    d = teach_data(paper, torch.randn(1, 1, 32, 32), trace_graph(paper, (1, 32, 32)))
    assert not d["small"]["ok"] and "ScaledTanh" in d["small"]["why"]
    big = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 50)).eval()
    assert sum(p.numel() for p in big.parameters()) > SMALL_PARAMS
    d = teach_data(big, torch.randn(1, 3, 32, 32), trace_graph(big, (3, 32, 32)))
    assert not d["small"]["ok"] and "parameters" in d["small"]["why"]


def test_normalisation_is_fitted_from_the_image():
    torch.manual_seed(0)
    model = cnnlab.create_model("lenet5").eval()
    img = torch.rand(1, 32, 32)
    x = ((img - 0.25) / 0.5)[None]
    d = teach_data(model, x, trace_graph(model, (1, 32, 32)), image=img)
    assert d["small"]["affine"]["a"][0] == pytest.approx(2.0, rel=1e-5)
    assert d["small"]["affine"]["b"][0] == pytest.approx(-0.5, rel=1e-5)


# --- in the browser ----------------------------------------------------------------------

def driven(page: Path, script: str, name: str) -> Path:
    """A copy of ``page`` with ``script`` run once the page has built itself."""
    text = page.read_text(encoding="utf-8")
    out = page.with_name(name)
    # the page builds itself asynchronously (maps inflated first): run once it is ready
    js = ("<script>(function go(){if(document.body.getAttribute('data-ready')!=='1')"
          "{setTimeout(go,10);return;}var T=document.getElementById('teach');"
          "function tab(n){T.querySelector('[data-tab=\"'+n+'\"]').click();}"
          "function pane(n){return T.querySelector('[data-pane=\"'+n+'\"]');}"
          "function mouse(el,type,fx,fy){var r=el.getBoundingClientRect();"
          "el.dispatchEvent(new MouseEvent(type,{bubbles:true,clientX:r.left+fx*r.width,"
          "clientY:r.top+fy*r.height}));}\n" + script + "\n})();</script>")
    out.write_text(text.replace("</body>", js + "</body>"), encoding="utf-8")
    return out


def body_ok(dom, console):
    assert dom.body.get("data-ready") == "1"
    assert "data-errors" not in dom.body, dom.body.get("data-error-text")
    assert console == []


class _Attrs:
    """The attributes of the first element that has ``key`` in a dumped DOM."""

    def __init__(self, html: str, key: str):
        from html.parser import HTMLParser

        found: dict = {}

        class P(HTMLParser):
            def handle_starttag(self, tag, attrs):
                a = dict(attrs)
                if key in a and not found:
                    found.update(a)
        P().feed(html)
        self.a = found


def dump(path: Path, fragment: str = "", screenshot: Path | None = None):
    dom, console = browse(path, fragment, screenshot=screenshot)
    html = "".join(dom.raw)
    return dom, console, html


@pytest.fixture(autouse=True)
def _raw_dom(monkeypatch):
    """Keep the raw dumped DOM too (attributes of any element, not only <body>)."""
    from tests.helpers import browser

    orig = browser._Dom.feed

    def feed(self, data):
        self.raw = [data]
        return orig(self, data)
    monkeypatch.setattr(browser._Dom, "feed", feed)


def test_drawn_digit_prediction_equals_pytorch(pages):
    """Strokes of a '7' dispatched as mouse events on the pad; the 32x32 pixels the page fed
    to its own forward pass are read back (a PNG of its canvas) and run through PyTorch."""
    need_chromium()
    script = ("tab('draw');var P=pane('draw'),pad=P.querySelector('canvas.draw-pad');"
              "P.querySelector('[data-t=\"clear\"]').click();"
              "var pts=[[.25,.22],[.5,.2],[.75,.22],[.65,.45],[.55,.65],[.48,.85]];"
              "mouse(pad,'mousedown',pts[0][0],pts[0][1]);"
              "for(var i=1;i<pts.length;i++){for(var k=1;k<=6;k++){var t=k/6;"
              "mouse(pad,'mousemove',pts[i-1][0]*(1-t)+pts[i][0]*t,pts[i-1][1]*(1-t)+pts[i][1]*t);}}"
              "mouse(pad,'mouseup',.48,.85);"
              # a crossbar drawn with a finger: touch events
              "function touch(type,fx,fy){var r=pad.getBoundingClientRect(),t=new Touch({"
              "identifier:1,target:pad,clientX:r.left+fx*r.width,clientY:r.top+fy*r.height});"
              "pad.dispatchEvent(new TouchEvent(type,{bubbles:true,cancelable:true,"
              "touches:type==='touchend'?[]:[t],changedTouches:[t]}));}"
              "touch('touchstart',.45,.5);for(var j=1;j<=8;j++)touch('touchmove',.45+.3*j/8,.5);"
              "touch('touchend',.75,.5);")
    path = driven(pages["lenet5"], script, "draw.html")
    dom, console, html = dump(path)
    body_ok(dom, console)
    assert dom.body["data-teach-check-ok"] == "1"  # default image: page forward == PyTorch
    assert float(dom.body["data-teach-check"]) < 1e-4
    a = _Attrs(html, "data-input-png").a
    from PIL import Image

    png = base64.b64decode(a["data-input-png"].split(",", 1)[1])
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float64)
    assert rgb.shape == (32, 32, 3)
    gray = (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]) / 255
    assert gray.max() > 0.9 and (gray > 0.5).sum() > 20  # a stroke, not an empty canvas
    assert gray[0].max() < 0.1 and gray[:, 0].max() < 0.1  # ... only where it was drawn
    assert gray[16, 17:22].min() > 0.5  # the touch stroke's crossbar, rows 15-17 of 32
    affine = page_data(pages["lenet5"])["teach"]["small"]["affine"]
    x = torch.tensor(affine["a"][0] * gray + affine["b"][0], dtype=torch.float32)[None, None]
    with torch.no_grad():
        logits = lenet5()(x)[0].numpy()
    js = np.array(json.loads(a["data-logits"]))
    np.testing.assert_allclose(js, logits, rtol=1e-4, atol=1e-5)
    assert int(a["data-pred"]) == int(logits.argmax())


def test_dropped_image_file_is_run_through_the_network(pages):
    """A PNG (a white bar on black, made by the page's own canvas) dropped on the pane as a
    file: the page letterboxes it onto the pad and predicts; PyTorch agrees."""
    need_chromium()
    script = ("tab('draw');var P=pane('draw'),c=document.createElement('canvas');"
              "c.width=40;c.height=20;var g=c.getContext('2d');g.fillStyle='#000';"
              "g.fillRect(0,0,40,20);g.fillStyle='#fff';g.fillRect(5,8,30,4);"
              "c.toBlob(function(b){var dt=new DataTransfer();"
              "dt.items.add(new File([b],'bar.png',{type:'image/png'}));"
              "P.dispatchEvent(new DragEvent('drop',{bubbles:true,cancelable:true,"
              "dataTransfer:dt}));},'image/png');")
    path = driven(pages["lenet5"], script, "drop.html")
    dom, console, html = dump(path)
    body_ok(dom, console)
    a = _Attrs(html, "data-input-png").a
    from PIL import Image

    png = base64.b64decode(a["data-input-png"].split(",", 1)[1])
    gray = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float64) / 255
    # 40x20 letterboxed into 32x32: 0.8 px per source px, the bar at rows 14.4..17.6 + 8
    assert gray[16, 6:26].min() > 0.5 and gray[:10].max() < 0.05 and gray[24:].max() < 0.05
    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.float64)
    gray = (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]) / 255
    affine = page_data(pages["lenet5"])["teach"]["small"]["affine"]
    x = torch.tensor(affine["a"][0] * gray + affine["b"][0], dtype=torch.float32)[None, None]
    with torch.no_grad():
        logits = lenet5()(x)[0].numpy()
    np.testing.assert_allclose(np.array(json.loads(a["data-logits"])), logits, rtol=1e-4,
                               atol=1e-5)


def test_language_switch_changes_the_explanations(pages):
    need_chromium()
    script = ("var out={};function grab(k){out[k]=T.querySelector('.explain.current').textContent+"
              "' | '+T.querySelector('[data-tab=\"slide\"]').textContent;}grab('first');"
              "T.querySelector('[data-lang-btn=\"es\"]').click();grab('es');"
              "T.querySelector('[data-lang-btn=\"pt\"]').click();grab('pt');"
              "T.querySelector('[data-topic=\"add\"]').click();grab('pt_add');"
              "T.querySelector('[data-lang-btn=\"en\"]').click();grab('en_add');"
              "var s=null;try{s=localStorage.getItem('cnnlab-lang');}catch(e){}out.stored=s;"
              "T.setAttribute('data-test',JSON.stringify(out));")
    path = driven(pages["lenet5"], script, "lang.html")
    dom, console, html = dump(path)
    body_ok(dom, console)
    out = json.loads(_Attrs(html, "data-test").a["data-test"])
    # the selected layer (the first convolution) is explained first, in English
    assert out["first"].startswith("This layer (features.c1): Convolution")
    assert "cross-correlation" in out["first"] and "Slide the kernel" in out["first"]
    assert "Esta capa (features.c1): Convolución" in out["es"]
    assert "correlación cruzada" in out["es"] and "Deslizar el filtro" in out["es"]
    assert "Esta camada (features.c1): Convolução" in out["pt"]
    assert "correlação cruzada" in out["pt"] and "Deslizar o filtro" in out["pt"]
    assert "Conexão residual" in out["pt_add"] and "skip connection" in out["pt_add"]
    assert "Residual connection" in out["en_add"]
    assert out["stored"] == "en"
    dom, _, html = dump(pages["lenet5"], "lang=es")  # a language chosen in the link
    assert dom.body["data-lang"] == "es" and "correlación cruzada" in " ".join(dom.texts)


@pytest.mark.parametrize("key,played,ended", [
    ("lenet5", "features.c1", ["features.s2", "features.c3"]), ("tiny", "0", ["2", "3"])])
def test_animation_reaches_the_last_output_with_the_right_values(pages, key, played, ended):
    """``played`` runs on its timer (fast speed) to the end; the ``ended`` layers jump there
    with "To the end". Every value the page computed while the kernel slid equals PyTorch's
    output at that position, computed here from the module's own input."""
    need_chromium()
    script = ("var P=pane('slide'),sel=P.querySelector('select.slide-layer'),out={};"
              "function pick(n){sel.value=n;sel.dispatchEvent(new Event('change'));}"
              f"{json.dumps(ended)}.forEach(function(n){{pick(n);"
              "P.querySelector('[data-t=\"end\"]').click();"
              "out[n]=[P.getAttribute('data-anim-pos'),P.getAttribute('data-anim-values')];});"
              "T.setAttribute('data-test',JSON.stringify(out));"
              f"P.querySelector('select.speed').value='25';pick({json.dumps(played)});tab('slide');")
    path = driven(pages[key], script, f"anim-{key}.html")
    dom, console, html = dump(path)
    body_ok(dom, console)
    a = _Attrs(html, "data-anim-pos").a
    got = {played: [a["data-anim-pos"], a["data-anim-values"]]}
    got.update(json.loads(_Attrs(html, "data-test").a["data-test"]))
    assert a["data-anim-layer"] == played
    if key == "lenet5":
        model = lenet5()
        x = torch.from_numpy(f32(page_data(pages[key])["teach"]["small"]["x"]).copy())
        x = x.reshape(1, 1, 32, 32)
    else:
        model, x = pages["tiny_model"], pages["tiny_x"]
    recs = {r["module"]: r for r in page_data(pages[key])["teach"]["layers"]}
    for layer in [played, *ended]:
        rec = recs[layer]
        n = rec["oh"] * rec["ow"]
        assert got[layer][0] == f"{n}/{n}", layer
        want = expected_crop(model, x, rec).ravel()
        np.testing.assert_allclose(np.array(json.loads(got[layer][1])), want, rtol=1e-4,
                                   atol=1e-5, err_msg=layer)
    assert "equal PyTorch" in " ".join(dom.texts)


def test_hovered_unit_shows_its_window_and_receptive_field(pages):
    need_chromium()
    script = ("var P=pane('slide'),sel=P.querySelector('select.slide-layer');"
              "sel.value='features.c3';sel.dispatchEvent(new Event('change'));tab('slide');"
              "var c=P.querySelector('canvas.slide-out');mouse(c,'mousemove',3.5/10,2.5/10);"
              # the same unit in the view of any layer: c3's box clicked in the overview
              "document.querySelector('[data-layer=\"features.c3\"]').click();tab('units');"
              "var Q=pane('units');setTimeout(function(){"
              "mouse(Q.querySelector('canvas.units-out'),'mousemove',3.5/10,2.5/10);},50);")
    path = driven(pages["lenet5"], script, "hover.html")
    dom, console, html = dump(path)
    body_ok(dom, console)
    text = " ".join(dom.texts)
    # c3 (5x5, stride 1) unit (2, 3) sees rows 2..6, cols 3..7 of s2's output, and the
    # receptive field from the traced graph: centre start + index * jump, size 14x14
    assert "output unit (2, 3) sees rows 2..6, columns 3..7 of features.s2" in text
    rf = {n.key: n.rf for n in trace_graph(lenet5(), (1, 32, 32)).nodes}["features.c3"]
    cy, cx = rf.start[0] + 2 * rf.jump[0], rf.start[1] + 3 * rf.jump[1]
    half = (rf.size[0] - 1) / 2
    want = [round(cy - half), round(cx - half), round(cy + half), round(cx + half)]
    got = [int(v) for v in _Attrs(html, "data-hover-rf").a["data-hover-rf"].split(",")]
    assert got == want and got[2] - got[0] + 1 == 14
    assert "receptive field is 14x14 pixels" in text
    u = _Attrs(html, "data-units-window").a
    assert u["data-units-layer"] == "features.c3"
    assert u["data-units-window"] == "2,3,6,7"  # rows 2..6, cols 3..7 of s2, from the fields
    assert [int(v) for v in u["data-units-rf"].split(",")] == want


def test_playground_formula(pages):
    need_chromium()
    script = ("tab('playground');var P=pane('playground');"
              "function set(k,v){var i=P.querySelector('input[data-pg=\"'+k+'\"]');"
              "i.value=String(v);"
              "i.dispatchEvent(new Event('input'));}"
              "var out={first:P.querySelector('.pg-filled').textContent};"
              "set('k',3);set('s',2);set('p',1);set('d',2);"
              "out.changed=P.querySelector('.pg-filled').textContent;out.n=P.getAttribute('data-pg-out');"
              "out.warn=P.querySelector('.pg-warn').textContent;"
              "set('k',11);set('p',0);set('d',4);out.empty=P.querySelector('.pg-warn').textContent;"
              "T.setAttribute('data-test',JSON.stringify(out));")
    path = driven(pages["lenet5"], script, "pg.html")
    dom, console, html = dump(path)
    body_ok(dom, console)
    out = json.loads(_Attrs(html, "data-test").a["data-test"])
    # LeNet-5's C1 as built: 32, k 5, s 1, p 0, d 1 -> 28
    assert out["first"] == "H_out = ⌊(32 + 2·0 − 1·(5 − 1) − 1) / 1⌋ + 1 = ⌊27 / 1⌋ + 1 = 28"
    n = F.conv2d(torch.zeros(1, 1, 32, 32), torch.zeros(1, 1, 3, 3), stride=2, padding=1,
                 dilation=2).shape[-1]
    assert out["changed"] == f"H_out = ⌊(32 + 2·1 − 2·(3 − 1) − 1) / 2⌋ + 1 = ⌊29 / 2⌋ + 1 = {n}"
    assert int(out["n"]) == n == math.floor(29 / 2) + 1
    assert "never reached" in out["warn"]  # 34 padded rows, the last window ends at row 32
    assert "larger than the padded input" in out["empty"]  # 4 * 10 + 1 = 41 > 32


def test_other_models_build_their_teaching_views(pages):
    """The tiny model (stride 2, padding 2, dilation 2, max pooling with padding): the page's
    forward pass equals PyTorch's; a pooling unit's window in the layer before it."""
    need_chromium()
    script = ("document.querySelector('[data-layer=\"2\"]').click();tab('units');"
              "var Q=pane('units');setTimeout(function(){"
              "mouse(Q.querySelector('canvas.units-out'),'mousemove',1.5/4,1.5/4);},50);")
    path = driven(pages["tiny"], script, "tiny-units.html")
    dom, console, html = dump(path, screenshot=ARTIFACTS / "teach-units-tiny.png")
    body_ok(dom, console)
    assert dom.body["data-teach-check-ok"] == "1"
    # MaxPool2d(3, stride 2, padding 1), unit (1, 1): rows/cols 1*2-1 .. 1*2-1+2 of the ReLU
    u = _Attrs(html, "data-units-window").a
    assert u["data-units-layer"] == "2" and u["data-units-window"] == "1,1,3,3"
    assert "output unit (1, 1) sees rows 1..3, columns 1..3 of 1" in " ".join(dom.texts)


def test_residual_network_forward_in_the_page(tmp_path):
    """ResNet-20 (batch norm, option-A shortcuts, residual adds) with its weights in the page
    (``small_params`` raised): the page's forward pass gives PyTorch's logits."""
    need_chromium()
    torch.manual_seed(0)
    model = cnnlab.create_model("resnet20").eval()
    for m in model.modules():  # running statistics that are not 0/1, as after training
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    x = torch.randn(1, 3, 32, 32)
    data = explore_data(model, x, model_name="resnet20", depth=1)
    data["teach"] = teach_data(model, x, trace_graph(model, (3, 32, 32)),
                               small_params=1_000_000)
    path = tmp_path / "r20.html"
    path.write_text(render_html(data), encoding="utf-8")
    dom, console, _ = dump(path)
    body_ok(dom, console)
    assert dom.body["data-teach-check-ok"] == "1", dom.body.get("data-teach-check")


def test_layers_that_are_not_plain_correlations_are_not_animated():
    """Reflect padding, and a convolution that standardises its weight in forward: the page
    would draw zeros / the stored weight, so these layers are left out (not shown wrong)."""
    class StdConv(nn.Conv2d):
        def forward(self, x):
            w = (self.weight - self.weight.mean((1, 2, 3), keepdim=True)) * 3.0
            return F.conv2d(x, w, self.bias, self.stride, self.padding)

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1, padding_mode="reflect"),
                          StdConv(2, 2, 3), nn.Conv2d(2, 2, 3, padding=1)).eval()
    x = torch.randn(1, 1, 12, 12)
    d = teach_data(model, x, trace_graph(model, (1, 12, 12)))
    assert [r["module"] for r in d["layers"]] == ["2"]
