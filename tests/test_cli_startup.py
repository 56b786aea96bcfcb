"""What the command line loads to start (issue 11): only what the command uses.

Each command runs in a fresh process (the modules a test process already holds would hide an
import), and reports which of the heavy modules it loaded. Timing lives in
tests/bench/bench_startup.py; here only what is imported, and that skipping Alembic on a current
schema still migrates one that is not.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from typer.testing import CliRunner

from alerts.incidents import IncidentManager
from alerts.rules.base import Match
from monitor.cli import app
from monitor.cli.tables import Styled, fit, fold, render
from monitor.core.severity import Severity
from monitor.storage import Database, schema
from monitor.storage.database import MIGRATIONS

ROOT = Path(__file__).resolve().parents[1]
T0 = datetime(2026, 3, 15, 12, 0, tzinfo=timezone.utc)
HEAVY = ("alembic", "monitor.app.pipeline", "monitor.app.daemon", "monitor.app.reports", "monitor.web", "starlette",
         "uvicorn", "jieba", "numpy", "matplotlib", "argon2")

RUN = """
import json, sys
sys.argv = ["monitor", *json.loads(sys.argv[1])]
from monitor.cli import main
try:
    main()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.stderr)
"""


def run_cli(*args: str) -> tuple[int, str, set[str]]:
    """(exit code, stdout, modules loaded) of ``monitor ARGS`` in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    done = subprocess.run([sys.executable, "-c", RUN, json.dumps(list(args))], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    report = json.loads(done.stderr.strip().splitlines()[-1])
    return report["code"], done.stdout, set(report["modules"])


def loaded(modules: set[str], names) -> list[str]:
    return [n for n in names if n in modules]


@pytest.fixture
def config_file(db, tmp_path):
    path = tmp_path / "monitor.yaml"
    path.write_text(f"storage:\n  url: {json.dumps(db.url)}\n"
                    "sources:\n  - name: weibo\n    type: rss\n    url: https://127.0.0.1:9/feed\n", encoding="utf-8")
    return path


def test_help_loads_neither_the_config_nor_the_database():
    code, out, modules = run_cli("--help")
    assert code == 0 and "incidents" in out and "report" in out
    assert loaded(modules, ("sqlalchemy", "pydantic", "monitor.app", "alerts", "sources", "nlp", *HEAVY)) == []


def test_listing_incidents_loads_no_migration_tool_daemon_console_or_nlp(db, config_file):
    match = Match("firing", "负面激增", "negative_spike", "鲜丰奶茶", T0, Severity.III, "「鲜丰奶茶」负面声量激增", {})
    IncidentManager(db).handle([match], T0)
    code, out, modules = run_cli("incidents", "list", "--config", str(config_file))
    assert code == 0 and "鲜丰奶茶" in out and "未处理" in out
    assert loaded(modules, HEAVY) == []
    code, _, modules = run_cli("status", "--config", str(config_file))
    assert code == 1  # no daemon
    assert loaded(modules, HEAVY) == []


def test_a_new_database_is_still_migrated_by_the_first_command(tmp_path):
    config = tmp_path / "monitor.yaml"
    config.write_text(f"data_dir: {json.dumps(str(tmp_path / 'data'))}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["incidents", "list", "--config", str(config)], catch_exceptions=False)
    assert result.exit_code == 0 and result.output.strip() == "no incidents"
    db = Database(f"sqlite:///{tmp_path / 'data' / 'monitor.db'}")
    assert schema.current_revision(db) == schema.head_revision()
    db.dispose()


VERSION_FILES = {"a": 'revision = "a"\ndown_revision = None\n',
                 "b": 'revision: str = "b"\ndown_revision: str | None = "a"\n',
                 "c": "revision = 'c'\ndown_revision = 'a'\n"}


def test_head_revision_is_alembics(tmp_path):
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert schema.head_revision() == ScriptDirectory.from_config(cfg).get_current_head()
    for name, files in (("chain", "ab"), ("two_heads", "abc")):
        versions = tmp_path / name
        versions.mkdir()
        for f in files:
            (versions / f"{f}.py").write_text(VERSION_FILES[f], encoding="utf-8")
    assert schema.head_revision(tmp_path / "chain") == "b"
    assert schema.head_revision(tmp_path / "two_heads") is None  # Alembic decides


def test_a_database_one_revision_behind_is_upgraded(tmp_path):
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    previous = ScriptDirectory.from_config(cfg).get_revision(schema.head_revision()).down_revision
    db = Database(f"sqlite:///{tmp_path / 'monitor.db'}")
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, previous)
    assert schema.current_revision(db) == previous and not schema.is_current(db)
    config = tmp_path / "monitor.yaml"
    config.write_text(f"storage:\n  url: {json.dumps(db.url)}\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["incidents", "list", "--config", str(config)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert schema.is_current(db)
    db.dispose()


# -- the tables ---------------------------------------------------------------------------------

def test_a_table_is_drawn_as_rich_draws_it():
    lines = render("事件", ("#", "级别", "原因"), [("1", Styled("III", "bold red"), "负面激增"), ("22", "IV", "-")], 80)
    assert lines == [
        " " * 10 + "事件" + " " * 10,  # centred over the table's 24 cells
        "┏━━━━┳━━━━━━┳━━━━━━━━━━┓",
        "┃ #  ┃ 级别 ┃ 原因     ┃",
        "┡━━━━╇━━━━━━╇━━━━━━━━━━┩",
        "│ 1  │ III  │ 负面激增 │",
        "│ 22 │ IV   │ -        │",
        "└────┴──────┴──────────┘",
    ]


def test_styles_are_painted_on_the_text_and_never_on_the_padding():
    paint = lambda text, style: f"<{style}>{text}</>"  # noqa: E731
    lines = render(None, ("a",), [(Styled("x", "red"),)], 80, paint)
    assert lines[1] == "┃ <bold>a</> ┃" and lines[3] == "│ <red>x</> │"


def test_the_widest_columns_give_way_to_fit_the_console():
    assert fit([3, 10, 40], [1, 2, 2], 80) == [3, 10, 40]
    assert fit([3, 10, 40], [1, 2, 2], 30) == [3, 10, 17]
    assert fit([3, 30, 40], [1, 2, 2], 30) == [3, 13, 14]
    assert fit([3, 30, 40], [1, 2, 2], 5) == [3, 4, 4]  # wider than the console rather than unreadable


def test_cells_fold_at_spaces_else_anywhere_counting_wide_characters_as_two():
    assert fold("负面声量激增", 5) == ["负面", "声量", "激增"]
    assert fold("timed out after 30s", 10) == ["timed out", "after 30s"]
    assert fold("abcdefghij", 4) == ["abcd", "efgh", "ij"]
    assert fold("a\nb", 4) == ["a", "b"]
    assert fold("", 4) == [""]


def test_the_replay_commands_default_topic_is_the_replays():
    from monitor.app.replay import DEFAULT_TOPIC
    from monitor.cli import replay

    assert replay.DEFAULT_TOPIC == DEFAULT_TOPIC  # spelled out in the CLI so that --help loads no rules
