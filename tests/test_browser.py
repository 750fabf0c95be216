"""The suite as a learner meets it: JupyterLab in a real browser (headless Chromium).

One JupyterLab server for the module (127.0.0.1, random port, token, settings and workspaces in a
temporary folder, no news, update checks or PyPI extension manager) serves a temporary copy of
``notebooks/``. For every notebook whose code shows widgets (ipywidgets, plotly FigureWidget,
kdlab's explorers and playground) the test opens it, clicks Run > Run All Cells, waits until every
cell has run and the kernel is idle, and checks that no cell (nor a widget's Output area) shows an
error and that every widget view rendered (not "Loading widget...", not "Error displaying widget:
model not found", not an empty placeholder). In notebook 02 it also moves each pure T slider with
the keyboard and checks that the plot beside it changes, then moves the playground's T slider and
its student-size slider and checks each time that the student re-trains (status "trained in ...",
the figure names the new T / student, the regions change) and that teacher and student regions
stay on the same input-plane coordinates. A self-check notebook proves the checks can fail (a
ZeroDivisionError and a widget whose model is missing must be reported). The demo test serves
``demo/playground.ipynb`` with Voila as ``demo/serve.py`` does (the offline template) and checks, at
1280x720 and 1366x768, that the large playground opens trained, fits the screen, shows no code, asks
no host but 127.0.0.1 for anything (the browser's request log), and re-trains.

Screenshots (``test-artifacts/``, gitignored): ``<notebook>-opened.png``, ``<notebook>-after-run.png``,
``<notebook>-widget<k>.png`` (each widget view), ``02_*-T-explorer<k>-before/after.png``,
``02_*-playground-initial.png``, ``02_*-playground-T-before/after.png``,
``02_*-playground-size-before/after.png``, ``self-check-*.png``, ``demo-voila-1280x720.png``,
``demo-voila-1366x768.png``, ``demo-voila-size-before/after.png``.

The copies run in FAST mode (papermill's injected-parameters cell, as in the papermill test): the
default path is covered by nbval. ``KDLAB_BROWSER_MODE=default`` runs the default path instead.
Kernels are shut down through the REST API after each notebook and the server is stopped at the
end, whatever happens. Without Chromium the tests are skipped with the command that installs it.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import time
from pathlib import Path

import nbformat
import papermill
import pytest

from browser_tools import (
    INSTALL_HINT,
    WIDGET_MIME,
    cell_errors,
    chromium_browser,
    chromium_path,
    heatmap_axes,
    jupyter_server,
    open_notebook,
    plot_signature,
    press_on_slider,
    run_all_cells,
    screenshot,
    screenshot_path,
    slider,
    slider_readout,
    wait_for_change,
    wait_until_idle,
    widget_outputs,
    widget_problems,
)
from notebook_tools import NOTEBOOK_DIR, NOTEBOOKS

CHROMIUM = chromium_path()
MODE = os.environ.get("KDLAB_BROWSER_MODE", "fast")
# Code that shows a widget: ipywidgets/plotly widgets directly, or kdlab's explorers and playground.
WIDGET_CODE = re.compile(r"\bipywidgets\b|FigureWidget|\binteract(ive)?\(|kdlab\.widgets|\bplayground\(|"
                         r"\.widget\(\)|\w*Explorer\(")

try:
    import playwright  # noqa: F401
except ImportError:  # pragma: no cover - playwright is in the [test] extra
    CHROMIUM = None

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason=INSTALL_HINT),
]


def shows_widgets(path: Path) -> bool:
    """A notebook with widgets: its stored outputs hold widget views, or its code builds widgets."""
    nb = nbformat.read(path, as_version=4)
    # the Colab setup cell (every notebook has one) names the widget packages but shows no widget
    code = [c for c in nb.cells if c.cell_type == "code" and "kdlab-colab" not in c.metadata.get("tags", [])]
    stored = any(WIDGET_MIME in out.get("data", {}) for c in code for out in c.outputs)
    return stored or any(WIDGET_CODE.search(c.source) for c in code)


WIDGET_NOTEBOOKS = [p for p in NOTEBOOKS if shows_widgets(p)]
PLAYGROUND = next((p for p in NOTEBOOKS if p.name.startswith("02_")), None)
if PLAYGROUND is not None and PLAYGROUND not in WIDGET_NOTEBOOKS:
    WIDGET_NOTEBOOKS.append(PLAYGROUND)

SELF_CHECK = [
    "import ipywidgets as W, numpy as np, plotly.graph_objects as go\n"
    "from IPython.display import display",
    "T = W.FloatSlider(value=1.0, min=0.5, max=10.0, step=0.5, description='T')\n"
    "fig = go.FigureWidget(go.Scatter(y=np.exp(-np.arange(6) / T.value)))\n"
    "T.observe(lambda change: setattr(fig.data[0], 'y', np.exp(-np.arange(6) / change['new'])), 'value')\n"
    "W.VBox([T, fig])",
    # a widget view whose model does not exist: what a learner sees when widget state is missing
    "display({'" + WIDGET_MIME + "': {'model_id': '0' * 32, 'version_major': 2, 'version_minor': 0},"
    " 'text/plain': 'broken'}, raw=True)",
    "1 / 0",
]


def prepare_root(root: Path) -> None:
    """Copy notebooks/ into ``root``; in FAST mode inject ``FAST = True`` as papermill does."""
    shutil.copytree(NOTEBOOK_DIR, root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    if MODE == "fast":
        for path in sorted(root.glob("*.ipynb")):
            nb = papermill.iorw.load_notebook_node(str(path))
            nb = papermill.parameterize.parameterize_notebook(nb, {"FAST": True})
            nbformat.write(nb, path)
    elif MODE != "default":
        raise ValueError(f"KDLAB_BROWSER_MODE must be 'fast' or 'default', got {MODE!r}")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in SELF_CHECK])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "_browser_self_check.ipynb")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("jupyterlab")
    root = tmp / "notebooks"
    prepare_root(root)
    with jupyter_server(root, tmp, app="lab") as server:
        yield server


@pytest.fixture(scope="module")
def browser():
    with chromium_browser(CHROMIUM) as b:
        yield b


@pytest.fixture
def page(lab, browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.console_errors = []
    page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text[:300]))
    page.on("pageerror", lambda e: page.console_errors.append(f"page error: {e}"[:300]))
    try:
        yield page
    finally:
        try:
            context.close()
        finally:
            lab.shutdown_kernels()  # through the REST API, whatever happened


def run_in_lab(page, lab, name: str, shot: str) -> None:
    """Open ``name``, Run All Cells, wait for the kernel, save ``<shot>-after-run.png``."""
    open_notebook(page, lab, name)
    screenshot(page, f"{shot}-opened.png")
    run_all_cells(page)
    try:
        wait_until_idle(page, timeout_ms=(180_000 if MODE == "fast" else 600_000))
    finally:
        screenshot(page, f"{shot}-after-run.png")


def assert_no_errors_and_widgets_render(page, name: str, shot: str) -> int:
    """No cell shows an error; every widget view rendered (each saved as ``<shot>-widget<k>.png``)."""
    errors = cell_errors(page)
    assert not errors, f"{name}: cells show errors:\n" + "\n".join(errors)
    page.wait_for_timeout(500)  # let the last views attach
    n, problems = widget_problems(page)
    assert n > 0, f"{name}: no widget output found after Run All"
    assert not problems, f"{name}: widgets did not render:\n" + "\n".join(problems) + (
        "\nbrowser console:\n" + "\n".join(page.console_errors[-10:]))
    views = widget_outputs(page)
    for k in range(views.count()):
        if views.nth(k).is_visible():
            views.nth(k).scroll_into_view_if_needed()
            views.nth(k).screenshot(path=str(screenshot_path(f"{shot}-widget{k}.png")))
    return n


def test_the_suite_has_widget_notebooks_and_the_playground():
    assert PLAYGROUND is not None, "notebook 02 (the playground) is missing from notebooks/"
    assert len(WIDGET_NOTEBOOKS) >= 2, [p.name for p in WIDGET_NOTEBOOKS]


def test_the_checks_catch_errors_and_broken_widgets(page, lab):
    """Self-check on a small notebook: a live slider moves a plot; a missing model and 1/0 are caught."""
    run_in_lab(page, lab, "_browser_self_check.ipynb", "self-check")
    errors = cell_errors(page)
    assert len(errors) == 1 and "ZeroDivisionError" in errors[0], errors
    n, problems = widget_problems(page)
    assert n == 2, f"expected the live widget and the broken one, found {n} widget outputs"
    assert len(problems) == 1 and problems[0].startswith("widget output 1"), problems
    live = widget_outputs(page).first
    before = plot_signature(page, live)
    assert before, "the live FigureWidget drew nothing"
    press_on_slider(live, "T", "End")
    after = wait_for_change(page, lambda: plot_signature(page, live), before, timeout_s=20)
    assert after != before, "moving the slider did not change the plot"


@pytest.mark.parametrize("path", WIDGET_NOTEBOOKS, ids=[p.stem for p in WIDGET_NOTEBOOKS])
def test_notebook_runs_in_jupyterlab_and_widgets_render(page, lab, path):
    """Run All in JupyterLab: no error, every widget renders; in 02 the sliders redraw and re-train."""
    start = time.monotonic()
    run_in_lab(page, lab, path.name, path.stem)
    n = assert_no_errors_and_widgets_render(page, path.name, path.stem)
    if path == PLAYGROUND:
        check_playground(page, path.name, path.stem)
        errors = cell_errors(page)
        assert not errors, f"{path.name}: errors after using the sliders:\n" + "\n".join(errors)
    print(f"{path.name}: {n} widget views rendered, {time.monotonic() - start:.0f} s in the browser")


# --------------------------------------------------------------------------------------------
# Notebook 02: the T slider and the playground
# --------------------------------------------------------------------------------------------

T_LABEL = "temperature T"
ALPHA_LABEL = "alpha (weight of soft loss)"
SIZE_LABEL = "student size"


def views_with_slider(page, label: str, *, without: str | None = None) -> list:
    outs = widget_outputs(page)
    found = []
    for i in range(outs.count()):
        out = outs.nth(i)
        if slider(out, label).count() and not (without and slider(out, without).count()):
            found.append(out)
    return found


def check_t_slider_redraws(page, view, shot: str) -> None:
    """Moving a pure-redraw T slider changes the plot beside it (and its readout)."""
    view.scroll_into_view_if_needed()
    before, readout = plot_signature(page, view), slider_readout(view, T_LABEL)
    assert before, f"{shot}: the plot beside the T slider drew nothing"
    view.screenshot(path=str(screenshot_path(f"{shot}-before.png")))
    press_on_slider(view, T_LABEL, "ArrowRight", times=10)
    after = wait_for_change(page, lambda: plot_signature(page, view), before, settle_s=0.5)
    view.screenshot(path=str(screenshot_path(f"{shot}-after.png")))
    assert slider_readout(view, T_LABEL) != readout, f"{shot}: the T slider did not move"
    assert after != before, f"{shot}: moving T from {readout} did not change the plot"


def playground_status(view) -> str:
    return view.locator(".kdlab-status").first.inner_text().strip()


def check_playground_retrains(page, view, label: str, key: str, times: int, expect, shot: str,
                              timeout_s: float = 120) -> str:
    """Move a playground control; check the student re-trains for the new setting: the status
    reports a finished training, the plot shows ``expect(new readout)`` and the regions changed."""
    view.scroll_into_view_if_needed()
    before, status = plot_signature(page, view), playground_status(view)
    assert status.startswith("trained in"), f"the playground has not finished training: {status!r}"
    readout = slider_readout(view, label)
    view.screenshot(path=str(screenshot_path(f"{shot}-before.png")))
    press_on_slider(view, label, key, times)
    new = wait_for_change(page, lambda: slider_readout(view, label), readout, timeout_s=10)
    assert new != readout, f"{shot}: pressing {key} on {label!r} did not move it from {readout}"
    expected = expect(new)
    deadline = time.monotonic() + timeout_s
    sig = before
    while time.monotonic() < deadline:
        page.wait_for_timeout(300)
        sig = plot_signature(page, view)
        if playground_status(view).startswith("trained in") and expected in sig and sig != before:
            break
    page.wait_for_timeout(300)
    view.screenshot(path=str(screenshot_path(f"{shot}-after.png")))
    status = playground_status(view)
    assert expected in sig, f"{shot}: after {label!r} {readout} -> {new} the plot never showed {expected!r}; status {status!r}"
    assert status.startswith("trained in"), f"{shot}: the re-training did not finish: {status!r}"
    assert sig != before, f"{shot}: the student's plot did not change after re-training"
    check_regions_share_coordinates(view, shot)
    return new


def check_regions_share_coordinates(view, shot: str) -> None:
    """Teacher and student decision regions are drawn on the same grid of the input plane."""
    axes = heatmap_axes(view)
    assert len(axes) >= 2, f"{shot}: expected the teacher's and the student's regions, found {axes}"
    assert all("none" not in a for a in axes) and len(set(axes)) == 1, (
        f"{shot}: the decision-region heatmaps do not share the input plane's coordinates in the "
        f"browser: {axes} (a heatmap without x/y is drawn against cell indices)"
    )


def check_playground(page, name: str, shot: str) -> None:
    """Every pure T slider redraws its plot; the playground re-trains when T and the student's size change."""
    playgrounds = views_with_slider(page, ALPHA_LABEL)
    assert len(playgrounds) >= 1, f"{name}: no playground (a widget with an {ALPHA_LABEL!r} slider)"
    view = playgrounds[-1]
    explorers = views_with_slider(page, T_LABEL, without=ALPHA_LABEL)
    for k, explorer in enumerate(explorers):
        check_t_slider_redraws(page, explorer, f"{shot}-T-explorer{k}")
    view.scroll_into_view_if_needed()
    view.screenshot(path=str(screenshot_path(f"{shot}-playground-initial.png")))
    check_regions_share_coordinates(view, f"{shot}-playground")
    # the playground's sliders re-train when released (continuous_update=False); a key press is one change
    check_playground_retrains(page, view, T_LABEL, "ArrowRight", 8, lambda t: f"T = {t}", f"{shot}-playground-T")
    check_playground_retrains(page, view, SIZE_LABEL, "ArrowRight", 1, lambda s: f"student {s} (",
                              f"{shot}-playground-size")


