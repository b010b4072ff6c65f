"""``artifacts ui`` in a real headless browser: Debian's ``chromium`` driven by
Playwright (which cannot download its own browsers here, so it is pointed at the
system's). Skipped, saying why, where either is missing; `.ci/run` installs chromium.

The server is the command itself (``artifacts ui --port N``) in a subprocess. Each
page's screenshot is saved under the test's temporary directory.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the ui extra is not installed")
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed: pip install -e '.[test]'"
)
CHROMIUM = shutil.which("chromium")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no chromium: apt-get install chromium (.ci/run does)"
)

from tests.ui_store import make_store  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(ws: Path) -> Iterator[str]:
    make_store()
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "artifacts", "ui", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ},
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(process.communicate()[0].decode()) from None
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def page(tmp_path: Path) -> Iterator[object]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1100, "height": 700})
        try:
            yield page
        finally:
            browser.close()


def test_click_from_a_project_to_a_csv_a_diff_and_the_lineage(
    server: str, page: object, tmp_path: Path
) -> None:
    shots = tmp_path / "screenshots"

    def shot(name: str, full_page: bool = False) -> None:
        page.screenshot(path=str(shots / f"{name}.png"), full_page=full_page)

    page.goto(server + "/")
    page.click("a.project >> text=proj")
    page.click("a.artifact >> text=raw-data")
    assert page.locator("#versions").inner_text().count("latest") == 1
    shot("versions")
    page.click("a.version >> text=v1")
    assert "with birds" in page.inner_text("dl.info")
    shot("version")
    page.click("a.entry >> text=data.csv")
    cells = page.locator("#preview td").all_inner_texts()
    assert cells == ["1", "cat", "2", "dog", "3", "bird"]
    shot("csv")

    page.go_back()
    page.go_back()
    page.click("a.diff >> text=diff with v0")
    assert "notes.txt" in page.inner_text("#changes")
    assert "+3,bird" in page.inner_text("pre.linediff")
    shot("diff")

    # From the model to its raw dataset, one click per step in the graph.
    page.goto(server + "/team/proj/model/v0")
    page.click("#lineage")
    shot("lineage", full_page=True)
    for label in ("train-run", "clean-data:v0", "clean-run", "raw-data:v1", "raw-data:v1"):
        page.locator("svg#graph g.node", has_text=label).locator("a").first.click()
        page.wait_for_load_state()
    assert page.url == server + "/team/proj/raw-data/v1"
    assert "raw-data:v1" in page.inner_text("h1")
    assert sorted(p.name for p in shots.iterdir()) == [
        "csv.png",
        "diff.png",
        "lineage.png",
        "version.png",
        "versions.png",
    ]
