"""Browser-facing accounts over real HTTP against the app in accounts mode: sign-up and password login,
the signed HttpOnly session cookie, logout, guests (free credits on the first visit) and what happens to
a guest's images and credits when they sign up or log in, and refused sign-ups."""
import base64
import json
import urllib.parse
import uuid

import httpx
import pytest

PASSWORD = "correct horse battery"


def browser(app) -> httpx.Client:
    """A cookie-keeping HTTP client that does not follow redirects (the tests look at each one)."""
    return httpx.Client(base_url=app.url, follow_redirects=False, timeout=60)


def new_email() -> str:
    return f"{uuid.uuid4().hex[:10]}@web.example"


def set_cookie(response: httpx.Response) -> str:
    """The Set-Cookie header for the session cookie ("" if none)."""
    return next((h for h in response.headers.get_list("set-cookie") if h.startswith("atelier_session=")), "")


def logged_in_user(app, client: httpx.Client):
    """The user whose session `client`'s cookie carries (the cookie is signed, not encrypted)."""
    payload = client.cookies["atelier_session"].split(".")[0]
    token = json.loads(base64.b64decode(payload + "=" * (-len(payload) % 4)))["token"]
    return app.web_auth.accounts.session_user(token)


def error_of(response: httpx.Response) -> str:
    """The message of a redirect back to the login page."""
    assert response.status_code == 303
    location = urllib.parse.urlsplit(response.headers["location"])
    assert location.path == "/login"
    return urllib.parse.parse_qs(location.query)["error"][0]


def visit_as_guest(app) -> tuple[httpx.Client, object]:
    b = browser(app)
    assert b.get("/").status_code == 200
    guest = logged_in_user(app, b)
    assert guest is not None and guest.is_guest
    return b, guest


def generate(app, user) -> list:
    """One tiny image made for `user`; returns its artifacts."""
    from pipelines.spec import Txt2Img, WorkflowSpec
    from storage.models import Artifact

    job = app.service.submit(user, WorkflowSpec.single(Txt2Img(prompt="a guest's fox")))
    job = app.service.wait(user, job.id, timeout=120)
    assert job.status == "succeeded", job.error
    artifacts = [Artifact.get_by_id(artifact_id) for artifact_id in job.artifact_ids]
    assert [(a.mime, a.width, a.height) for a in artifacts] == [("image/png", 64, 64)]    # batch 1, 64x64 demo
    return artifacts


def test_sign_up_sets_a_signed_httponly_cookie_and_stores_only_a_password_hash(accounts_app):
    from storage.models import User

    b, email = browser(accounts_app), new_email()
    assert b.get("/config").status_code == 401
    response = b.post("/signup", data={"email": email, "password": PASSWORD})
    assert (response.status_code, response.headers["location"]) == (303, "/")
    cookie = set_cookie(response).lower()
    assert "httponly" in cookie and "samesite=lax" in cookie
    assert b.get("/config").status_code == 200

    user = User.get(User.email == email)
    assert not user.is_guest and logged_in_user(accounts_app, b).id == user.id
    assert user.password_hash.startswith("$argon2id$") and PASSWORD not in user.password_hash

    value = b.cookies["atelier_session"]
    forged = value[:-2] + ("AA" if value[-2:] != "AA" else "BB")
    assert browser(accounts_app).get("/config", cookies={"atelier_session": forged}).status_code == 401


def test_a_wrong_password_is_refused_and_the_right_one_logs_in(accounts_app, make_user):
    user, _ = make_user(api_key=False)
    b = browser(accounts_app)
    for email, password in ((user.email, "not the password"), ("nobody@web.example", PASSWORD)):
        response = b.post("/login", data={"email": email, "password": password})
        assert error_of(response) == "Wrong email or password."
        assert not set_cookie(response)
        assert b.get("/config").status_code == 401

    response = b.post("/login", data={"email": user.email.upper(), "password": PASSWORD})
    assert (response.status_code, response.headers["location"]) == (303, "/")
    assert set_cookie(response)
    assert b.get("/config").status_code == 200
    assert logged_in_user(accounts_app, b).id == user.id


def test_logout_ends_the_session_even_for_a_replayed_cookie(accounts_app):
    b = browser(accounts_app)
    b.post("/signup", data={"email": new_email(), "password": PASSWORD})
    old_cookie = b.cookies["atelier_session"]
    assert b.get("/config").status_code == 200

    response = b.post("/logout")
    assert (response.status_code, response.headers["location"]) == (303, "/login")
    assert b.get("/config").status_code == 401
    assert browser(accounts_app).get("/config", cookies={"atelier_session": old_cookie}).status_code == 401


