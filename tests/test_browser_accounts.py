"""The Account and Admin tabs in headless Chromium (Debian's package, driven by Playwright) against the
app in accounts mode: sign up, see the balance and the price before generating, generate, see the
balance go down by exactly that price; API keys, share links and buying credits; an admin grants
credits and changes a tier, a non-admin sees nothing of the Admin tab."""
import os
import re
import struct
import zlib

import pytest

from tests.conftest import need
from tests.test_browser import ARGS, CHROMIUM, SHOTS

PASSWORD = "correct horse battery"      # what make_user gives every account
CHECKOUT_HOST = "https://checkout.stripe.test/"


@pytest.fixture(scope="module")
def browser(accounts_app):
    if not os.path.exists(CHROMIUM):
        need("Debian's chromium is not installed (apt-get install chromium)")
    playwright = pytest.importorskip("playwright.sync_api")
    SHOTS.mkdir(exist_ok=True)
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh browser profile (no cookies) per test. Stripe's Checkout page is answered by a stand-in,
    and any other host that is not the app is refused, so nothing leaves the machine."""
    context = browser.new_context(viewport={"width": 1300, "height": 950})
    context.route(f"{CHECKOUT_HOST}**", lambda route: route.fulfill(
        status=200, content_type="text/html", body="<h1 id='checkout'>Stripe Checkout (stand-in)</h1>"))
    context.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/]|checkout\.stripe\.test/)"), lambda route: route.abort())
    page = context.new_page()
    yield page
    context.close()


def send_login_page_form(page, app_url: str, form: str, email: str, password: str) -> None:
    """Fill in and send the "login" or "signup" form of /login, and wait for the app."""
    page.goto(app_url + "login")
    page.fill(f"#{form}-form input[name=email]", email)
    page.fill(f"#{form}-form input[name=password]", password)
    page.click(f"#{form}-submit")
    page.wait_for_selector("#simple-prompt textarea", timeout=30000)


def sign_up(page, app_url: str, email: str, password: str = PASSWORD) -> None:
    send_login_page_form(page, app_url, "signup", email, password)


def log_in(page, app_url: str, email: str, password: str = PASSWORD) -> None:
    send_login_page_form(page, app_url, "login", email, password)


def open_tab(page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()


def wait_for_text(page, selector: str, text: str, timeout: float = 30000) -> str:
    """Wait until the element's text contains `text`; returns the whole text."""
    page.wait_for_function("([s, t]) => (document.querySelector(s)?.innerText || '').includes(t)",
                           arg=[selector, text], timeout=timeout)
    return page.inner_text(selector)


def type_number(page, selector: str, value) -> None:
    box = page.locator(f"{selector} input[type=number]")
    box.fill(str(value))
    box.press("Enter")


def no_error_toasts(page) -> None:
    errors = page.locator(".toast-body.error")
    assert errors.count() == 0, errors.first.inner_text()


def ledger_kinds(user) -> list[str]:
    from auth import credits

    return [e.kind for e in credits.history(user)]


def make_key_for(user) -> str:
    from auth import api_keys

    return api_keys.create_key(user, "test")[1]


