"""Real-browser tests of the console: Playwright for Python driving Debian's Chromium against a real
daemon (``python -m monitor run``) on SQLite and, when ``MONITOR_TEST_DATABASE_URL`` is set, PostgreSQL.

One daemon per database for the whole package (starting one costs a few seconds): it serves the
console and a webhook source on a free port of 127.0.0.1; complaints pushed through the webhook open
two incidents (keyword rule 投诉, plan 食品安全舆情预案): 鲜丰奶茶's, left open for the pages to be looked
at, with a hostile complaint among its evidence (``<script>`` in its text and author, a ``javascript:``
URL), and 星河手机's, which the end-to-end test works to resolution. Users: 小王 (responder, added with
``monitor users add … --password-stdin`` as an operator would), 访客 (viewer) and 李经理 (admin).
Every test gets its own browser context (its own cookies). Browsers cannot be downloaded here:
Chromium is Debian's (/usr/bin/chromium); without it the suite skips, except in CI where it fails.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from monitor.app.config import load_config
from monitor.app.service import Context
from monitor.app.service import incidents as incident_service
from monitor.app.service import users as user_service
from tests.browser.helpers import (ADMIN, ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, COMPLAINTS, CONFIG, HOSTILE_AUTHOR,
                                   HOSTILE_PUSHED, HOSTILE_TEXT, HOSTILE_URL, PASSWORD, PUSH_TOKEN, RESPONDER,
                                   START_TIMEOUT, TOPIC, VIEWER, WAIT_MS, WORK_COMPLAINTS, WORK_TOPIC, Console,
                                   free_port, log_in, now, wait_until)
from tests.conftest import PG_ENV, _postgres_db, _sqlite_db


def _in_ci() -> bool:
    return bool(os.environ.get("CI"))


def pytest_collection_modifyitems(config, items):
    """No Chromium here: skip with the reason (in CI a missing browser is a failure, not a skip)."""
    if Path(CHROMIUM).exists() or _in_ci():
        return
    skip = pytest.mark.skip(reason=f"browser tests need Chromium at {CHROMIUM} (apt-get install chromium)")
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(skip)


@pytest.fixture(scope="package")
def sentiment_model(tmp_path_factory) -> Path:
    """A tiny model trained on the complaints (no seed lexicon: instant) instead of the default one,
    which takes seconds to build; what the tests look at does not depend on the scores."""
    from nlp.datasets import Example
    from nlp.train import train

    examples = [Example(t, 0) for t in COMPLAINTS + WORK_COMPLAINTS]
    examples += [Example("鲜丰奶茶很好喝，推荐", 1), Example("星河手机拍照清晰，点赞", 1)]
    path = tmp_path_factory.mktemp("model") / "browser-test.json.gz"
    train(examples, algorithm="nb", name="browser-test", workers=1, seed_lexicon=False).save(path)
    return path


def _database(backend: str, tmp: Path) -> Iterator:
    if backend == "sqlite":
        return _sqlite_db(tmp)
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"PostgreSQL browser tests need {PG_ENV} (e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test)")
    return _postgres_db(base)  # a fresh schema, dropped afterwards


def _add_user_with_cli(config_path: Path, name: str, role: str) -> None:
    """As an operator does it: the password on standard input, never on the command line."""
    done = subprocess.run([sys.executable, "-m", "monitor", "users", "add", name, "--role", role, "--password-stdin",
                           "--config", str(config_path)], input=PASSWORD + "\n", capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr


def _healthy(url: str, proc: subprocess.Popen, log: Path) -> bool:
    if proc.poll() is not None:
        tail = log.read_text(encoding="utf-8", errors="replace")[-4000:]
        raise AssertionError(f"the daemon exited with {proc.returncode} before serving:\n{tail}")
    try:
        return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _seed(console: Console) -> None:
    """Push two complaint bursts (the hostile complaint in the first) and wait for the two incidents they open."""
    items = [dict(id="hostile", text=HOSTILE_PUSHED, author=HOSTILE_AUTHOR, url=HOSTILE_URL, followers=1, reposts=0)]
    items += [dict(id=f"c-{i}", text=t, author=f"网友{i}", url=f"https://weibo.com/1/c{i}", followers=100 * i,
                   reposts=i) for i, t in enumerate(COMPLAINTS)]  # all of them evidence (at most 5 are cited)
    items += [dict(id=f"w-{i}", text=t, author=f"机主{i}", url=f"https://tieba.baidu.com/p/{i}", followers=10 * i,
                   reposts=0) for i, t in enumerate(WORK_COMPLAINTS)]
    assert console.push(items)["stored"] == len(items)

    def opened():
        found = {i.topic: i.id for i in incident_service.list_incidents(console.ctx, now())}
        return found if len(found) == 2 else None

    found = wait_until(opened, START_TIMEOUT, "the two incidents", console.log)
    console.incident_id, console.work_id = found[TOPIC], found[WORK_TOPIC]
    for iid in found.values():
        wait_until(lambda: console.view(iid).steps, 10, f"the plan steps of incident {iid}", console.log)
    hostile = [m for m in console.view().mentions if m.external_id == "hostile"]
    assert hostile, f"the hostile complaint is not evidence of incident {console.incident_id}"
    assert (hostile[0].text, hostile[0].author, hostile[0].url) == (HOSTILE_TEXT, HOSTILE_AUTHOR, HOSTILE_URL)
    console.hostile_id = hostile[0].id


@pytest.fixture(scope="package", params=["sqlite", "postgresql"])
def console(request, tmp_path_factory, sentiment_model) -> Iterator[Console]:
    """A real daemon subprocess serving the console on a free port, seeded with an incident and three users."""
    tmp = tmp_path_factory.mktemp(f"console-{request.param}")
    databases = _database(request.param, tmp)
    db = next(databases)  # migrated, empty
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    config_path = tmp / "monitor.yaml"
    config_path.write_text(CONFIG.format(data_dir=tmp / "data", url=db.url, port=port, model=sentiment_model,
                                         token=PUSH_TOKEN, topic=TOPIC, work_topic=WORK_TOPIC), encoding="utf-8")
    log = tmp / "daemon.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "monitor", "run", "--config", str(config_path)],
                                stdout=out, stderr=subprocess.STDOUT, cwd=tmp)
    ctx = Context(load_config(config_path), db)
    console = Console(request.param, url, ctx, log)
    try:  # the users are added while the daemon starts (both take a second or two)
        _add_user_with_cli(config_path, RESPONDER, "responder")
        for name, role in ((VIEWER, "viewer"), (ADMIN, "admin")):
            user_service.add(ctx, name, PASSWORD, role=role, now=now())
        wait_until(lambda: _healthy(url, proc, log), START_TIMEOUT, "the daemon's /healthz", log)
        _seed(console)
        yield console
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # a graceful stop, as systemd does it
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        try:
            next(databases)
        except StopIteration:
            pass  # the database's own cleanup (PostgreSQL: its schema dropped) ran


@pytest.fixture(scope="package")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is missing at {CHROMIUM}; CI installs it (.ci/run: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Dialogs:
    """Every JavaScript dialog (alert/confirm/prompt) a page opened, as "type: message"."""

    seen: list[str] = field(default_factory=list)


@pytest.fixture
def dialogs() -> Dialogs:
    return Dialogs()


@pytest.fixture
def page_factory(browser, console, dialogs):
    """``page_factory(width=1280, height=800, user=None, **context_options)``: a page in a fresh browser
    context (its own cookies) on the console; with ``user``, already logged in as that user (a session
    made once per console by logging in through the login page, then reused: logging in is slow on purpose)."""
    contexts = []

    def new_context(width: int, height: int, **options):
        context = browser.new_context(base_url=console.url, viewport={"width": width, "height": height},
                                      locale="zh-CN", **options)
        contexts.append(context)
        context.set_default_timeout(WAIT_MS)
        return context

    def session_of(user: str) -> dict:
        if user not in console.sessions:
            context = new_context(1280, 800)
            log_in(context.new_page(), user)
            console.sessions[user] = context.storage_state()
        return console.sessions[user]

    def make(width: int = 1280, height: int = 800, *, user: str | None = None, **options):
        if user is not None:
            options["storage_state"] = session_of(user)
        page = new_context(width, height, **options).new_page()

        def on_dialog(dialog):  # recorded, then out of the way (a confirm() the console asks for is accepted)
            dialogs.seen.append(f"{dialog.type}: {dialog.message}")
            dialog.accept() if dialog.type == "confirm" else dialog.dismiss()

        page.on("dialog", on_dialog)
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture
def page(page_factory):
    return page_factory()


@pytest.fixture(scope="package")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
