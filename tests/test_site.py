"""The static site (site/conf.py: Sphinx + MyST-NB) builds offline from the stored outputs, and the
notebooks render on GitHub.

The site is built once per module, with the network blocked for the build (the sitecustomize of
tests/binder_tools.py): every notebook gets a page with its figures and launch buttons (Binder,
Colab), the claims, glossary, benchmark and Chinese pages are there, and no page shows a widget
that needs a kernel.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from binder_tools import offline_env
from notebook_tools import NOTEBOOKS, read

ROOT = Path(__file__).resolve().parents[1]
REPO = "kdlab/kdlab"
ids = [p.stem for p in NOTEBOOKS]
# What a page shows when it renders a widget without a kernel: the widget-view MIME type and its
# loader, the "Loading widget..." / "kernel required" placeholders ...
RAW_WIDGET = re.compile(r"application/vnd\.jupyter\.widget-(view|state)|Loading widget|kernel (is )?required"
                        r"|Error displaying widget|jupyter-widgets/html-manager", re.I)
# ... or, in a cell's output, a widget's text repr
WIDGET_REPR = re.compile(r"\b(VBox|HBox|Box|GridBox|Tab|Accordion|Output|FigureWidget|\w*Slider|Dropdown|"
                         r"ToggleButtons|Button|Checkbox|Text|HTML|Label|Play)\((children|layout|value|description|"
                         r"data|outputs)=")


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    pytest.importorskip("myst_nb", reason="the site needs the test extra: pip install -e '.[test]'")
    tmp = tmp_path_factory.mktemp("site")
    out, log = tmp / "html", tmp / "network-attempts.log"
    log.write_text("")
    start = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-q", "-c", str(ROOT / "site"), "-d", str(tmp / "doctrees"),
         str(ROOT), str(out)],
        env=offline_env(tmp / "offline-site", log), capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - start
    print(f"site built in {seconds:.1f} s", file=sys.stderr)
    assert result.returncode == 0, result.stderr[-3000:]
    assert not log.read_text().strip(), f"the build tried to reach the network:\n{log.read_text()}"
    warnings = [line for line in result.stderr.splitlines() if "WARNING" in line]
    assert not warnings, "the site build warns (a broken link or a missing page?):\n" + "\n".join(warnings)
    return out


def page(site: Path, name: str) -> str:
    path = site / name
    assert path.exists(), f"the site has no page {name}"
    return path.read_text()


def image_outputs(nb) -> int:
    return sum(1 for c in nb.cells if c.cell_type == "code" for o in c.outputs
               if any(k.startswith("image/") for k in o.get("data", {})))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_every_notebook_has_a_page_with_its_figures(site, path):
    html = page(site, f"notebooks/{path.stem}.html")
    images = re.findall(r'<img [^>]*src="\.\./_images/([^"]+)"', html)
    assert images, f"{path.name}: its page shows no figure"
    assert len(images) >= image_outputs(read(path)), f"{path.name}: fewer figures on the page than in the notebook"
    for name in images:
        assert (site / "_images" / name).stat().st_size > 0, name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_every_notebook_page_has_launch_buttons(site, path):
    html = page(site, f"notebooks/{path.stem}.html")
    binder = f"https://mybinder.org/v2/gh/{REPO}/main?urlpath=lab/tree/notebooks/{path.name}"
    colab = f"https://colab.research.google.com/github/{REPO}/blob/main/notebooks/{path.name}"
    assert binder in html, f"{path.name}: no Binder launch button"
    assert colab in html, f"{path.name}: no Colab launch button"


def raw_widgets(html: str) -> list[str]:
    """What in a page shows a widget that needs a kernel (see RAW_WIDGET and WIDGET_REPR)."""
    from bs4 import BeautifulSoup  # comes with nbconvert and the Sphinx theme

    soup = BeautifulSoup(html, "html.parser")
    for script in soup.find_all("script"):
        script.decompose()
    hits = {m.group(0) for m in RAW_WIDGET.finditer(str(soup))}
    for output in soup.select(".cell_output"):
        hits |= {m.group(0) for m in WIDGET_REPR.finditer(output.get_text())}
    return sorted(hits)


def test_no_page_shows_a_raw_widget(site):
    shown = {str(p.relative_to(site)): hits for p in sorted(site.rglob("*.html")) if (hits := raw_widgets(p.read_text()))}
    assert not shown, f"pages that show a widget needing a kernel: {shown}"


def test_the_raw_widget_check_can_fail():
    output = '<div class="cell_output docutils container"><pre>{}</pre></div>'
    assert raw_widgets(output.format('VBox(children=(FloatSlider(value=1.0, description="T"),))'))
    assert raw_widgets(output.format('FigureWidget(data=[...])'))
    assert raw_widgets("<div>Loading widget...</div>")
    assert raw_widgets('<div data-mime-type="application/vnd.jupyter.widget-view+json"></div>')
    assert not raw_widgets('<div class="cell_input"><pre>ui = widgets.VBox(children=[slider])</pre></div>')
    assert not raw_widgets(output.format("the T slider redraws the plot"))


def test_reference_pages_are_part_of_the_site(site):
    claims = page(site, "docs/claims.html")
    assert 'href="../notebooks/02_temperature_and_alpha.html' in claims, "claims.md's links should reach the pages"
    assert "Claims about knowledge distillation" in claims
    assert "kdlab benchmark results" in page(site, "benchmarks/RESULTS.html")
    glossary = page(site, "docs/glossary.html")
    assert "知识蒸馏" in glossary and "soft targets" in glossary
    assert "知识蒸馏" in page(site, "README.zh-CN.html")
    landing = page(site, "index.html")
    assert "site/index.html" in landing, "the top-level index.html should lead to the landing page"
    home = page(site, "site/index.html")
    for target in ("notebooks/00_quickstart.html", "docs/claims.html", "docs/glossary.html",
                   "benchmarks/RESULTS.html", "README.zh-CN.html"):
        assert f'href="../{target}' in home, f"the landing page does not link {target}"


# ---------------------------------------------------------------- GitHub's notebook renderer


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_notebook_renders_on_github(path):
    """GitHub refuses a notebook whose widget metadata lacks its state ("the 'state' key is missing
    from 'metadata.widgets'"); scripts/execute_notebook.py drops saved widget state altogether."""
    nb = read(path)
    state = nb.metadata.get("widgets", {}).get("application/vnd.jupyter.widget-state+json")
    if "widgets" in nb.metadata:
        assert state is not None and "state" in state, (
            f"{path.name}: metadata.widgets without a 'state' key; GitHub will not render it")


# ---------------------------------------------------------------- links that work everywhere

DOCUMENTS = [ROOT / "README.md", ROOT / "README.zh-CN.md", ROOT / "CONTRIBUTING.md", ROOT / "benchmarks/RESULTS.md",
             *sorted((ROOT / "docs").glob("*.md")), *NOTEBOOKS]


def relative_links(path: Path) -> list[str]:
    text = path.read_text() if path.suffix == ".md" else "\n".join(
        c.source for c in read(path).cells if c.cell_type == "markdown")
    text = re.sub(r"```.*?```|`[^`\n]*`", "", text, flags=re.S)  # code is not a link
    links = re.findall(r"\]\(([^)\s]+)\)", text)
    return [link for link in links if not re.match(r"[a-z]+:|#", link)]


@pytest.mark.parametrize("path", DOCUMENTS, ids=[str(p.relative_to(ROOT)) for p in DOCUMENTS])
def test_relative_links_resolve(path):
    """A link to a file opens in JupyterLab (served from the root), on GitHub and on the site."""
    broken = [link for link in relative_links(path) if not (path.parent / link.split("#")[0]).exists()]
    assert not broken, f"{path.relative_to(ROOT)} links to files that do not exist: {broken}"


def test_readmes_link_the_glossary_and_each_other():
    english, chinese = (ROOT / "README.md").read_text(), (ROOT / "README.zh-CN.md").read_text()
    assert "(docs/glossary.md)" in english and "(README.zh-CN.md)" in english
    assert "(docs/glossary.md)" in chinese and "(README.md)" in chinese
    glossary = (ROOT / "docs/glossary.md").read_text()
    for term in ("知识蒸馏", "软目标", "温度", "暗知识", "教师模型", "学生模型", "特征提示", "迁移集", "伪标签",
                 "在线蒸馏", "反向 KL"):
        assert term in glossary, f"the glossary lacks {term}"
