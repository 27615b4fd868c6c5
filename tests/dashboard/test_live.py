"""A real sweep runs while the dashboard serves it: its page, in headless Chromium, grows without a reload."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time

import pytest
from browser import ARTIFACTS, chromium_path, headless_chromium

from tuning_service.cli import main

# One trial at a time: epochs arrive over the whole sweep, not in one burst a loaded
# machine's poll (state, parts, every figure) can miss.
TRIALS, EPOCHS = 4, 6
# The driver records the sweep's first epoch once the page is open, and pauses this long after
# each: the epochs then reach the database over several of the page's polls (one a second)
# however fast the trials train and however late the overview (polled every 10 s while nothing
# runs) shows the sweep.
EPOCH_PACE_S = 0.4


def start_dashboard(db_url: str) -> tuple[subprocess.Popen[str], str]:
    """`tuning-service dashboard` in its own process on a free loopback port; its URL from the start line."""
    server = subprocess.Popen(
        [sys.executable, "-m", "tuning_service", "dashboard", "--db", db_url, "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
    )
    line = server.stderr.readline()
    found = re.search(r"at (http://127\.0\.0\.1:\d+)/ \(loopback only", line)
    if found is None:
        server.kill()
        raise AssertionError(f"the dashboard did not start: {line}{server.stderr.read()}")
    return server, found.group(1)


class Watcher(threading.Thread):
    """Chromium on the overview until the sweep appears there (live), then on its page: samples
    the finished-trial count and the curves' points until the page says the sweep finished."""

    def __init__(self, base: str, chromium: str, timeout_s: float = 240.0) -> None:
        super().__init__(daemon=True)
        self.base, self.chromium, self.timeout_s = base, chromium, timeout_s
        self.samples: list[tuple[int, int]] = []
        self.errors: list[str] = []
        self.elsewhere: list[str] = []
        self.navigations: list[str] = []
        self.kept_marker = False
        self.tooltip = ""
        self.failure: BaseException | None = None
        self.on_page = threading.Event()  # the sweep's page is drawn and sampled from now on

    def run(self) -> None:
        try:
            self._watch()
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.failure = exc
        finally:
            self.on_page.set()  # a failed watcher holds no sweep back

    def _watch(self) -> None:
        with headless_chromium(self.chromium) as browser:
            page = browser.new_page(viewport={"width": 1250, "height": 1000})
            page.on("console", lambda msg: self.errors.append(msg.text) if msg.type == "error" else None)
            page.on("pageerror", lambda exc: self.errors.append(str(exc)))
            page.on(
                "request",
                lambda r: None if r.url.startswith(self.base + "/") else self.elsewhere.append(r.url),
            )
            page.route(re.compile(r"^(?!" + re.escape(self.base) + r"/)"), lambda route: route.abort())
            page.goto(self.base + "/")
            # The overview shows the sweep by itself once its driver records it.
            page.wait_for_selector("a[href^='/sweeps/']", timeout=self.timeout_s * 1000)
            # Its link is followed as it reads: a click can land while a live refresh of the
            # overview, which changes as the sweep's trials start, puts the link in anew.
            page.goto(self.base + page.get_attribute("a[href^='/sweeps/']", "href"))
            page.wait_for_selector("#finished-count")
            # Polled from here: the page's CSP (script-src 'self') refuses Playwright's eval'd predicates.
            while page.get_attribute("#fig-curves", "data-drawn") is None:
                time.sleep(0.1)
            page.evaluate("window.__loadedOnce = true")
            page.on("framenavigated", lambda frame: self.navigations.append(frame.url))
            self.on_page.set()
            deadline = time.monotonic() + self.timeout_s
            while time.monotonic() < deadline:
                finished = int(page.inner_text("#finished-count"))
                points = int(page.get_attribute("#fig-curves", "data-points") or 0)
                if not self.samples or self.samples[-1] != (finished, points):
                    self.samples.append((finished, points))
                status = page.inner_text("#sweep-status")
                if status.startswith("finished") and finished == TRIALS:
                    break
                time.sleep(0.3)
            page.wait_for_timeout(1500)  # the last redraw
            self.samples.append(
                (
                    int(page.inner_text("#finished-count")),
                    int(page.get_attribute("#fig-curves", "data-points")),
                )
            )
            self.kept_marker = page.evaluate("window.__loadedOnce === true")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            # Hover the end of the best curve: the tooltip names its trial and config (README's screenshot).
            x, y = page.evaluate(
                "() => { const p = document.querySelector('#fig-curves path.line');"
                " const at = p.getPointAtLength(p.getTotalLength()); const m = p.getScreenCTM();"
                " return [at.x * m.a + m.e, at.y * m.d + m.f]; }"
            )
            page.mouse.move(x, y)
            page.wait_for_selector("#tooltip:not([hidden])")
            self.tooltip = page.inner_text("#tooltip")
            page.screenshot(path=str(ARTIFACTS / "dashboard-sweep.png"), full_page=False)


@pytest.mark.integration
def test_a_running_sweeps_page_grows_without_a_reload(ray_local, tmp_path, monkeypatch):
    from tuning_service.store import open_store
    from tuning_service.store.records import Store

    chromium = chromium_path()
    storage = tmp_path / "results"
    db_url = f"sqlite:///{storage / 'tuning.db'}"
    open_store(db_url).close()  # the dashboard never creates a database: the first sweep's store does
    server, base = start_dashboard(db_url)
    watcher = Watcher(base, chromium)
    record_epoch = Store.record_epoch

    def paced(self, *args, **kwargs):
        watcher.on_page.wait(timeout=120)
        record_epoch(self, *args, **kwargs)
        time.sleep(EPOCH_PACE_S)

    monkeypatch.setattr(Store, "record_epoch", paced)  # the sweep's driver is this process
    try:
        watcher.start()
        argv = ["-q", "run", "digits", "--searcher", "random", "--scheduler", "asha"]
        argv += ["--num-samples", str(TRIALS), "--max-epochs", str(EPOCHS), "--max-concurrent", "1"]
        assert main([*argv, "--data-limit", "300", "--storage", str(storage)]) == 0
        watcher.join(timeout=120)
    finally:
        server.terminate()
        server.wait(timeout=20)
        server.stderr.close()
    with open_store(db_url) as store:
        (sweep,) = store.sweeps()
        recorded = sum(store.epoch_counts([sweep.sweep_id]).values())
    assert watcher.failure is None, repr(watcher.failure)
    assert not watcher.is_alive()
    finished = [f for f, _ in watcher.samples]
    points = [p for _, p in watcher.samples]
    # Both grew while the page stayed open: never down, several steps up, to the whole sweep.
    assert finished == sorted(finished) and len(set(finished)) >= 2 and finished[-1] == TRIALS, (
        watcher.samples
    )
    assert points == sorted(points) and len(set(points)) >= 3 and points[-1] == recorded, watcher.samples
    assert watcher.kept_marker and watcher.navigations == []  # no reload
    assert watcher.errors == []
    assert re.search(
        r"trial \S+ \((completed|stopped early), best [0-9.]+\): .*learning_rate=", watcher.tooltip
    )
    assert watcher.elsewhere == []  # every request went to the dashboard's own origin
