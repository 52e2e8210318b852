"""OpenID Connect login end to end: the app in accounts mode against a real OIDC provider
(oidc-provider-mock) on 127.0.0.1, with httpx as the browser. Covers the code flow (PKCE, nonce, ID
token), linking by provider + subject, a guest turning into the account, and refusals: tampered state
or code, a denied consent, an unverified email that matches an existing account."""
import urllib.parse

import httpx

from tests.test_web_login import PASSWORD, browser, error_of, logged_in_user, visit_as_guest


def to_provider(app, b: httpx.Client) -> str:
    """Start the login in browser `b`; returns the provider's authorize URL it was sent to."""
    response = b.get("/login/localidp")
    assert response.status_code == 302
    authorize = response.headers["location"]
    assert urllib.parse.urlsplit(authorize).path == "/oauth2/authorize"
    return authorize


def consent(authorize: str, form: dict) -> httpx.Response:
    """What the person does at the provider: open its form, then submit it."""
    with httpx.Client(follow_redirects=False, timeout=30) as idp:
        page = idp.get(authorize)
        assert page.status_code == 200 and 'name="sub"' in page.text
        return idp.post(authorize, data=form)


def code_for(app, b: httpx.Client, sub: str) -> str:
    """The callback URL (with the code) the provider sends browser `b` back to, logged in as `sub`."""
    response = consent(to_provider(app, b), {"sub": sub})
    assert response.status_code == 302
    callback = response.headers["location"]
    assert callback.startswith(app.url + "auth/localidp?") and "code=" in callback
    return callback


def log_in_as(app, sub: str, b: httpx.Client | None = None) -> httpx.Client:
    b = b or browser(app)
    response = b.get(code_for(app, b, sub))
    assert (response.status_code, response.headers["location"]) == (303, "/")
    assert b.get("/config").status_code == 200
    return b


def with_query(url: str, **changes) -> str:
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query)) | changes
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def test_oidc_login_makes_and_then_reuses_the_linked_account(accounts_app):
    from storage.models import OAuthIdentity, User

    b = browser(accounts_app)
    assert b.get("/config").status_code == 401
    log_in_as(accounts_app, "alice-sub", b)
    user = logged_in_user(accounts_app, b)
    assert (user.email, user.is_guest) == ("alice@idp.test", False)
    identity = OAuthIdentity.get((OAuthIdentity.provider == "localidp") & (OAuthIdentity.subject == "alice-sub"))
    assert identity.user_id == user.id
    assert user.password_hash == ""

    again = log_in_as(accounts_app, "alice-sub")
    assert logged_in_user(accounts_app, again).id == user.id
    assert User.select().where(User.email == "alice@idp.test").count() == 1
    assert OAuthIdentity.select().where(OAuthIdentity.subject == "alice-sub").count() == 1


def test_a_verified_email_links_the_existing_password_account(accounts_app):
    from storage.models import OAuthIdentity

    accounts = accounts_app.web_auth.accounts
    bob = accounts.create_user("bob@idp.test", PASSWORD)
    b = log_in_as(accounts_app, "bob-sub")
    assert logged_in_user(accounts_app, b).id == bob.id
    assert OAuthIdentity.get(OAuthIdentity.subject == "bob-sub").user_id == bob.id


def test_an_unverified_email_does_not_take_over_an_existing_account(accounts_app, make_user):
    from storage.models import OAuthIdentity

    victim, _ = make_user(api_key=False)
    b = browser(accounts_app)
    # The provider makes up a user for an unknown subject, with that subject as its (unverified) email.
    response = b.get(code_for(accounts_app, b, victim.email))
    assert "has not verified that address" in error_of(response)
    assert b.get("/config").status_code == 401
    assert not OAuthIdentity.select().where(OAuthIdentity.subject == victim.email).exists()


def test_a_guest_who_logs_in_with_oidc_becomes_the_new_account(accounts_app):
    from auth import credits
    from storage.models import User

    b, guest = visit_as_guest(accounts_app)
    sub = f"carol-{guest.id}@idp.test"
    log_in_as(accounts_app, sub, b)
    user = User.get_by_id(guest.id)
    assert logged_in_user(accounts_app, b).id == guest.id
    assert (user.email, user.is_guest) == (sub, False)
    assert credits.balance(user) >= 5


def test_a_tampered_state_or_code_or_a_denial_logs_nobody_in(accounts_app):
    from storage.models import Session

    sessions = Session.select().count()
    b = browser(accounts_app)
    callback = code_for(accounts_app, b, "alice-sub")
    for bad in (with_query(callback, state="forged-state"), with_query(callback, code="forged-code")):
        response = b.get(bad)
        assert "did not log you in" in error_of(response)
        assert b.get("/config").status_code == 401

    b = browser(accounts_app)
    assert "did not log you in" in error_of(b.get(callback))    # another browser: no state of its own

    b = browser(accounts_app)
    denied = consent(to_provider(accounts_app, b), {"action": "deny"})
    assert denied.status_code == 302 and "error=access_denied" in denied.headers["location"]
    assert "did not log you in" in error_of(b.get(denied.headers["location"]))
    assert b.get("/config").status_code == 401
    assert Session.select().count() == sessions


def test_an_unknown_provider_is_not_found_and_its_name_is_not_echoed_as_html(accounts_app):
    b = browser(accounts_app)
    for path in ("/login/", "/auth/"):
        response = b.get(path + "%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E")
        assert response.status_code == 404 and "No login provider" in response.text
        assert not response.headers["content-type"].startswith("text/html")
    assert b.get("/auth/nosuch?code=x&state=y").status_code == 404
