"""One real-browser test: `mmrag ui` served headless, driven by headless Chromium through Playwright."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.cli import isolated_environ
from tests.support.kbs import copy_kb
from tests.support.net import free_port, wait_for_port
from tests.support.ui import CHROMIUM_ARGS, REQUIRE_BROWSER


def test_ask_in_a_real_browser_shows_images(tmp_path: Path, ui_demo_db: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        if REQUIRE_BROWSER:
            pytest.fail("chromium is not installed, and MMRAG_REQUIRE_BROWSER=1")
        pytest.skip("chromium is not installed (set MMRAG_REQUIRE_BROWSER=1 to make this a failure)")
    from playwright.sync_api import expect, sync_playwright

    db = copy_kb(ui_demo_db, tmp_path / "kb")
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
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 1000})
                page.goto(f"http://127.0.0.1:{port}/", timeout=60_000)
                box = page.get_by_test_id("stChatInputTextArea")
                box.wait_for(timeout=60_000)
                box.fill("a red circle")
                box.press("Enter")
                answer = page.get_by_test_id("stChatMessage").nth(1)
                expect(answer).to_contain_text("No LLM was used", timeout=60_000)
                images = answer.get_by_test_id("stImage")
                expect(images.first).to_be_visible(timeout=30_000)
                assert images.count() >= 1
                shot = tmp_path / "browser-answer.png"
                page.screenshot(path=str(shot), full_page=True)
                print(f"screenshot: {shot}")
            finally:
                browser.close()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()
