"""Real-browser fixtures: one headless Chromium per session, a page that records what went wrong."""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
    "--disable-background-networking", "--disable-component-update", "--no-first-run",
]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}


def pytest_collection_modifyitems(config, items):
    here = os.path.dirname(__file__)
    for item in items:
        if str(item.fspath).startswith(here):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def playwright_driver():
    """The Playwright driver (one per session), for tests that launch their own browser
    (a persistent profile: a phone that is closed and opened again)."""
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"{CHROMIUM} is missing: install it with `apt-get install -y chromium "
                    "fonts-noto-cjk` to run the browser tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright_driver):
    """Headless Chromium from the system (never a downloaded one)."""
    chromium = playwright_driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    yield chromium
    chromium.close()


class PageRecord:
    """What a page did that a test should look at afterwards."""

    def __init__(self) -> None:
        self.console_errors: list[str] = []
        self.foreign_requests: list[str] = []
        self.dialogs: list[str] = []


@pytest.fixture
def page(browser):
    """A 1920×1080 page; console errors, dialogs and requests off this machine are recorded
    (the foreign ones are also aborted: the wall screen must work offline)."""
    context = browser.new_context(viewport={"width": 1920, "height": 1080}, locale="zh-CN",
                                  timezone_id="Asia/Shanghai")
    pg = context.new_page()
    record = PageRecord()
    pg.on("console", lambda msg: record.console_errors.append(msg.text)
          if msg.type == "error" else None)
    pg.on("pageerror", lambda exc: record.console_errors.append(f"page error: {exc}"))

    def on_dialog(dialog):
        record.dialogs.append(dialog.message)
        dialog.dismiss()

    pg.on("dialog", on_dialog)

    def route(r):
        url = r.request.url
        if urlsplit(url).scheme in ("data", "blob") or urlsplit(url).hostname in LOCAL_HOSTS:
            r.continue_()
        else:
            record.foreign_requests.append(url)
            r.abort()

    pg.route("**/*", route)
    pg.record = record
    yield pg
    context.close()


class Feed:
    """A feed client on `/feed` over a websocket; connects again after a server restart."""

    def __init__(self, url: str, token: str) -> None:
        import socketio

        self.url, self.token = url, token
        self.client = socketio.Client(reconnection=False)

    def send(self, reports):
        """Send one report or a list in one `report` event; assert every ack is ok."""
        if not self.client.connected:
            self.client.connect(self.url, namespaces=["/feed"], auth={"token": self.token},
                                transports=["websocket"], wait_timeout=10)
        acks = self.client.call("report", reports, namespace="/feed", timeout=60)
        for ack in acks if isinstance(acks, list) else [acks]:
            assert ack.get("ok"), ack
        return acks

    def close(self) -> None:
        if self.client.connected:
            self.client.disconnect()


@pytest.fixture
def feed(server):
    """A registered feed of the test server."""
    client = Feed(server.url, server.add_feed("browser-test"))
    yield client
    client.close()

