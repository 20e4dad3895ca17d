"""Browser test: the labeling and review widgets in real JupyterLab, driven in headless Chromium.

JupyterLab runs on 127.0.0.1 (a free port, a token made here) over a temp folder holding
copies of notebooks 01 and 02 whose parameters point every path at that folder. Playwright
drives Debian's `chromium` (never a browser of its own): Run All Cells from the menu, click the
real widget buttons, then read the CSV files those clicks wrote. It also checks that the
overlay and skeleton videos play in that browser (metadata loaded, frames decoded, time moves).

Needs `chromium` on PATH (`make browser-deps`); without it these tests fail, they never skip.
Screenshots: outputs/test-artifacts/browser/*.png (and a copy in each test's tmp_path).
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pandas as pd
import pytest

try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:  # fail in these tests, not at collection, so `-m "not browser"` still runs
    expect = sync_playwright = None

from deadlift_utils import config

pytestmark = pytest.mark.browser

NOTEBOOKS = config.PROJECT_ROOT / "notebooks"
ARTIFACTS = config.PROJECT_ROOT / "outputs" / "test-artifacts" / "browser"
VENV_BIN = Path(sys.executable).parent
CLIPS = ("correct_side", "rounded_back_side")  # two real 360x640 ~20 s kettlebell clips
FRAME_STRIDE = 30  # ~40 sampled frames per clip: extraction takes seconds, videos still ~20 s long
# Debian's chromium on this closed network: no sandbox as root, no background connections.
CHROMIUM_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
KERNEL_START_S = 60
RUN_ALL_S = 180  # notebook 02 imports MediaPipe and draws a contact sheet before the widget shows


def _chromium() -> str:
    exe = shutil.which("chromium")
    if exe is None:
        pytest.fail("Debian's chromium is not installed; the browser tests need it. Run `make browser-deps` "
                    "(apt-get install chromium). Never `playwright install`.", pytrace=False)
    return exe


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pids_mentioning(text: str) -> list[int]:
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            if text in cmdline.read_bytes().decode(errors="replace"):
                pids.append(int(cmdline.parent.name))
    return [p for p in pids if p != os.getpid()]


def _parameterize(src: Path, dst: Path, params: dict) -> None:
    """Copy a notebook, injecting `params` after its `parameters` cell the way papermill does."""
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    nb = load_notebook_node(str(src))  # as papermill reads it (every cell gets a tags list)
    assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells), f"{src}: no parameters cell"
    nb = parameterize_notebook(nb, params)
    nbformat.write(nb, dst)


# ------------------------------------------------------------------------------ fixtures

@pytest.fixture(scope="module", autouse=True)
def chromium_exe() -> str:
    """Fail first (before the extraction and the server start) when chromium is missing."""
    if sync_playwright is None:
        pytest.fail("the playwright Python package is missing: .venv/bin/pip install -r requirements.txt "
                    "(it drives Debian's chromium; never run `playwright install`).", pytrace=False)
    return _chromium()


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A temp folder with two real clips, their poses pre-extracted, and the two notebooks
    parameterised to read and write only inside it."""
    from deadlift_utils.extract import extract_folder

    root = tmp_path_factory.mktemp("browser")
    clips = root / "clips"
    clips.mkdir()
    for name in CLIPS:
        (clips / f"{name}.mp4").symlink_to(config.KETTLEBELL_DIR / f"{name}.mp4")
    poses = root / "poses"
    # The notebook runs the same call with the same parameters and reuses these results.
    result = extract_folder(clips, poses / clips.name, frame_stride=FRAME_STRIDE, smoothing_window=5,
                            backend="blazepose", model_variant="full", video_format="mp4", progress=False)
    assert not result.failed, result.failed
    assert len(result.done) == len(CLIPS)
    # Overlay and skeleton videos hold one frame per sample, played at fps / frame_stride.
    durations = {f"clips/{r.video_path.stem}": len(r.sequence.time_s) * FRAME_STRIDE / r.sequence.fps
                 for r in result.done}

    paths = {"root": root, "clips": clips, "poses": poses, "labels_csv": root / "labels.csv",
             "approvals_csv": root / "approvals.csv", "run_dir": root / "run", "durations": durations}
    _parameterize(NOTEBOOKS / "01_label_videos.ipynb", root / "01_label_videos.ipynb", {
        "data_dir": str(clips), "labels_csv": str(paths["labels_csv"]), "import_esap": False,
        "import_label_csvs": "", "batch": False, "run_dir": str(paths["run_dir"] / "01")})
    _parameterize(NOTEBOOKS / "02_extract_poses.ipynb", root / "02_extract_poses.ipynb", {
        "data_dirs": str(clips), "poses_dir": str(poses), "approvals_csv": str(paths["approvals_csv"]),
        "frame_stride": FRAME_STRIDE, "smoothing_window": 5, "backend": "blazepose", "model_variant": "full",
        "video_format": "mp4", "max_videos": 2, "batch": False, "run_dir": str(paths["run_dir"] / "02")})
    return paths


