"""`monitor users` and `monitor web` against a real database: passwords prompted twice or read from
stdin, stored as Argon2 hashes; roles; disabling; the console served alone by `monitor web`."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
from datetime import datetime, timezone

import httpx
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from monitor.app.config import parse_config
from monitor.app.service import Context, users
from monitor.cli import app
from monitor.core.errors import ConfigError, UsageError
from monitor.storage.models import UserRow
from monitor.web.app import settings_from_config, stored_secret

runner = CliRunner()
NOW = datetime(2026, 3, 15, 4, 0, tzinfo=timezone.utc)


@pytest.fixture
def c(db, tmp_path):
    path = tmp_path / "monitor.yaml"
    path.write_text(f"storage:\n  url: {json.dumps(db.url)}\ndata_dir: {tmp_path}\n", encoding="utf-8")
    return ("--config", str(path))


def cli(*args: str, input: str | None = None):
    return runner.invoke(app, list(args), input=input, catch_exceptions=False)


def listed(c) -> dict[str, dict]:
    result = cli("users", "list", *c, "--json")
    assert result.exit_code == 0, result.output
    return {u["name"]: u for u in json.loads(result.output)}


def test_add_prompts_twice_and_stores_an_argon2_hash(c, db):
    result = cli("users", "add", "小王", "--role", "responder", *c, input="long enough pw\nlong enough pw\n")
    assert result.exit_code == 0, result.output
    assert "user 小王 added (responder)" in result.output
    with db.session() as s:
        row = s.scalar(select(UserRow))
        assert row.name == "小王" and row.role == "responder" and not row.disabled
        assert row.password_hash.startswith("$argon2id$") and "long enough pw" not in row.password_hash
    assert listed(c)["小王"]["role"] == "responder"


def test_add_from_stdin_and_every_refusal(c):
    ok = cli("users", "add", "ops", "--role", "admin", "--password-stdin", *c, input="s3cret-password\n")
    assert ok.exit_code == 0, ok.output
    for args, stdin, message in [
        (("users", "add", "ops", "--password-stdin"), "another-password\n", "already exists"),
        (("users", "add", "x", "--role", "boss", "--password-stdin"), "another-password\n", "--role: expected one of"),
        (("users", "add", "y", "--password-stdin"), "short\n", "at least 8 characters"),
        (("users", "add", "z", "--password-stdin"), "\n", "no password on standard input"),
        (("users", "add", "有 空格", "--password-stdin"), "another-password\n", "without spaces"),
        (("users", "disable", "nobody"), None, "no user 'nobody'"),
    ]:
        result = cli(*args, *c, input=stdin)
        assert result.exit_code == 1 and message in result.output, (args, result.output)


def test_set_role_passwd_disable_enable(c, db):
    cli("users", "add", "小李", "--role", "viewer", "--password-stdin", *c, input="first-password\n")
    ctx = Context(parse_config(f"storage: {{url: {json.dumps(db.url)}}}\n"), db)
    assert cli("users", "set-role", "小李", "admin", *c).exit_code == 0
    assert listed(c)["小李"]["role"] == "admin"
    result = cli("users", "passwd", "小李", *c, input="second-password\nsecond-password\n")
    assert result.exit_code == 0 and "sessions have ended" in result.output
    assert users.authenticate(ctx, "小李", "first-password", now=NOW) is None
    user = users.authenticate(ctx, "小李", "second-password", now=NOW)
    assert user is not None and user.last_login_at == NOW and user.may("responder")
    assert cli("users", "disable", "小李", *c).exit_code == 0
    assert listed(c)["小李"]["disabled"] is True
    assert users.authenticate(ctx, "小李", "second-password", now=NOW) is None
    assert cli("users", "enable", "小李", *c).exit_code == 0
    assert users.authenticate(ctx, "小李", "second-password", now=NOW) is not None


def test_roles_are_ordered():
    assert users.allows("admin", "responder") and users.allows("responder", "viewer")
    assert not users.allows("viewer", "responder") and not users.allows("responder", "admin")
    with pytest.raises(UsageError):
        users.allows("viewer", "root")


def test_the_session_secret_is_made_once_and_kept_private(tmp_path):
    secret = stored_secret(tmp_path / "data")
    path = tmp_path / "data" / "console_secret"
    assert len(secret) >= 40 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stored_secret(tmp_path / "data") == secret  # sessions survive a restart
    config = parse_config(f"data_dir: {tmp_path / 'data'}\nconsole: {{secret: from-env-xxxxxxxxxxxxxxxxxxxx}}\n")
    assert settings_from_config(config).secret == "from-env-xxxxxxxxxxxxxxxxxxxx"


def test_console_config():
    env = {"CONSOLE_SECRET": ""}
    config = parse_config("console:\n  secret: ${CONSOLE_SECRET:-}\n  public_url: https://yq.example.com/\n", env=env)
    assert config.console.secret is None and config.console.public_url == "https://yq.example.com"
    assert config.console.idle_timeout.total_seconds() == 12 * 3600 and "console" in config.model_fields_set
    for text, message in [("console: {public_url: ftp://x}", "console.public_url: expected a URL starting with http"),
                          ("console: {secret: short}", "console.secret: a session secret needs at least 16"),
                          ("console: {idle_timeout: 0s}", "console.idle_timeout")]:
        with pytest.raises(ConfigError, match=re.escape(message)):
            parse_config(text)


def test_monitor_web_serves_the_console_alone(c, tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "monitor", "web", *c, "--bind", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        line = ""
        for line in proc.stdout:
            if "console:" in line:
                break
        url = re.search(r"(http://127\.0\.0\.1:\d+)/", line).group(1)
        page = httpx.get(url + "/login", timeout=10)
        assert page.status_code == 200 and "登录" in page.text
        assert httpx.get(url + "/", timeout=10).headers["location"] == "/login?next=/"
        assert httpx.post(url + "/ingest/kefu", timeout=10).status_code in (403, 404)  # no daemon routes here
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
