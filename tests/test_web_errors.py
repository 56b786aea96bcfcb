"""An internal error is a 500 with a generic page, the security headers and the details in the log only."""

from __future__ import annotations

import logging

import pytest

from monitor.app.service import incidents as service
from monitor.core.errors import StorageError
from tests.test_web_incidents import open_incident
from tests.web_helpers import Console


@pytest.fixture
def console(db, tmp_path):
    with Console(db, tmp_path) as c:
        yield c


@pytest.mark.parametrize("error", [
    StorageError("database error on postgresql://app@db/yq: OperationalError: [SQL: UPDATE incidents SET …]"),
    RuntimeError("unexpected"),
])
def test_an_internal_error_shows_nothing_of_it_and_is_logged(console, db, monkeypatch, caplog, error):
    iid = open_incident(db)

    def boom(*_args, **_kwargs):
        raise error

    monkeypatch.setattr(service, "acknowledge", boom)
    client = console.login("responder")
    with caplog.at_level(logging.ERROR, logger="monitor.web.app"):
        resp = client.post(f"/incidents/{iid}/ack", data=console.form(client))
    assert resp.status_code == 500
    assert "服务器内部错误" in resp.text and "[SQL:" not in resp.text and "postgresql://" not in resp.text
    assert "content-security-policy" in resp.headers and resp.headers["x-frame-options"] == "DENY"
    assert any(f"/incidents/{iid}/ack failed" in r.getMessage() for r in caplog.records)


def test_escalate_now_moves_nothing_when_the_incident_changed_since_it_was_read(db):
    """The daemon paging a step between the console's read and write: the write is refused, never a skipped step."""
    from monitor.storage import incidents as store

    iid = open_incident(db)
    with db.session() as s:
        seen = store.get(s, iid)
        store.update(s, iid, escalation_step=seen.escalation_step + 1)  # the daemon's reminder went out meanwhile
        expected = {"status": "open", "escalation_step": seen.escalation_step,
                    "escalation_round": seen.escalation_round}
        assert not store.update_if(s, iid, expected, next_escalation_at=seen.opened_at)
        assert store.update_if(s, iid, expected | {"escalation_step": seen.escalation_step + 1},
                               next_escalation_at=seen.opened_at)
        assert store.get(s, iid).next_escalation_at == seen.opened_at