@pytest.fixture(scope="module")
def lab(work):
    """JupyterLab from the venv on 127.0.0.1:<free port>, rooted at the work folder.
    Yields (base_url, token); afterwards the server and its kernels are stopped."""
    root = work["root"]
    token = secrets.token_hex(16)
    port = _free_port()
    home = root / ".jupyter"
    settings = home / "lab-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    # No news / update-check toast over the notebook (and no request to the internet for them).
    (settings / "notification.jupyterlab-settings").write_text('{"fetchNews": "false", "checkForUpdates": false}')
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(home / "config"), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               JUPYTERLAB_SETTINGS_DIR=str(home / "lab-settings"),
               JUPYTERLAB_WORKSPACES_DIR=str(home / "workspaces"), PYTHONUNBUFFERED="1")
    log_path = root / "jupyter-lab.log"
    cmd = [str(VENV_BIN / "jupyter"), "lab", "--no-browser",
           "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
           f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
           "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if os.geteuid() == 0:  # CI runs as root; the server only listens on 127.0.0.1 with a token
        cmd.append("--allow-root")
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + KERNEL_START_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as r:
                    if r.status == 200:
                        break
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter lab did not answer /api/status in {KERNEL_START_S} s:\n"
                            f"{log_path.read_text()[-3000:]}")
            time.sleep(0.3)
        yield base, token
    finally:
        # SIGTERM: the server shuts its kernels down, then exits.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=5)
        # Kernels run in sessions of their own (not in the server's process group): kill any
        # left behind, found by their connection file in this server's runtime folder.
        for pid in _pids_mentioning(str(home / "runtime")):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture(scope="module")
def browser(chromium_exe):
    with sync_playwright() as pw:
        # Playwright gives every launch a fresh, empty profile (user-data-dir) of its own.
        b = pw.chromium.launch(executable_path=chromium_exe, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1600})
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    # Everything must come from the local server (the closed network refuses the rest).
    pg.outside_requests = []
    pg.on("request", lambda r: None if r.url.startswith(("http://127.0.0.1:", "ws://127.0.0.1:", "blob:", "data:"))
          else pg.outside_requests.append(r.url))
    try:
        yield pg
    finally:
        context.close()


# ------------------------------------------------------------------------------ helpers