# --------------------------------------------------------------------------------------------
# Demo mode: the playground served without code by Voila
# --------------------------------------------------------------------------------------------

DEMO_DIR = Path(__file__).resolve().parents[1] / "demo"
DEMO_SCREENS = ((1280, 720), (1366, 768))  # the usual projector resolutions


def load_demo_launcher():
    """``demo/serve.py``, the command that serves the demo offline (imported from its file)."""
    spec = importlib.util.spec_from_file_location("kdlab_demo_serve", DEMO_DIR / "serve.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def first_screen_problems(page, view, width: int, height: int) -> list[str]:
    """What a presenter would see wrong on the first screen: a student not drawn, empty curves, a page
    wider than the screen (sideways scrolling) or a playground taller than it."""
    problems = []
    status = playground_status(view)
    if not status.startswith("trained in"):
        problems.append(f"the status is {status!r}, not a finished training")
    texts = plot_signature(page, view)
    if "not trained yet" in texts or "student MLP 4 (" not in texts:
        problems.append("the student panel's title does not name the trained student")
    drawn = view.locator(".js-plotly-plot").evaluate_all(
        """plots => plots.map(p => {
            const d = p.data || [];
            const z = d[1] && d[1].z ? [].concat(...d[1].z) : [];
            return {curve: d[6] && d[6].x ? d[6].x.length : 0, student_z: new Set(z.map(Number)).size};
        })""")
    if not drawn or drawn[0]["curve"] == 0:
        problems.append(f"the accuracy curve is empty on the first screen: {drawn}")
    if not drawn or drawn[0]["student_z"] <= 1:
        problems.append(f"the student's decision regions are not drawn (a constant heatmap): {drawn}")
    scroll_width, inner_width = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    if scroll_width > inner_width:
        problems.append(f"the page is {scroll_width} px wide in a {inner_width} px window: sideways scrolling")
    box = view.bounding_box()
    plot = view.locator(".js-plotly-plot").first.bounding_box()
    if plot is None or plot["x"] + plot["width"] > width:
        problems.append(f"the figure ({plot}) does not fit the {width} px screen")
    if box is None or box["y"] + box["height"] > height:
        problems.append(f"the playground ({box}) is taller than the {height} px screen")
    return problems


def test_demo_playground_serves_with_voila(browser, tmp_path):
    """`python demo/serve.py` (Voila, offline template): at 1280x720 and 1366x768 the large playground
    opens trained (student drawn, curves filled), fits the screen without sideways scrolling, shows
    no code, asks nothing of any host but 127.0.0.1, and re-trains when a slider moves."""
    pytest.importorskip("voila", reason="Voila is in the [demo] extra: pip install -e '.[demo]'")
    launcher = load_demo_launcher()
    with jupyter_server(DEMO_DIR, tmp_path, app="voila", launcher=launcher) as voila:
        for k, (width, height) in enumerate(DEMO_SCREENS):
            context = browser.new_context(viewport={"width": width, "height": height})
            page = context.new_page()
            page.set_default_timeout(60_000)
            requests = []
            page.on("request", lambda r, requests=requests: requests.append(r.url))
            page.on("websocket", lambda ws, requests=requests: requests.append(ws.url))
            try:
                start = time.monotonic()
                page.goto(voila.url("/"), wait_until="domcontentloaded", timeout=180_000)
                view = page.locator(".jp-OutputArea-output").filter(has=page.locator(".js-plotly-plot")).filter(
                    has=page.locator(".widget-label", has_text=ALPHA_LABEL)).first
                view.wait_for(timeout=180_000)
                page.wait_for_timeout(1000)  # let plotly finish drawing
                print(f"Voila {width}x{height}: playground shown {time.monotonic() - start:.1f} s after the request")
                shot = screenshot(page, f"demo-voila-{width}x{height}.png", full_page=False)
                problems = first_screen_problems(page, view, width, height)
                assert not problems, f"demo at {width}x{height} ({shot}):\n" + "\n".join(problems)
                text = page.inner_text("body")
                assert "from kdlab" not in text, "Voila should hide the code"
                for bad in ("Loading widget...", "model not found", "Error displaying widget", "Traceback"):
                    assert bad not in text, f"the Voila page shows {bad!r}"
                for label in (T_LABEL, ALPHA_LABEL, SIZE_LABEL):
                    assert slider(view, label).count() == 1, f"no {label!r} slider in the demo"
                check_regions_share_coordinates(view, "demo-voila")
                title = view.locator(".widget-html h1").first
                assert title.count() and float(title.evaluate("n => parseFloat(getComputedStyle(n).fontSize)")) >= 32, (
                    "demo mode should have a large heading")
                if k == 0:
                    check_playground_retrains(page, view, SIZE_LABEL, "ArrowRight", 1, lambda s: f"student {s} (",
                                              "demo-voila-size")
                local = (voila.base_url + "/", f"ws://127.0.0.1:{voila.port}/", "data:", "blob:")
                outside = sorted({r for r in requests if not r.startswith(local)})
                assert not outside, f"the demo page asked other hosts than 127.0.0.1: {outside}"
                print(f"Voila {width}x{height}: {len(requests)} requests, all to 127.0.0.1")
            finally:
                context.close()
