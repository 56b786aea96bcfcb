"""`monitor users add|list|set-role|passwd|disable|enable`: who may log in to the web console.

Roles: viewer (reads), responder (works incidents), admin (also silences and users) — decided by
:mod:`monitor.app.service.users`. Passwords are prompted twice (hidden), or read from standard input
with ``--password-stdin`` (scripts: ``printf '%s\\n' "$PW" | monitor users add 小王 --password-stdin``).
Registered on the main app by one import line in :mod:`monitor.cli.main`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from monitor.cli.main import ConfigOpt, _ctx, _local, _now, app, cli_errors, out
from monitor.cli.tables import Styled, print_table
from monitor.core.errors import UsageError

users_app = typer.Typer(help="Users of the web console (roles: viewer, responder, admin).", no_args_is_help=True)
app.add_typer(users_app, name="users")
ROLE_HELP = "viewer (read only), responder (ack, resolve, notes, steps, labels) or admin (also silences, users)."
StdinOpt = typer.Option(False, "--password-stdin", help="Read the password from the first line of standard input.")


def _service():
    from monitor.app.service import users  # argon2 and the database: only for these commands

    return users


def _password(from_stdin: bool) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise UsageError("--password-stdin: no password on standard input")
        return password
    return typer.prompt("Password", hide_input=True, confirmation_prompt=True)


@users_app.command("add")
@cli_errors
def add(name: str = typer.Argument(..., help="Login name (no spaces)."),
        role: str = typer.Option("responder", "--role", help=ROLE_HELP),
        password_stdin: bool = StdinOpt, config: Optional[Path] = ConfigOpt) -> None:
    """Add a user; the password is prompted twice."""
    ctx = _ctx(config)
    _service().check_role(role)  # a bad --role fails before the password prompt
    user = _service().add(ctx, name, _password(password_stdin), role=role, now=_now())
    out.print(f"user {user.name} added ({user.role})", highlight=False)


@users_app.command("list")
@cli_errors
def listing(config: Optional[Path] = ConfigOpt,
            as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List users: role, disabled, last login."""
    ctx = _ctx(config)
    rows = _service().listing(ctx)
    if as_json:
        print(json.dumps([{"name": u.name, "role": u.role, "disabled": u.disabled,
                           "created_at": u.created_at.isoformat(),
                           "last_login_at": u.last_login_at and u.last_login_at.isoformat()} for u in rows],
                         ensure_ascii=False, indent=2))
        return
    if not rows:
        typer.echo("no users (add one: monitor users add NAME --role responder)")
        return
    print_table(out, "用户 users", ("用户", "角色", "状态", "创建", "上次登录"), [
        (u.name, u.role, Styled("已停用", "red") if u.disabled else Styled("启用", "green"),
         _local(u.created_at, ctx.tz), _local(u.last_login_at, ctx.tz))
        for u in rows])


@users_app.command("set-role")
@cli_errors
def set_role(name: str, role: str = typer.Argument(..., help=ROLE_HELP), config: Optional[Path] = ConfigOpt) -> None:
    """Change a user's role (takes effect on their next request)."""
    user = _service().set_role(_ctx(config), name, role)
    out.print(f"user {user.name} is now {user.role}", highlight=False)


@users_app.command("passwd")
@cli_errors
def passwd(name: str, password_stdin: bool = StdinOpt, config: Optional[Path] = ConfigOpt) -> None:
    """Set a user's password; their open sessions end."""
    ctx = _ctx(config)
    _service().set_password(ctx, name, _password(password_stdin))
    out.print(f"password of {name} changed; their sessions have ended", highlight=False)


@users_app.command("disable")
@cli_errors
def disable(name: str, config: Optional[Path] = ConfigOpt) -> None:
    """Disable a user: they cannot log in, and their open sessions end."""
    _service().disable(_ctx(config), name)
    out.print(f"user {name} disabled", highlight=False)


@users_app.command("enable")
@cli_errors
def enable(name: str, config: Optional[Path] = ConfigOpt) -> None:
    """Enable a disabled user again."""
    _service().disable(_ctx(config), name, disabled=False)
    out.print(f"user {name} enabled", highlight=False)