def tiny_png() -> bytes:
    """A 16x16 PNG, so a test can own an artifact without running a job."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\x00" + bytes([40, 120, 200]) * 16 for _ in range(16))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 16, 16, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def test_sign_up_see_the_price_generate_and_see_the_balance_go_down(page, accounts_app):
    """Straight to /login (no guest first), so the new account has exactly its tier's monthly 20."""
    from auth import credits
    from storage.models import User

    email = f"painter-{os.urandom(4).hex()}@test.example"
    sign_up(page, accounts_app.url, email)
    user = User.get(User.email == email)

    open_tab(page, "Account")
    assert "Balance: 20 credits" in wait_for_text(page, "#account-balance", "Balance")
    summary = page.inner_text("#account-summary")
    assert email in summary and "role user" in summary
    assert "Tier: free: 20 credits a month · images up to 512 px a side" in summary
    assert page.locator("#account-logout").get_attribute("href") == "/logout"
    assert "grant" in wait_for_text(page, "#account-ledger", "free monthly credits")

    open_tab(page, "Simple")
    page.fill("#simple-prompt textarea", "a lighthouse at dusk")
    page.locator("#simple-prompt textarea").blur()
    price = wait_for_text(page, "#simple-price", "Costs")
    assert "Costs 0.5 credits · you have 20" in price
    assert page.get_attribute("#session-links a[href='/logout']", "href") == "/logout"
    page.screenshot(path=str(SHOTS / "simple_price.png"), full_page=True)
    no_error_toasts(page)

    page.click("#simple-generate")
    page.wait_for_selector("#simple-summary :text('Seeds:')", timeout=60000)
    assert "you have 19.5" in wait_for_text(page, "#simple-price", "you have 19.5")

    open_tab(page, "Account")
    assert "Balance: 19.5 credits" in wait_for_text(page, "#account-balance", "19.5")
    ledger = wait_for_text(page, "#account-ledger", "capture")
    assert "reserve" in ledger and "-0.5" in ledger and "0.5 spent" in ledger
    # newest first: the capture, then the reservation, then the monthly grant
    assert ledger.index("capture") < ledger.index("reserve") < ledger.index("free monthly credits")
    page.screenshot(path=str(SHOTS / "account_tab.png"), full_page=True)
    no_error_toasts(page)
    assert credits.balance(user) == 19.5
    assert ledger_kinds(user) == ["capture", "reserve", "grant"]


def test_every_tab_that_spends_credits_shows_its_price(page, accounts_app, tmp_path):
    """Img2img, Edit, Inpaint, Outpaint and Upscale showed no price; each says what it needs first, then
    what the run costs."""
    sign_up(page, accounts_app.url, f"pricer-{os.urandom(4).hex()}@test.example")
    from PIL import Image

    picture = tmp_path / "small.png"
    Image.new("RGB", (64, 64), (40, 120, 200)).save(picture)
    for tab, prefix in (("Img2img", "i2i"), ("Edit", "edit"), ("Inpaint", "inpaint"), ("Outpaint", "outpaint"),
                        ("Upscale", "upscale")):
        open_tab(page, tab)
        assert "Add an image" in wait_for_text(page, f"#{prefix}-price", "Add an image")
    for tab, prefix in (("Img2img", "i2i"), ("Upscale", "upscale")):
        open_tab(page, tab)
        page.set_input_files(f"#{prefix}-image input[type=file]", str(picture))
        page.wait_for_function("(s) => /Costs|⚠/.test(document.querySelector(s)?.innerText || '')",
                               arg=f"#{prefix}-price", timeout=30000)
        assert "you have 20" in page.inner_text(f"#{prefix}-price"), page.inner_text(f"#{prefix}-price")
    page.screenshot(path=str(SHOTS / "upscale_price.png"), full_page=True)
    no_error_toasts(page)


def test_a_cancel_is_information_keeps_the_preview_and_releases_the_credits(page, accounts_app):
    from auth import credits
    from storage.models import User

    email = f"canceller-{os.urandom(4).hex()}@test.example"
    sign_up(page, accounts_app.url, email)
    user = User.get(User.email == email)
    open_tab(page, "Advanced")
    page.fill("#adv-prompt textarea", "a slow one")
    for name, value in (("adv-steps", 150), ("adv-width", 256), ("adv-height", 256)):
        type_number(page, f"#{name}", value)
    wait_for_text(page, "#adv-price", "Costs")
    page.click("#adv-generate")
    page.wait_for_selector("#adv-gallery :text('preview · step')", timeout=60000)
    assert credits.balance(user) < 20                               # reserved while it runs
    page.click("#adv-cancel")
    wait_for_text(page, "#adv-summary", "Cancelled at step", timeout=60000)
    page.wait_for_selector(".toast-body.info :text('Cancelled at step')", timeout=10000)
    page.screenshot(path=str(SHOTS / "cancelled_in_accounts_mode.png"), full_page=True)
    assert page.locator("#adv-gallery :text('preview · step')").count() == 1      # the last preview stays
    no_error_toasts(page)
    assert credits.balance(user) == 20 and ledger_kinds(user) == ["release", "reserve", "grant"]


