"""One real-browser test: `mmrag ui` served headless, driven by headless Chromium through Playwright."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.uidemo import build_demo_kb

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"mmrag ui exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise AssertionError(f"mmrag ui did not listen on port {port} within {timeout}s")


def test_ask_in_a_real_browser_shows_images(tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        if os.environ.get("MMRAG_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is not installed, and MMRAG_REQUIRE_BROWSER=1")
        pytest.skip("chromium is not installed (set MMRAG_REQUIRE_BROWSER=1 to make this a failure)")
    from playwright.sync_api import expect, sync_playwright

    db = build_demo_kb(tmp_path / "demo")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MMRAG_")} | {
        "MMRAG_HOME": str(tmp_path / "home"),
        "MMRAG_DB": str(db),
        "MMRAG_MODEL": "toy",
        "MMRAG_TEXT_RUNTIME": "torch",  # no detached ONNX export outliving the server we stop
    }
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "mmrag", "ui", "--port", str(port), "--host", "127.0.0.1", "--headless"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_for_port(port, server)
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
