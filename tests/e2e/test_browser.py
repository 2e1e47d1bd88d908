"""One real-browser session: `mmrag ui` served headless, driven by headless Chromium through Playwright.

It asks from each tab of the tools beside the chat (the input and the answer must both be on screen), follows
an answer's link to its image, enlarges an image, and pages the gallery, saving a screenshot of each step in
the test's folder (the paths are printed; run with ``-s`` to see them).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from mmrag.langchain.knowledge_base import KnowledgeBase
from tests.support.cli import isolated_environ
from tests.support.kbs import copy_kb
from tests.support.net import free_port, wait_for_port
from tests.support.ui import CHROMIUM_ARGS, REQUIRE_BROWSER

if TYPE_CHECKING:
    from playwright.sync_api import Locator, Page


@pytest.fixture
def chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        if REQUIRE_BROWSER:
            pytest.fail("chromium is not installed, and MMRAG_REQUIRE_BROWSER=1")
        pytest.skip("chromium is not installed (set MMRAG_REQUIRE_BROWSER=1 to make this a failure)")
    return path


@pytest.fixture
def served(tmp_path: Path, demo_kb: KnowledgeBase) -> Iterator[int]:
    """`mmrag ui` on the toy demo (48 images: two gallery pages), as a real process; its port."""
    db = copy_kb(Path(demo_kb.location), tmp_path / "kb")
    port = free_port()
    # isolated_environ keeps query texts on torch: no detached ONNX export outliving the server we stop
    env = isolated_environ(tmp_path / "home", {"MMRAG_DB": str(db), "MMRAG_MODEL": "toy"})
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "mmrag", "ui", "--port", str(port), "--host", "127.0.0.1", "--headless"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_port(port, server, what="mmrag ui")
        yield port
    finally:
        os.kill(server.pid, signal.SIGTERM)  # mmrag ui stops its Streamlit child itself
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def ask(page: Page, question: str, n: int) -> Locator:
    """Type ``question`` into the chat input; the ``n``-th answer (from 1), once it has its images."""
    from playwright.sync_api import expect

    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(question)
    box.press("Enter")
    answer = page.get_by_test_id("stChatMessage").nth(2 * n - 1)
    expect(answer).to_contain_text("No LLM was used", timeout=60_000)
    expect(answer.get_by_test_id("stImage").first).to_be_visible(timeout=30_000)
    expect(answer).to_be_in_viewport()  # the answer and
    expect(box).to_be_in_viewport()  # the input it was asked in are on screen together
    return answer


def test_ask_enlarge_and_page_in_a_real_browser(chromium: str, served: int, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    shots = tmp_path / "screenshots"
    shots.mkdir()

    def shot(page: Page, name: str) -> None:
        path = shots / f"{name}.png"
        page.screenshot(path=str(path))
        print(f"screenshot: {path}")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"http://127.0.0.1:{served}/", timeout=60_000)
            page.get_by_test_id("stChatInputTextArea").wait_for(timeout=60_000)
            expect(page.get_by_role("button", name="Show me a").first).to_be_visible(timeout=30_000)  # examples
            assert page.get_by_test_id("stAppDeployButton").count() == 0  # no Deploy button
            shot(page, "1-empty-chat")

            tabs = page.get_by_role("tab")
            answer = ask(page, "a red circle", 1)  # the Image tab is showing
            expect(answer).not_to_contain_text("/kb/")  # short names, not absolute paths
            shot(page, "2-asked-from-the-image-tab")
            tabs.filter(has_text="Knowledge base").click()
            ask(page, "a blue star", 2)
            shot(page, "3-asked-from-the-knowledge-base-tab")

            # the answer's text links each image to its place in the grid
            link = answer.locator("a[href^='#mmrag-h1-img-']").first
            target = page.locator(f"[id='{link.get_attribute('href')[1:]}']")  # type: ignore[index]
            link.click()
            expect(target).to_be_in_viewport()

            # Enlarge: the original at the dialog's full width, larger than in the grid, with caption, source, score
            grid_image = answer.get_by_test_id("stImage").first.locator("img")
            grid_width = grid_image.bounding_box()["width"]  # type: ignore[index]
            answer.get_by_role("button", name="Enlarge").first.click()
            dialog = page.get_by_role("dialog")
            expect(dialog).to_be_visible(timeout=30_000)
            expect(dialog).to_contain_text("Source:")
            expect(dialog).to_contain_text("Score (relevance)")
            big = dialog.get_by_test_id("stImage").locator("img")
            expect(big).to_be_visible()
            big_width = big.bounding_box()["width"]  # type: ignore[index]
            assert big_width > 2 * grid_width, (big_width, grid_width)
            shot(page, "4-enlarged")
            page.keyboard.press("Escape")
            expect(dialog).to_be_hidden()

            # the gallery pages
            tools = page.get_by_test_id("stTabPanel").filter(has_text="Filter images")
            expect(tools).to_contain_text("48 images match; showing 1–24 (page 1 of 2).")
            tools.get_by_role("button", name="Next ›").click()
            expect(tools).to_contain_text("48 images match; showing 25–48 (page 2 of 2).", timeout=30_000)
            tools.get_by_role("button", name="Next ›").scroll_into_view_if_needed()
            expect(page.get_by_test_id("stChatInputTextArea")).to_be_in_viewport()  # the tools scroll, not the page
            shot(page, "5-gallery-page-2")
        finally:
            browser.close()