def test_api_keys_share_links_and_buying_credits(page, accounts_app, make_user, fake_stripe):
    from auth import api_keys
    from tests.conftest import api_client

    user, _ = make_user(api_key=False)
    log_in(page, accounts_app.url, user.email)
    open_tab(page, "Account")
    wait_for_text(page, "#account-balance", "Balance: 20 credits")

    # an API key: shown once, listed by prefix, refused once revoked
    page.fill("#account-key-name textarea, #account-key-name input", "laptop")
    page.click("#account-create-key")
    page.wait_for_selector("#account-new-key", timeout=10000)
    assert "will not be shown again" in page.inner_text("#account-new-key")
    key_box = page.locator("#account-new-key textarea, #account-new-key input").first
    page.wait_for_function("el => el.value.startsWith('atl_')", arg=key_box.element_handle(), timeout=10000)
    key = key_box.input_value()
    assert api_keys.user_for_key(key).id == user.id
    listed = wait_for_text(page, "#account-keys", "laptop")
    assert key[:12] in listed and key not in listed
    key_id = api_keys.list_keys(user)[0]["id"]
    type_number(page, "#account-key-id", key_id)
    page.click("#account-revoke-key")
    wait_for_text(page, "#account-keys", "revoked")
    assert api_keys.user_for_key(key) is None

    # scripts make keys through the same event, by its API name
    script_key, _ = api_client(accounts_app, make_key_for(user)).predict("script", api_name="/create_api_key")
    assert api_keys.user_for_key(script_key).id == user.id

    # a share link that works without an account, until it is revoked
    artifact = accounts_app.service.upload(user, tiny_png())
    page.fill("#account-share-ids textarea, #account-share-ids input", artifact.id)
    page.click("#account-create-share")
    link_box = page.locator("#account-new-link textarea, #account-new-link input").first
    page.wait_for_function("el => el.value.includes('/share/')", arg=link_box.element_handle(), timeout=10000)
    link = link_box.input_value()
    assert link.startswith(accounts_app.url + "share/")
    wait_for_text(page, "#account-shares", link)
    no_error_toasts(page)
    visitor = page.context.browser.new_page()
    try:
        visitor.goto(link)
        assert visitor.locator("#share-items img").evaluate("img => img.complete && img.naturalWidth") == 16
        assert "Recipe" not in visitor.inner_text("body")          # an upload has no recipe to show
        share_id = accounts_app.account.shares(user)[0]["id"]
        type_number(page, "#account-share-id", share_id)
        page.click("#account-revoke-share")
        wait_for_text(page, "#account-shares", "revoked")
        assert visitor.goto(link).status == 404
    finally:
        visitor.close()

    # buying credits sends the browser to Stripe Checkout for this user and pack
    sessions = len(fake_stripe.sessions)
    page.click("#account-buy")
    page.wait_for_url(f"{CHECKOUT_HOST}**", timeout=15000)
    assert page.inner_text("#checkout") == "Stripe Checkout (stand-in)"
    session = fake_stripe.sessions[sessions]
    assert page.url == session["url"]
    assert session["client_reference_id"] == str(user.id) and session["metadata"]["credits"] == "100"
    assert session["success_url"] == accounts_app.url + "?checkout=success"


