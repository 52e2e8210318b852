"""Accounts mode as a person and a script meet it (issue 14, item 7): the session line above the tabs
says who you are (a guest: "Log in or sign up", no "Log out"; a member: their email and "Log out"), the
login page opens in the same browser tab and brings you back to the tab you were on, only admins see
the Admin tab, `next` never leads off the site, and a revoked or mistyped API key is told so, over
gradio_client and over Gradio's HTTP API, while no key at all is still Gradio's 401."""
import json
import re
import urllib.parse
import uuid

import httpx
import pytest

from tests.conftest import api_client
from tests.test_browser import SHOTS
from tests.test_browser_accounts import browser  # noqa: F401 (the module's Chromium)

PASSWORD = "correct horse battery"      # what make_user gives every account
BAD_KEY = "This API key is not valid (revoked or mistyped); create one in the Account tab."


@pytest.fixture
def context(browser):
    """A fresh profile (no cookies) at 1440x900 that reaches only the app."""
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/])"), lambda route: route.abort())
    yield context
    context.close()


def session_text(page, contains: str) -> str:
    """The session line's text once it contains `contains` (the page load fills it in)."""
    page.wait_for_function("t => (document.querySelector('#session-links')?.innerText || '').includes(t)",
                           arg=contains, timeout=60000)
    return page.inner_text("#session-links")


def tab_shown(page, name: str) -> bool:
    tab = page.get_by_role("tab", name=name, exact=True)
    return tab.count() > 0 and tab.is_visible()