def test_a_first_visit_gets_a_guest_with_free_credits_who_can_use_the_app(accounts_app):
    from auth import credits

    b, guest = visit_as_guest(accounts_app)
    assert credits.balance(guest) == 5
    assert b.get("/config").status_code == 200
    assert b.get("/").status_code == 200 and logged_in_user(accounts_app, b).id == guest.id  # no second guest


def test_a_guest_who_signs_up_keeps_their_images_and_credits(accounts_app):
    from auth import credits
    from storage.artifacts import find_artifact
    from storage.models import User

    b, guest = visit_as_guest(accounts_app)
    artifacts = generate(accounts_app, guest)
    left = credits.balance(guest)
    assert left < 5

    email = new_email()
    response = b.post("/signup", data={"email": email, "password": PASSWORD})
    assert (response.status_code, response.headers["location"]) == (303, "/")
    user = User.get_by_id(guest.id)
    assert logged_in_user(accounts_app, b).id == guest.id
    assert (user.email, user.is_guest) == (email, False)
    assert all(find_artifact(user, a.id) is not None for a in artifacts)
    monthly = accounts_app.web_auth.accounts.tiers.tier(user.tier).monthly_credits
    assert credits.balance(user) == left + monthly


def test_a_guest_who_logs_in_hands_their_images_links_and_credits_to_the_account(accounts_app, make_user):
    from auth import credits
    from storage.artifacts import find_artifact, find_holding
    from storage.models import Job

    account, _ = make_user(balance=10, api_key=False)
    b, guest = visit_as_guest(accounts_app)
    artifacts = generate(accounts_app, guest)
    shared = accounts_app.account.share(guest, [artifacts[0].id])
    left = credits.balance(guest)

    response = b.post("/login", data={"email": account.email, "password": PASSWORD})
    assert response.status_code == 303 and response.headers["location"] == "/"
    assert logged_in_user(accounts_app, b).id == account.id
    assert all(find_artifact(account, a.id) is not None for a in artifacts)
    assert all(find_artifact(guest, a.id) is None for a in artifacts)
    made = find_holding(account, artifacts[0].id)          # still made, by the job that moved with it
    assert made.kind == "image" and Job.get_by_id(made.job_id).owner_id == account.id
    assert (credits.balance(account), credits.balance(guest)) == (10 + left, 0)
    assert [s["token"] for s in accounts_app.account.shares(account)] == [shared]


@pytest.mark.parametrize("email, password, message", [
    ("not-an-email", PASSWORD, "is not an email address"),
    ("", PASSWORD, "is not an email address"),
    (None, "short", "at least 8 characters"),
    ("taken", PASSWORD, "There is already an account for"),
])
def test_bad_sign_ups_are_refused_with_a_clear_message_and_create_nothing(accounts_app, make_user, email,
                                                                         password, message):
    from storage.models import User

    if email == "taken":
        email = make_user(api_key=False)[0].email.upper()
    form = {"email": new_email() if email is None else email, "password": password}
    users = User.select().count()
    b = browser(accounts_app)
    response = b.post("/signup", data=form)
    error = error_of(response)
    assert message in error
    assert not set_cookie(response) and User.select().count() == users
    page = b.get(response.headers["location"])
    assert page.status_code == 200 and message in page.text


def test_a_guest_whose_sign_up_is_refused_stays_a_guest(accounts_app, make_user):
    from auth import credits
    from storage.models import User

    taken = make_user(api_key=False)[0].email
    b, guest = visit_as_guest(accounts_app)
    assert "already an account" in error_of(b.post("/signup", data={"email": taken, "password": PASSWORD}))
    still = User.get_by_id(guest.id)
    assert still.is_guest and still.email == guest.email and credits.balance(still) == 5
    assert logged_in_user(accounts_app, b).id == guest.id


def test_login_forms_posted_from_another_site_are_refused(accounts_app, make_user):
    """Login CSRF: a page elsewhere must not log a visitor in (as the attacker) or out."""
    user, _ = make_user(api_key=False)
    with httpx.Client(base_url=accounts_app.url, follow_redirects=False) as browser:
        evil = {"Origin": "https://evil.example"}
        form = {"email": user.email, "password": "correct horse battery"}
        assert browser.post("/login", data=form, headers=evil).status_code == 403
        assert browser.post("/signup", data={"email": "csrf@test.example", "password": "long enough"},
                            headers=evil).status_code == 403
        assert "atelier_session" not in browser.cookies
        own = {"Origin": accounts_app.url.rstrip("/")}
        assert browser.post("/login", data=form, headers=own).status_code == 303
        assert browser.get("/config").status_code == 200
        assert browser.post("/logout", headers=evil).status_code == 403
        assert browser.get("/config").status_code == 200          # still logged in