def open_and_run_all(page, lab, notebook: str) -> None:
    """Open a notebook in a workspace of its own (so no other notebook's kernel is in view),
    wait until its kernel is connected and idle, then Run > Run All Cells."""
    base, token = lab
    page.goto(f"{base}/lab/workspaces/{Path(notebook).stem}/tree/{notebook}?token={token}")
    page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=KERNEL_START_S * 1000)
    # The toolbar and execution indicators say "idle" before any kernel exists; the status bar
    # names the kernel only once it is connected ("No Kernel | Initializing" before). Run All
    # before that runs nothing.
    page.locator(".jp-StatusBar-TextItem", has_text=re.compile(r"\(ipykernel\) \| Idle")).wait_for(
        timeout=KERNEL_START_S * 1000)
    page.locator(".lm-MenuBar-item", has_text=re.compile(r"^Run$")).click()
    run_menu = page.locator("#jp-mainmenu-run li.lm-Menu-item")
    run_menu.filter(has=page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$"))).click()
    # Proof that Run All started: the parameters cell gets an execution count.
    expect(page.locator(".jp-CodeCell .jp-InputPrompt").first).to_have_text(
        re.compile(r"\[(\*|\d+)\]"), timeout=30_000)


def check_plays(video, what: str) -> dict:
    """Assert a <video> element loaded its metadata, decoded frames and its time advances."""
    state = video.evaluate("""async (el) => {
        const sleep = ms => new Promise(r => setTimeout(r, ms));
        const t0 = Date.now();
        while (el.readyState < 2 && !el.error && Date.now() - t0 < 20000) await sleep(100);
        const autoplaying = !el.paused;
        let playError = null;
        if (el.paused) {  // autoplay with sound may be blocked; muted playback is always allowed
            el.muted = true;
            try { await el.play(); } catch (e) { playError = String(e); }
        }
        const start = el.currentTime;
        await sleep(1500);
        return {readyState: el.readyState, duration: el.duration, start, end: el.currentTime,
                paused: el.paused, autoplaying, playError, error: el.error && el.error.code,
                videoWidth: el.videoWidth, videoHeight: el.videoHeight, src: el.currentSrc};
    }""")
    assert state["error"] is None and state["playError"] is None, f"{what} does not play: {state}"
    assert state["readyState"] >= 2, f"{what}: no decoded frame (readyState {state['readyState']}): {state}"
    assert state["duration"] > 0, f"{what}: no duration: {state}"
    assert state["videoWidth"] > 0 and state["videoHeight"] > 0, f"{what}: no picture: {state}"
    advanced = state["end"] - state["start"]
    if advanced < 0:  # looped back to the start meanwhile
        advanced += state["duration"]
    assert advanced > 0.5, f"{what}: time did not advance over 1.5 s: {state}"
    assert state["src"].startswith("blob:"), f"{what}: not the widget's own video bytes: {state}"
    return state


def wait_for_new_videos(page, widget, old_srcs: list[str], timeout_ms: int = 30_000) -> None:
    """Wait until no <video> in `widget` still shows one of `old_srcs` (blob URLs)."""
    page.wait_for_function(
        """([root, old]) => {
            const vids = [...root.querySelectorAll('video')];
            return vids.length > 0 && vids.every(v => v.currentSrc && !old.includes(v.currentSrc));
        }""", arg=[widget.element_handle(), old_srcs], timeout=timeout_ms)


@contextlib.contextmanager
def explain_failure(page, name: str):
    """On failure: a screenshot of the page and the notebook's error output in the message."""
    try:
        yield
    except (Exception, pytest.fail.Exception) as e:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / f"FAILED_{name}.png"
        errors = []
        with contextlib.suppress(Exception):
            page.screenshot(path=str(shot))
            errors = page.locator(".jp-OutputArea-output[data-mime-type*='error'], "
                                  ".jp-OutputArea-output[data-mime-type*='stderr']").all_inner_texts()
        raise AssertionError(f"{e}\nscreenshot: {shot}\nnotebook errors/stderr: {errors[-5:]}") from e


def save_screenshot(target, name: str, tmp_path: Path) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    out = ARTIFACTS / name
    target.screenshot(path=str(out))
    shutil.copy(out, tmp_path / name)
    return out


def poll_csv(path: Path, rows: int, timeout_s: float = 20) -> pd.DataFrame:
    """The CSV once it holds `rows` rows (each click saves it atomically)."""
    deadline = time.monotonic() + timeout_s
    df = None
    while time.monotonic() < deadline:
        if path.exists():
            df = pd.read_csv(path, dtype=str, keep_default_na=False)
            if len(df) >= rows:
                return df
        time.sleep(0.2)
    pytest.fail(f"{path} did not reach {rows} rows in {timeout_s} s; now: {df}")


def button(scope, name: str):
    """A widget button by its label (its accessible name also holds the icon's glyph)."""
    return scope.locator("button.jupyter-button", has_text=re.compile(rf"^\s*{re.escape(name)}\s*$"))


# ------------------------------------------------------------------------------ tests

def test_review_widget_buttons_write_approvals_and_videos_play(page, lab, work, tmp_path):
    """Notebook 02 in JupyterLab: both videos play; Approve then Reject write approvals.csv."""
    first, second = (f"clips/{c}" for c in CLIPS)
    playback = {}
    with explain_failure(page, "review"):
        open_and_run_all(page, lab, "02_extract_poses.ipynb")
        approve = button(page, "Approve")
        approve.wait_for(timeout=RUN_ALL_S * 1000)
        widget = page.locator(".widget-vbox").filter(has=approve).last
        widget.scroll_into_view_if_needed()
        header = widget.locator("h3").first
        expect(header).to_contain_text(f"{first} (1 of 2)")
        assert not work["approvals_csv"].exists(), "approvals.csv written before any click"

        # Overlay then skeleton, side by side; each must really play in this browser, and be
        # this video's (its length is the number of samples at fps / frame_stride).
        videos = widget.locator("video")
        for vid in (first, second):
            if vid == second:
                widget.get_by_placeholder("reason (optional)").fill("skeleton follows the lifter")
                save_screenshot(widget, "review_widget.png", tmp_path)
                approve.click()
                expect(header).to_contain_text(f"{second} (2 of 2)")  # the widget moved on
                row = poll_csv(work["approvals_csv"], 1).iloc[0]  # saved on the click, not at the end
                assert (row["video_id"], row["decision"]) == (first, "approved")
                # The header changes first; the two new <video> elements follow.
                wait_for_new_videos(page, widget, [s["src"] for s in playback.values()])
            expect(videos).to_have_count(2)
            for i, kind in enumerate(("overlay", "skeleton")):
                state = check_plays(videos.nth(i), f"{vid} {kind}")
                assert abs(state["duration"] - work["durations"][vid]) < 1.0, (vid, kind, state)
                playback[f"{vid} {kind}"] = state
        srcs = [s["src"] for s in playback.values()]
        assert len(set(srcs)) == 4, f"the second video did not replace the first: {srcs}"

        widget.get_by_placeholder("reason (optional)").fill("lost the arms")
        button(widget, "Reject").click()
        expect(header).to_contain_text("All 2 videos reviewed")
        save_screenshot(widget, "review_widget_done.png", tmp_path)
    (ARTIFACTS / "video_playback.json").write_text(json.dumps(playback, indent=1))
    assert not page.outside_requests, f"requests outside 127.0.0.1: {page.outside_requests[:5]}"

    df = poll_csv(work["approvals_csv"], 2)
    assert len(df) == 2, df
    got = df.set_index("video_id")
    assert set(got.index) == {first, second}
    assert (got.loc[first, "decision"], got.loc[first, "reason"]) == ("approved", "skeleton follows the lifter")
    assert (got.loc[second, "decision"], got.loc[second, "reason"]) == ("rejected", "lost the arms")
    assert (got["decided_by"] == "user").all()
    assert got.loc[first, "pose_path"] == str(work["poses"] / "clips" / f"{CLIPS[0]}.json")
    # The notebook ran through (its last cell wrote the snapshot) and reused the fixture's poses.
    extraction = pd.read_csv(work["run_dir"] / "02" / "extraction.csv")
    assert sorted(extraction["video_id"]) == [first, second] and extraction["reused"].all(), extraction
    assert (work["run_dir"] / "02" / "approvals_snapshot.csv").is_file()


def test_label_widget_buttons_write_labels(page, lab, work, tmp_path):
    """Notebook 01 in JupyterLab: the clip plays; good/side/note Save, then bad/front Save."""
    first, second = (f"clips/{c}" for c in CLIPS)
    with explain_failure(page, "label"):
        open_and_run_all(page, lab, "01_label_videos.ipynb")
        save = button(page, "Save")
        save.wait_for(timeout=RUN_ALL_S * 1000)
        widget = page.locator(".widget-vbox").filter(has=save).last
        widget.scroll_into_view_if_needed()
        header = widget.locator("h3").first
        expect(header).to_contain_text(f"{first} (1 of 2)")
        videos = widget.locator("video")
        expect(videos).to_have_count(1)
        first_clip = check_plays(videos.first, f"{first} clip")

        button(widget, "good").click()
        button(widget, "side").click()
        widget.get_by_placeholder("note (optional)").fill("bar close to the shins")
        save_screenshot(widget, "label_widget.png", tmp_path)
        save.click()
        expect(header).to_contain_text(f"{second} (2 of 2)")  # the widget moved on
        row = poll_csv(work["labels_csv"], 1).iloc[0]  # saved on the click, not at the end
        assert (row["video_id"], row["form"], row["view"]) == (first, "good", "side")
        wait_for_new_videos(page, widget, [first_clip["src"]])
        check_plays(videos.first, f"{second} clip")
        button(widget, "bad").click()
        button(widget, "front").click()
        save.click()
        expect(header).to_contain_text("All 2 videos done")
        save_screenshot(widget, "label_widget_done.png", tmp_path)
    assert not page.outside_requests, f"requests outside 127.0.0.1: {page.outside_requests[:5]}"

    df = poll_csv(work["labels_csv"], 2)
    assert len(df) == 2, df
    got = df.set_index("video_id")
    assert set(got.index) == {first, second}
    assert tuple(got.loc[first, ["form", "view", "note"]]) == ("good", "side", "bar close to the shins")
    assert tuple(got.loc[second, ["form", "view", "note"]]) == ("bad", "front", "")
    assert (got["source"] == "user").all()
    assert got.loc[first, "path"] == str(work["clips"] / f"{CLIPS[0]}.mp4")
    assert (work["run_dir"] / "01" / "labels_summary.csv").is_file(), "notebook 01 did not run to its end"


def test_report_reads_verdict_first_with_a_still_and_folds_the_detail(browser, tmp_path):
    """The analysis report of a real rounded-back clip, in Chromium: the verdict and the finding
    (with its still) come first, the detail is folded and opens on a click. Screenshot:
    outputs/test-artifacts/browser/report.png."""
    from deadlift_utils.analyze import analyze_video

    video = config.SHARED_DATA_DIR / "videos" / "tutorial_dev" / "bad" / "bad_03.mp4"
    rep = analyze_video(video, tmp_path / "report", use_openai=False)
    html_file = tmp_path / "report" / rep["files"]["report_html"]
    context = browser.new_context(viewport={"width": 1000, "height": 1400})
    try:
        pg = context.new_page()
        pg.goto(html_file.as_uri())
        expect(pg.locator(".verdict")).to_have_text("Needs work")
        finding = pg.locator(".finding").first
        expect(finding.locator("h3")).to_contain_text("back rounds")
        still = finding.locator("img")
        assert still.evaluate("img => img.complete && img.naturalWidth > 100")
        # The finding comes before the coaching, the rep table and the folded detail.
        order = pg.evaluate("""() => ['.finding', 'h2', 'details'].map(s => document.querySelector(s))
            .map(el => el.getBoundingClientRect().top)""")
        assert order[0] < pg.locator("details").bounding_box()["y"]
        details = pg.locator("details")
        assert not details.evaluate("d => d.open")
        margins = details.locator("img[alt^='Each rule per rep']")
        assert not margins.is_visible()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        pg.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        details.locator("summary").click()
        expect(margins).to_be_visible()
        # Numbers are rounded to what they support: no long float anywhere on the page.
        assert not re.search(r"\d\.\d{5,}", pg.inner_text("body"))
    finally:
        context.close()
