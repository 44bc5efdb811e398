"""The interactive notebooks as a user meets them: a real JupyterLab serving a small project
(results of tiny runs whose data roots are RELATIVE, as `make demo` writes them), its kernels started in
``notebooks/``, driven by headless Chromium through playwright. Each notebook's cells run from the
Run menu; then selectors change and buttons are clicked, and the picture (the bytes of the widget's
PNG) and the study's CSV must change. `make test-browser` (installs Debian's chromium if missing).

Oracles: the PNG bytes the browser holds (SHA-256 in the page), the responses CSV on disk
(`load_responses`), and the absence of error outputs in the notebook."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))  # Debian's package (make test-browser)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
TOKEN = "rightfocus-browser-test"
TIMEOUT_MS = int(os.environ.get('BROWSER_TIMEOUT_MS', 120_000))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def project_dir(tmp_path_factory):
    """A clone-like folder: pyproject marker, the two notebooks, data/voc and results/demo with a
    baseline, a guided and an AIM run (test_widgets' builders) whose configs say ``data_root: data/voc``."""
    from tiny_results import write_tree

    proj = tmp_path_factory.mktemp("clone")
    (proj / "pyproject.toml").write_text('[project]\nname = "rightfocus"\n')
    (proj / "notebooks").mkdir()
    for name in ("inspect_heatmaps", "perception_study"):
        nb = json.loads((REPO / "notebooks" / f"{name}.ipynb").read_text())
        if name == "perception_study":  # 3 trials for the participant (6 test images in 2 subsets)
            for cell in nb["cells"]:
                if "parameters" in cell.get("metadata", {}).get("tags", []):
                    cell["source"] = "".join(cell["source"]).replace("n_subsets = 4 ", "n_subsets = 2 ")
        (proj / "notebooks" / f"{name}.ipynb").write_text(json.dumps(nb))
    here = Path.cwd()
    os.chdir(proj)  # the builders write relative data roots, as `make` does from the project root
    try:
        results = Path("results")
        write_tree(results, Path("data") / "voc")
        (results / "demo" / "runs" / "half-written-run").mkdir()  # a failed run: listed nowhere
    finally:
        os.chdir(here)
    return proj


@pytest.fixture(scope="module")
def lab(project_dir, tmp_path_factory):
    """`jupyter lab` serving the project (kernels start in the notebook's folder); yields its URL."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} missing: run `make test-browser` (installs Debian's chromium) or apt-get install chromium")
    state = tmp_path_factory.mktemp("jupyter")
    port = _free_port()
    env = dict(os.environ, OMP_NUM_THREADS="1", MPLBACKEND="Agg", JUPYTER_CONFIG_DIR=str(state / "config"),
               JUPYTER_RUNTIME_DIR=str(state / "runtime"), JUPYTERLAB_WORKSPACES_DIR=str(state / "workspaces"),
               PYTHONPATH=os.pathsep.join([str(REPO / "lib"), os.environ.get("PYTHONPATH", "")]))
    env.pop("RIGHTFOCUS_ROOT", None)
    log = open(state / "lab.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={TOKEN}", "--allow-root", "--LabApp.extension_manager=readonly", f"--ServerApp.root_dir={project_dir}", "--ServerApp.open_browser=False",
         "--LabApp.news_url=", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"],
        cwd=project_dir, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("jupyter lab did not start:\n" + (state / "lab.log").read_text()[-3000:])
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


# ---- helpers ------------------------------------------------------------------------------------------
_DIGEST = """async (img) => {
  const buf = await (await fetch(img.src)).arrayBuffer();
  const hash = await crypto.subtle.digest('SHA-256', buf);
  return Array.from(new Uint8Array(hash)).map(b => b.toString(16).padStart(2, '0')).join('');
}"""


def _open_and_run_all(browser, lab: str, name: str):
    page = browser.new_page(viewport={"width": 1600, "height": 1200})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{lab}/lab/tree/notebooks/{name}.ipynb?token={TOKEN}")
    page.locator(".jp-NotebookPanel .jp-Notebook").first.wait_for()
    # the committed notebooks name no kernel: JupyterLab asks once, as it asks a user ("Python 3")
    # (the status bar may read "Idle" while that dialog is still open: wait for the dialog itself)
    select = page.locator(".jp-Dialog").get_by_role("button", name="Select", exact=True)
    try:
        select.wait_for(timeout=TIMEOUT_MS // 2)
        select.click()
    except Exception:  # noqa: BLE001 - a notebook that names its kernel: no dialog
        pass
    page.locator(".jp-Dialog").wait_for(state="detached")
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
    return page


def _image(page):
    img = page.locator(".jp-OutputArea .widget-image").first
    try:
        img.wait_for()
    except Exception:
        outputs = page.locator(".jp-OutputArea").all_inner_texts()
        page.screenshot(path=os.environ.get("BROWSER_SHOT", "/dev/null"), full_page=True)
        raise AssertionError(f"no widget image; the notebook's outputs: {outputs}") from None
    page.wait_for_function("(el) => el.src && el.naturalWidth > 0", arg=img.element_handle())
    return img


def _digest(img) -> str:
    return img.evaluate(_DIGEST)


def _wait_for_change(page, img, before: str) -> str:
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while time.monotonic() < deadline:
        now = _digest(img)
        if now != before:
            return now
        page.wait_for_timeout(200)
    page.screenshot(path=os.environ.get("BROWSER_SHOT", "/dev/null"), full_page=True)
    raise AssertionError("the picture did not change; status: "
                         + str(page.locator(".jp-OutputArea .widget-html").all_inner_texts()))


def _no_errors(page) -> None:
    errors = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.error']")
    assert errors.count() == 0, errors.first.inner_text()


def _control(page, kind: str, label: str):
    """An ipywidgets control by its description label (e.g. the "image" box, the "method" dropdown)."""
    return page.locator(f".jp-OutputArea .widget-{kind}:has(> label:text-is('{label}'))").first


# ---- the tests ------------------------------------------------------------------------------------------
def test_inspector_notebook_from_notebooks_folder(browser, lab):
    page = _open_and_run_all(browser, lab, "inspect_heatmaps")
    img = _image(page)
    _no_errors(page)
    outputs = page.locator(".jp-OutputArea").all_inner_texts()
    assert any("skipped 1 unfinished run folder(s): half-written-run" in t for t in outputs)
    # the image is shown at its natural size, not stretched to the output width
    nw, nh, w, h = img.evaluate("(el) => { const r = el.getBoundingClientRect();"
                                " return [el.naturalWidth, el.naturalHeight, r.width, r.height]; }")
    assert abs(w - nw) <= 4 and abs(w / h - nw / nh) < 0.01, (nw, nh, w, h)  # borders aside: natural size
    # the "ground truth" / "any" choices are not blank
    assert _control(page, "dropdown", "class").locator("select").evaluate(
        "(s) => s.options[s.selectedIndex].text").replace("\xa0", " ") == "ground truth"
    first = _digest(img)
    box = _control(page, "text", "image").locator("input")
    box.fill("3")
    box.press("Enter")
    second = _wait_for_change(page, img, first)
    _control(page, "dropdown", "method").locator("select").select_option("gradcam")  # the guided run made it ixg
    third = _wait_for_change(page, img, second)
    page.locator(".jp-OutputArea button", has_text="▶").first.click()
    _wait_for_change(page, img, third)
    _no_errors(page)
    page.close()


def test_perception_study_notebook_from_notebooks_folder(browser, lab, project_dir):
    from rightfocus.widgets import load_responses

    csv = project_dir / "results" / "demo" / "study" / "responses_anonymous.csv"
    page = _open_and_run_all(browser, lab, "perception_study")
    img = _image(page)
    _no_errors(page)
    question = "more accurately and clearly focuses on the main object"
    assert page.locator(".jp-OutputArea .widget-html", has_text=question).count() == 1
    first = _digest(img)
    assert not csv.exists()
    page.locator(".jp-OutputArea button", has_text="A (left)").first.click()
    second = _wait_for_change(page, img, first)
    assert load_responses(csv).choice.tolist() == ["left"]
    page.locator(".jp-OutputArea button", has_text="B (right)").first.click()
    _wait_for_change(page, img, second)
    assert load_responses(csv).choice.tolist() == ["left", "right"]
    progress = page.locator(".jp-OutputArea .widget-html", has_text="answered").first
    assert "2 / 3 answered" in progress.inner_text()
    _no_errors(page)
    page.close()
