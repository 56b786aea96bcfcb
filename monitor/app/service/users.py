"""Users of the web console: add, list, set a role or a password, disable, and log in.

Roles are ordered ``viewer < responder < admin`` (:func:`allows` is the one place that decides):
a viewer reads; a responder also works incidents (ack, resolve, notes, steps, labels); an admin
also manages silences and users. Passwords are hashed with Argon2id (argon2-cffi's
``PasswordHasher``, RFC 9106 low-memory profile); :func:`authenticate` spends the same work on an
unknown or disabled user as on a real one, so response times do not tell which names exist.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from monitor.app.service.context import Context
from monitor.core.errors import UsageError
from monitor.storage import users as store
from monitor.storage.users import UserRecord

__all__ = ["ROLES", "User", "add", "allows", "authenticate", "disable", "get", "listing", "set_password", "set_role"]

ROLES = ("viewer", "responder", "admin")  # each may do everything the ones before it may
MIN_PASSWORD = 8
_hasher = PasswordHasher()
_dummy_lock = threading.Lock()
_dummy_hash: str | None = None


@dataclass(frozen=True)
class User:
    id: int
    name: str
    role: str
    disabled: bool
    created_at: datetime
    last_login_at: datetime | None
    stamp: str  # changes with the password: a session carries it, so a new password ends old sessions

    def may(self, role: str) -> bool:
        return allows(self.role, role)


def allows(role: str, needed: str) -> bool:
    """True when ``role`` may do what ``needed`` may (viewer < responder < admin)."""
    return ROLES.index(role) >= ROLES.index(check_role(needed))


def check_role(role: str) -> str:
    if role not in ROLES:
        raise UsageError(f"--role: expected one of {', '.join(ROLES)}, got {role!r}")
    return role


def _user(record: UserRecord) -> User:
    stamp = hashlib.sha256(record.password_hash.encode()).hexdigest()[:16]
    return User(record.id, record.name, record.role, record.disabled, record.created_at, record.last_login_at, stamp)


def _name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > 100 or any(c.isspace() or not c.isprintable() for c in name):
        raise UsageError(f"a user name is 1 to 100 characters without spaces, got {name!r}")
    return name


def _hash(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UsageError(f"a password needs at least {MIN_PASSWORD} characters")
    return _hasher.hash(password)


def add(ctx: Context, name: str, password: str, *, role: str, now: datetime) -> User:
    name, role, password_hash = _name(name), check_role(role), _hash(password)
    with ctx.db.session() as s:
        if store.by_name(s, name) is not None:
            raise UsageError(f"user {name!r} already exists (change it with `monitor users passwd` or `set-role`)")
        return _user(store.add(s, name, password_hash, role, now))


def listing(ctx: Context) -> list[User]:
    with ctx.db.session() as s:
        return [_user(r) for r in store.listing(s)]


def get(ctx: Context, user_id: int) -> User | None:
    """The user a session names (None when gone)."""
    with ctx.db.session() as s:
        record = store.get(s, user_id)
    return _user(record) if record is not None else None


def _update(ctx: Context, name: str, **values) -> User:
    with ctx.db.session() as s:
        record = store.update(s, name, **values)
    if record is None:
        raise UsageError(f"no user {name!r}")
    return _user(record)


def set_role(ctx: Context, name: str, role: str) -> User:
    return _update(ctx, name, role=check_role(role))


def disable(ctx: Context, name: str, *, disabled: bool = True) -> User:
    """Disable (or enable again) a user: a disabled user cannot log in and their sessions end."""
    return _update(ctx, name, disabled=disabled)


def set_password(ctx: Context, name: str, password: str) -> User:
    return _update(ctx, name, password_hash=_hash(password))


def _dummy() -> str:
    global _dummy_hash
    with _dummy_lock:
        if _dummy_hash is None:
            _dummy_hash = _hasher.hash("not a password of anyone")
        return _dummy_hash


def authenticate(ctx: Context, name: str, password: str, *, now: datetime) -> User | None:
    """The user when ``name`` exists, is enabled and ``password`` is theirs; else None (same work either way)."""
    with ctx.db.session() as s:
        record = store.by_name(s, name.strip())
    try:
        _hasher.verify(record.password_hash if record is not None else _dummy(), password)
    except (VerificationError, InvalidHashError):
        return None
    if record is None or record.disabled:
        return None
    values: dict = {"last_login_at": now}
    if _hasher.check_needs_rehash(record.password_hash):  # parameters raised since it was set
        values["password_hash"] = _hasher.hash(password)
    return _update(ctx, record.name, **values)
