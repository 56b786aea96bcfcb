"""Security as a browser sees it: anonymous visitors land on the login page, hostile mention content
renders inert, a phone keeps its session across a reload, and a viewer cannot act."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from tests.browser.helpers import HOSTILE_AUTHOR, HOSTILE_TEXT, LIVE_MARKUP, RESPONDER, VIEWER, log_in

PROTECTED = ["/", "/incidents", "/incidents/{id}", "/mentions", "/sources", "/silences", "/notifications"]


def test_anonymous_navigation_lands_on_login(page, console):
    for path in PROTECTED:
        page.goto(path.format(id=console.incident_id))
        expect(page, path).to_have_url(re.compile(r"/login\?next="))
        assert page.locator("input[name=password]").is_visible(), path
        assert page.locator("nav.mainnav").count() == 0, path  # nothing of the console shows before login


def test_a_phone_keeps_its_session_across_a_reload(page_factory, console):
    page = page_factory(375, 812, is_mobile=True, has_touch=True)
    log_in(page, RESPONDER, path=f"/incidents/{console.incident_id}")
    assert page.url.endswith(f"/incidents/{console.incident_id}")  # back where the page's link pointed
    page.reload()
    assert "/login" not in page.url
    assert page.locator(".topbar .user").inner_text() == RESPONDER
    tab = page.context.new_page()  # the next page's link, opened in another tab of the same browser
    tab.goto(f"/incidents/{console.incident_id}?ack=1")
    assert "/login" not in tab.url and tab.locator('[data-test="ack"]').is_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "yuqing_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"


def _inert(page, dialogs, *, shows_it: bool = True) -> None:
    """The hostile complaint is on the page as text (``shows_it``), and nothing of it became markup."""
    main = page.locator("main")
    if shows_it:
        expect(main).to_contain_text(HOSTILE_AUTHOR)
        expect(main).to_contain_text("<script>")
    assert page.evaluate(LIVE_MARKUP) == []
    assert page.locator('a[href*="xss-url"]').count() == 0
    assert dialogs.seen == []


def test_a_hostile_mention_renders_inert_in_the_queue_and_on_the_incident_page(page_factory, console, dialogs):
    page = page_factory(user=RESPONDER)
    page.goto("/incidents")
    _inert(page, dialogs, shows_it=False)
    page.goto(f"/incidents/{console.incident_id}")  # its reason quotes the first complaint: the hostile one
    expect(page.locator(f'[data-test="evidence"][data-id="{console.hostile_id}"]')).to_contain_text(HOSTILE_TEXT)
    _inert(page, dialogs)


def test_a_hostile_mention_renders_inert_in_search_and_on_its_own_page(page_factory, console, dialogs):
    page = page_factory(user=RESPONDER)
    page.goto("/mentions?q=xss-text")
    expect(page.locator(f'[data-test="mention-row"][data-id="{console.hostile_id}"]')).to_be_visible()
    _inert(page, dialogs)
    page.goto(f"/mentions/{console.hostile_id}")
    expect(page.locator("main")).to_contain_text(HOSTILE_TEXT)
    _inert(page, dialogs)


def test_a_viewer_reads_but_cannot_act(page_factory, console):
    page = page_factory(user=VIEWER)
    page.goto(f"/incidents/{console.incident_id}?ack=1")
    expect(page.locator('[data-test="read-only"]')).to_be_visible()
    expect(page.locator('[data-test="ack"]')).to_be_disabled()
    # Even a forged request from the viewer's own logged-in page (CSRF token and all) is refused.
    status = page.evaluate("""async (url) => {
        const token = JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRF-Token'];
        const resp = await fetch(url, {method: 'POST', headers: {'X-CSRF-Token': token, 'Accept': 'text/html'},
                                       redirect: 'manual'});
        return resp.status;
    }""", f"/incidents/{console.incident_id}/ack")
    assert status == 403
    assert console.view().incident.status == "open"
