"""The loop the console exists for (issue 12): a responder logs in, finds the
incident in the queue, opens it, acknowledges, ticks a plan step, writes a note, relabels a mention,
silences the topic and resolves — all in a real browser against a real daemon — and every one of
those actions is in the database under the responder's name."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from monitor.app.service import silences as silence_service
from monitor.storage import feedback as feedback_store
from tests.browser.helpers import RESPONDER, WORK_TOPIC, log_in, now


def _submit(page, hook: str) -> None:
    """Click an action control and wait for the answer (post → 303 → the incident page again)."""
    control = page.locator(f'[data-test="{hook}"]')
    with page.expect_navigation():
        control.click()


def test_a_responder_works_the_incident_from_the_browser(page, console, dialogs):
    iid = console.work_id
    log_in(page, RESPONDER)
    expect(page).to_have_url(re.compile(r"/incidents$"))  # the console's home is the queue

    row = page.locator(f'[data-test="incident-row"][data-id="{iid}"]')
    expect(row).to_be_visible()
    expect(row).to_contain_text(WORK_TOPIC)
    with page.expect_navigation():
        row.locator(f'a[href="/incidents/{iid}"]').first.click()
    expect(page).to_have_url(re.compile(rf"/incidents/{iid}$"))

    _submit(page, "ack")
    expect(page.locator('[data-test="incident"]')).to_have_attribute("data-status", "acknowledged")

    _submit(page, "step-1")
    expect(page.locator('[data-test="plan-step"][data-position="1"]')).to_have_attribute("data-status", "done")

    page.locator('[data-test="note-text"]').fill("已联系用户，安排换机")
    _submit(page, "note")
    expect(page.locator('[data-test="notes"]')).to_contain_text("已联系用户，安排换机")

    # The evidence links to each mention's page; the responder corrects a mis-scored one there (in
    # place: htmx swaps the label box) and comes back to the incident.
    mention = next(m for m in console.view(iid).mentions if m.external_id == "w-1")
    with page.expect_navigation():
        page.locator(f'[data-test="evidence"][data-id="{mention.id}"] a[href="/mentions/{mention.id}"]').click()
    page.locator('[data-test="label-neutral"]').click()
    expect(page.locator('[data-test="mention-label"]')).to_have_attribute("data-label", "neutral")
    expect(page.locator('[data-test="corrected-by"]')).to_contain_text(RESPONDER)

    page.goto(f"/incidents/{iid}")
    page.locator('[data-test="silence-duration"]').select_option("2h")
    page.locator('[data-test="silence-reason"]').fill("发布会期间")
    _submit(page, "silence")

    page.locator('[data-test="resolve-note"]').fill("已发声明")
    _submit(page, "resolve")
    expect(page.locator('[data-test="incident"]')).to_have_attribute("data-status", "resolved")
    timeline = page.locator('[data-test="timeline-row"]')
    for kind in ("acknowledged", "step", "note", "silence", "resolved"):  # what the page shows, too
        expect(timeline.and_(page.locator(f'[data-kind="{kind}"]'))).to_have_attribute("data-actor", RESPONDER)

    view = console.view(iid)  # the page showed it resolved: everything is committed
    assert view.incident.status == "resolved"
    by_kind = {}
    for event in view.events:
        by_kind.setdefault(event.kind, []).append(event)
    for kind in ("acknowledged", "step", "note", "silence", "resolved"):
        assert [e.actor for e in by_kind.get(kind, [])] == [RESPONDER], (kind, view.events)
    assert by_kind["note"][0].message == "已联系用户，安排换机"
    assert by_kind["resolved"][0].message == "已发声明"
    assert view.incident.acked_by == RESPONDER
    assert (view.steps[0].status, view.steps[0].done_by) == ("done", RESPONDER)
    with console.ctx.db.session() as s:
        [correction] = [f for f in feedback_store.every(s) if f.mention_id == mention.id]
    assert (correction.label, correction.actor) == ("neutral", RESPONDER)
    [silence] = [x for x in silence_service.listing(console.ctx, now()) if x.matcher == {"topic": WORK_TOPIC}]
    assert (silence.created_by, silence.reason) == (RESPONDER, "发布会期间")
    assert dialogs.seen == []
