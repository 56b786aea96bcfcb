"""A 375×812 phone: the queue and an incident page fit the screen's width (nothing scrolls sideways),
and a screenshot of each is kept under tests/artifacts/ for people to look at; so does every other
screen of the menu."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.helpers import RESPONDER, no_horizontal_overflow

PHONE = dict(width=375, height=812, is_mobile=True, has_touch=True, device_scale_factor=2)


@pytest.fixture
def phone(page_factory):
    return page_factory(**PHONE, user=RESPONDER)


def _fits(page) -> None:
    widths = no_horizontal_overflow(page)
    assert widths["doc"] <= widths["inner"] and widths["body"] <= widths["inner"], widths


def test_the_queue_fits_a_phone(phone, console, artifacts):
    phone.goto("/incidents")
    expect(phone.locator(f'[data-test="incident-row"][data-id="{console.incident_id}"]')).to_be_visible()
    _fits(phone)
    phone.screenshot(path=str(artifacts / f"queue-375{console.suffix}.png"), full_page=True)


def test_the_incident_page_fits_a_phone(phone, console, artifacts):
    phone.goto(f"/incidents/{console.incident_id}?ack=1")  # the page's 确认处理 link
    expect(phone.locator('[data-test="ack"]')).to_be_focused()
    expect(phone.locator("main")).to_contain_text("核实涉事门店与批次")  # the plan is there
    chart = phone.locator('[data-test="chart"]')
    chart.scroll_into_view_if_needed()  # it loads lazily
    phone.wait_for_function("el => el.complete && el.naturalWidth > 0", arg=chart.element_handle())
    phone.evaluate("window.scrollTo(0, 0)")
    _fits(phone)
    phone.screenshot(path=str(artifacts / f"incident-375{console.suffix}.png"), full_page=True)


def test_every_screen_of_the_menu_fits_a_phone(phone, console):
    phone.goto("/incidents")
    screens = phone.locator("nav.mainnav a").evaluate_all("links => links.map(a => a.getAttribute('href'))")
    assert len(screens) >= 6, screens
    overflowing = {}
    for path in screens:
        response = phone.goto(path)
        assert response.status == 200, (path, response.status)
        expect(phone.locator(".topbar .user")).to_have_text(RESPONDER)  # a page of the console, logged in
        widths = no_horizontal_overflow(phone)
        if max(widths["doc"], widths["body"]) > widths["inner"]:
            overflowing[path] = widths
    assert overflowing == {}
