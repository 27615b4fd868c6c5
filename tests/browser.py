"""Headless Chromium for the browser tests: Debian's build (CI installs it), offline, screenshots kept."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

# Screenshots land here (CI keeps the folder); README's pictures come from them.
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", Path(__file__).resolve().parents[1] / "test-artifacts"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def chromium_path() -> str:
    """Debian's Chromium; the test is skipped without it, except in CI, where it fails."""
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("CI must install Debian's chromium for the browser tests")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    return found


@contextmanager
def headless_chromium(executable: str) -> Iterator[Any]:
    """A Playwright browser on ``executable`` (from `chromium_path`), closed on exit.

    Playwright's sync API belongs to the thread that opened it: call this in the thread that
    drives the pages.
    """
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