def test_a_guest_logs_in_in_the_same_tab_and_comes_back_to_the_tab_they_were_on(context, accounts_app, make_user):
    user, _ = make_user(api_key=False)
    page = context.new_page()
    page.goto(accounts_app.url)
    page.wait_for_selector("#simple-prompt textarea", timeout=60000)
    line = session_text(page, "Log in or sign up")
    assert "guest" in line and "Log out" not in line
    assert page.locator("#session-links a[href='/logout']").count() == 0
    assert page.locator("#session-links a[target=_blank]").count() == 0
    assert tab_shown(page, "Account") and not tab_shown(page, "Admin")
    page.screenshot(path=f"{SHOTS}/accounts_guest.png")

    page.get_by_role("tab", name="Account", exact=True).click()
    page.wait_for_selector("#account-summary :text('guest')", timeout=60000)
    page.click("#session-login")
    page.wait_for_selector("#login-form", timeout=30000)
    assert len(context.pages) == 1                                 # the same browser tab, not a new one
    assert urllib.parse.parse_qs(urllib.parse.urlsplit(page.url).query)["next"] == ["/?tab=account"]
    assert page.locator("#login-form input[name=next]").get_attribute("value") == "/?tab=account"
    page.fill("#login-form input[name=email]", user.email)
    page.fill("#login-form input[name=password]", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(f"{accounts_app.url}?tab=account", timeout=30000)
    line = session_text(page, user.email)
    assert "Log out" in line and "Log in or sign up" not in line
    assert page.get_attribute("#session-links a[href='/logout']", "href") == "/logout"
    page.wait_for_selector("button[role=tab][data-tab-id=account][aria-selected=true]", timeout=30000)
    assert not tab_shown(page, "Admin")
    page.screenshot(path=f"{SHOTS}/accounts_logged_in.png")


def test_an_admin_sees_the_admin_tab_and_a_user_does_not(context, accounts_app, make_user):
    admin, _ = make_user(role="admin", api_key=False)
    page = context.new_page()
    page.goto(accounts_app.url + "login?next=" + urllib.parse.quote("/?tab=admin"))
    page.fill("#login-form input[name=email]", admin.email)
    page.fill("#login-form input[name=password]", PASSWORD)
    page.click("#login-submit")
    page.wait_for_url(f"{accounts_app.url}?tab=admin", timeout=30000)
    session_text(page, admin.email)
    page.wait_for_selector("button[role=tab][data-tab-id=admin][aria-selected=true]", timeout=30000)
    assert tab_shown(page, "Admin")
    page.wait_for_selector("#admin-users", state="visible", timeout=60000)
    page.screenshot(path=f"{SHOTS}/accounts_admin.png")

    # A user sent to ?tab=admin lands on the first tab, with no Admin tab to see.
    user, _ = make_user(api_key=False)
    other = context.browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        page = other.new_page()
        page.goto(accounts_app.url + "login?next=" + urllib.parse.quote("/?tab=admin"))
        page.fill("#login-form input[name=email]", user.email)
        page.fill("#login-form input[name=password]", PASSWORD)
        page.click("#login-submit")
        session_text(page, user.email)
        assert not tab_shown(page, "Admin")
        assert page.get_attribute("button[role=tab][data-tab-id=simple]", "aria-selected") == "true"
    finally:
        other.close()


@pytest.mark.parametrize("next_path", ["//evil.example/", "https://evil.example/", "/\\evil.example",
                                      "javascript:alert(1)", "evil.example"])
def test_next_never_leads_off_the_site(accounts_app, make_user, next_path):
    user, _ = make_user(api_key=False)
    with httpx.Client(base_url=accounts_app.url, follow_redirects=False, timeout=60) as b:
        form = b.get("/login", params={"next": next_path}).text
        assert "evil" not in form and "javascript" not in form
        response = b.post("/login", data={"email": user.email, "password": PASSWORD, "next": next_path})
        assert (response.status_code, response.headers["location"]) == (303, "/")
        refused = b.post("/login", data={"email": user.email, "password": "wrong", "next": next_path})
        assert refused.headers["location"].startswith("/login?") and "evil" not in refused.headers["location"]


def test_a_local_next_is_kept_through_a_refused_login(accounts_app, make_user):
    user, _ = make_user(api_key=False)
    with httpx.Client(base_url=accounts_app.url, follow_redirects=False, timeout=60) as b:
        refused = b.post("/login", data={"email": user.email, "password": "wrong", "next": "/?tab=gallery"})
        again = urllib.parse.parse_qs(urllib.parse.urlsplit(refused.headers["location"]).query)
        assert again["next"] == ["/?tab=gallery"] and again["error"]
        done = b.post("/login", data={"email": user.email, "password": PASSWORD, "next": again["next"][0]})
        assert done.headers["location"] == "/?tab=gallery"


def test_a_mistyped_or_revoked_key_is_told_so_and_no_key_is_still_refused(accounts_app, make_user):
    from gradio_client.exceptions import AppError, AuthenticationError

    with pytest.raises(AuthenticationError, match="credentials were not provided"):
        api_client(accounts_app, None)
    with pytest.raises(AppError, match=re.escape(BAD_KEY)):
        api_client(accounts_app, "atl_mistyped-key").predict(api_name="/account")
    with pytest.raises(AppError, match=re.escape(BAD_KEY)):
        api_client(accounts_app, "not even an atelier key").predict("a fox", api_name="/txt2img")

    user, key = make_user()
    client = api_client(accounts_app, key)
    assert client.predict(api_name="/account")["user_id"] == user.id
    accounts_app.account.revoke_key(user, accounts_app.account.keys(user)[0]["id"])
    with pytest.raises(AppError, match=re.escape(BAD_KEY)):
        client.predict(api_name="/account")
    with pytest.raises(AppError, match=re.escape(BAD_KEY)):
        client.predict(json.dumps({"nodes": []}), api_name="/submit")


def test_a_bad_key_over_gradios_http_api_reads_the_same_and_reaches_no_stored_file(accounts_app, make_user):
    from tests.test_browser_accounts import tiny_png

    user, key = make_user()
    artifact = accounts_app.service.upload(user, tiny_png())
    stored = f"/gradio_api/file={accounts_app.artifacts.artifact_path(artifact)}"
    headers = {"Authorization": "Bearer atl_mistyped-key"}
    with httpx.Client(base_url=accounts_app.url, headers=headers, timeout=60) as b:
        event = b.post("/gradio_api/call/account", json={"data": []}).json()["event_id"]
        stream = b.get(f"/gradio_api/call/account/{event}").text
        assert "event: error" in stream and BAD_KEY in stream
        assert b.get(stored).status_code == 404
        assert b.get(stored, headers={"Authorization": f"Bearer {key}"}).status_code == 200
    with httpx.Client(base_url=accounts_app.url, timeout=60) as anonymous:
        assert anonymous.post("/gradio_api/call/account", json={"data": []}).status_code == 401


@pytest.mark.parametrize("next_path, lands_on", [("/?tab=gallery", "/?tab=gallery"), ("//evil.example/", "/")])
def test_a_login_with_a_provider_comes_back_to_next_too(accounts_app, next_path, lands_on):
    from tests.test_oauth import consent
    from tests.test_web_login import browser as web_browser

    with web_browser(accounts_app) as b:
        login_page = b.get("/login", params={"next": next_path}).text
        provider_link = re.search(r"id='login-localidp' href='([^']+)'", login_page).group(1)
        assert "evil" not in provider_link
        to_provider = b.get(provider_link.replace("&amp;", "&"))
        assert to_provider.status_code == 302
        # A subject of its own: alice and bob are tests/test_oauth.py's, which expects to link them first.
        subject = f"session-{uuid.uuid4().hex[:8]}@idp.test"      # the provider makes it the email too
        back = consent(to_provider.headers["location"], {"sub": subject}).headers["location"]
        done = b.get(back)
        assert (done.status_code, done.headers["location"]) == (303, lands_on)


def test_on_a_phone_the_session_line_fits(browser, accounts_app):
    phone = browser.new_context(viewport={"width": 390, "height": 844})
    try:
        page = phone.new_page()
        page.goto(accounts_app.url)
        page.wait_for_selector("#simple-prompt textarea", timeout=60000)
        session_text(page, "Log in or sign up")
        box = page.locator("#session-login").bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
        page.screenshot(path=f"{SHOTS}/accounts_guest_phone.png")
    finally:
        phone.close()