def test_the_admin_tab_shows_nothing_to_others(page, accounts_app, make_user):
    """Not even the tab (issue 14, item 7), nor anything in it."""
    user, _ = make_user(api_key=False)
    log_in(page, accounts_app.url, user.email)
    wait_for_text(page, "#session-links", user.email)          # the page load has run for this person
    admin_tab = page.get_by_role("tab", name="Admin", exact=True)
    assert admin_tab.count() == 0 or not admin_tab.is_visible()
    assert not page.locator("#admin-users").is_visible()
    assert not page.locator("#admin-grant").is_visible()
    assert page.locator("#admin-users [role=row]", has_text=user.email).count() == 0    # no table of accounts
    no_error_toasts(page)


def test_an_admin_sees_the_users_grants_credits_and_changes_a_tier(page, accounts_app, make_user):
    from auth import credits
    from storage.models import User

    admin, _ = make_user(role="admin", api_key=False)
    target, _ = make_user(api_key=False)
    log_in(page, accounts_app.url, admin.email)
    open_tab(page, "Admin")
    users = wait_for_text(page, "#admin-users", target.email)
    assert admin.email in users and "Admins only" not in page.inner_text("#admin-notice")
    workers = page.inner_text("#admin-workers")                 # this process's two consumers beat
    assert accounts_app.executor.worker in workers and "alive" in workers
    assert "Queue:" in page.inner_text("#admin-queue")

    type_number(page, "#admin-user-id", target.id)
    type_number(page, "#admin-amount", 7)
    page.fill("#admin-note textarea, #admin-note input", "welcome gift")
    page.click("#admin-grant")
    audit = wait_for_text(page, "#admin-audit", "welcome gift")
    assert "grant_credits" in audit and target.email in audit and admin.email in audit
    assert credits.balance(target) == 27
    row = page.locator("#admin-users [role=row]", has_text=target.email)
    assert row.inner_text().split() == [str(target.id), target.email, "user", "free", "27", "0", "0"]
    no_error_toasts(page)

    page.locator("#admin-tier input").click()
    page.get_by_role("option", name="standard", exact=True).click()
    # On a busy machine the choice reaches the server a moment later; press the button once it shows.
    page.wait_for_function("() => document.querySelector('#admin-tier input').value === 'standard'")
    page.wait_for_timeout(300)
    page.click("#admin-set-tier")
    # The audit log lists other accounts' tier changes too (Stripe's, in the billing tests): wait for this
    # user's own row to show the new tier.
    row.filter(has_text="standard").wait_for(timeout=30000)
    assert "set_tier" in page.inner_text("#admin-audit")
    assert User.get_by_id(target.id).tier == "standard"
    page.screenshot(path=str(SHOTS / "admin_tab.png"), full_page=True)
    no_error_toasts(page)


def test_local_mode_says_so_and_still_lists_keys_and_the_admin_tab(page, atelier):
    """In local mode nobody logs in: the Account tab says so (no balance, no buying, no log out) and the
    local owner, an admin, sees the Admin tab."""
    page.goto(atelier.url)
    page.wait_for_selector("#simple-prompt textarea", timeout=30000)
    assert "Free: local mode" in wait_for_text(page, "#simple-price", "Free")
    open_tab(page, "Account")
    assert "Local mode" in wait_for_text(page, "#account-local-note", "Local mode")
    assert "Free: local mode" in wait_for_text(page, "#account-balance", "Free")
    assert "owner@localhost" in page.inner_text("#account-summary")
    assert page.locator("#account-logout").count() == 0 and page.locator("#account-buy").count() == 0
    page.fill("#account-key-name textarea, #account-key-name input", "local script")
    page.click("#account-create-key")
    wait_for_text(page, "#account-keys", "local script")
    page.screenshot(path=str(SHOTS / "account_local.png"), full_page=True)
    no_error_toasts(page)
    open_tab(page, "Admin")
    page.fill("#admin-find textarea, #admin-find input", "owner@")   # among every test's accounts
    page.press("#admin-find textarea, #admin-find input", "Enter")
    assert "owner@localhost" in wait_for_text(page, "#admin-users", "owner@localhost")
