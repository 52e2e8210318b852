"""The Account tab: who you are, your tier and its limits, your credits (balance, history, buying
more), your API keys and your share links. In local mode it says so (no login; usage is recorded,
nothing is charged) and still shows the history, keys and links.

Also the session line above the tabs in accounts mode (`session_bar`): a guest sees "Log in or sign
up", a person logged in sees their email and "Log out"; the login page opens in the same browser tab
and brings them back to the tab they were on (web.accounts: `next`). Its page-load handler
(`on_arrival`) also shows the Admin tab to admins only.
"""
from __future__ import annotations

import datetime
import html
import urllib.parse

import gradio as gr
import pandas as pd

from pipelines.errors import AtelierError
from ui.common import UIContext, user_errors, whole
from ui.mcp import kept_from_agents

LEDGER_COLUMNS = ["When (UTC)", "Kind", "Amount", "Job", "Note"]
KEY_COLUMNS = ["Id", "Prefix", "Name", "Created", "Last used", "Revoked"]
SHARE_COLUMNS = ["Id", "Link", "Artifacts", "Recipe shown", "Created", "Revoked"]
LOCAL_MODE_NOTE = ("**Local mode:** no login, and nothing is charged. Every job is still recorded (the Gallery "
                   "lists what you made); API keys are checked only when Atelier runs in accounts mode.")
REDIRECT_JS = "(url) => { if (url) window.location.href = url; }"
# The login link says where the person is when they click it (the page and its selected tab), so the
# login page can bring them back there; the server checks it is a local path (web.accounts.local_path).
NEXT_JS = """
element.addEventListener('click', (event) => {
  const link = event.target.closest('a[data-next]');
  if (!link) return;
  const tab = document.querySelector('button[role=tab][aria-selected=true]');
  const here = window.location.pathname + (tab ? '?tab=' + encodeURIComponent(tab.dataset.tabId) : '');
  link.href = '/login?next=' + encodeURIComponent(here);
});"""


def when(timestamp: float | None) -> str:
    """A Unix time as "2025-01-31 14:05" (UTC); "" for None."""
    if timestamp is None:
        return ""
    return datetime.datetime.fromtimestamp(timestamp, datetime.UTC).strftime("%Y-%m-%d %H:%M")


def table(rows: list[list], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=columns)


def page_address(request: gr.Request | None, public_url: str = "") -> str:
    """The site's address (share links and Stripe's way back start with it): `public_url` when the
    settings give one, else the address the browser reached, honouring a proxy's X-Forwarded-Host
    and -Proto."""
    if public_url:
        return public_url.rstrip("/") + "/"
    headers = {k.lower(): v for k, v in dict(getattr(request, "headers", None) or {}).items()}
    host = (headers.get("x-forwarded-host") or headers.get("host") or "127.0.0.1").split(",")[0].strip()
    scheme = (headers.get("x-forwarded-proto") or "http").split(",")[0].strip()
    return f"{scheme}://{host}/"


def limit(value, unit: str) -> str:
    return f"{value:g} {unit}" if value else f"no limit on {unit}"


def who_markdown(summary: dict) -> str:
    """Email, role, tier and the tier's limits."""
    if summary["mode"] == "local":
        return f"**{summary['email']}** (the local owner) · role **{summary['role']}**"
    max_side = f"images up to {summary['max_side']} px a side" if summary["max_side"] else "the server's size limits"
    tier = (f"**Tier:** {summary['tier']}: {summary['monthly_credits']:g} credits a month · {max_side} · "
            f"{limit(summary['generations_per_hour'], 'generations an hour')} · "
            f"{limit(summary['api_calls_per_minute'], 'API calls a minute')}")
    if summary["guest"]:
        return (f"You are a **guest**. Sign up to keep what you make and your credits, and to get "
                f"{summary['monthly_credits']:g} credits every month.  \n{tier}")
    return f"**{summary['email']}** · role **{summary['role']}** · user id {summary['user_id']}  \n{tier}"


def balance_markdown(summary: dict) -> str:
    if summary["mode"] == "local":
        return "## Free: local mode"
    return f"## Balance: {summary['balance']:g} credits"


def session_link(summary: dict) -> str:
    """Log out, or (for a guest) the way to sign up; nothing in local mode, where nobody logs in."""
    if summary["mode"] == "local":
        return ""
    if summary["guest"]:
        back = urllib.parse.urlencode({"next": "/?tab=account"})
        return f"<a href='/login?{back}' id='account-login' target='_self'>Sign up or log in</a>"
    return "<a href='/logout' id='account-logout' target='_self'>Log out</a>"


def session_links(user) -> str:
    """The session line's links for `user`: "Log in or sign up" for a guest (or nobody), else their
    email and "Log out"."""
    if user is None or user.is_guest:
        return ("<span id='session-guest'>You are trying Atelier as a guest.</span> "
                "<a href='/login' data-next id='session-login' target='_self'>Log in or sign up</a>")
    return (f"<span id='session-user'>Logged in as <b>{html.escape(user.email)}</b></span> · "
            "<a href='/logout' id='session-logout' target='_self'>Log out</a> · your balance and API keys are "
            "in the Account tab")


def session_bar() -> gr.HTML:
    """The session line above the tabs (accounts mode), filled in for the person by `on_arrival`."""
    return gr.HTML(session_links(None), elem_id="session-links", js_on_load=NEXT_JS, padding=False)


def on_arrival(ctx: UIContext, tabs: gr.Tabs, admin_tab: gr.Tab):
    """The page-load handler of accounts mode, with outputs (session bar, admin_tab, tabs): the session
    links for the person, the Admin tab shown to admins only (each admin action still checks the role:
    auth.audit.Admin), and the tab named in `?tab=` selected (where the login page brought them back to;
    the Admin tab only for admins)."""
    tab_ids = {child.id for child in tabs.children if isinstance(child, gr.Tab)}

    def arrive(request: gr.Request):
        try:
            user = ctx.current_user(request)
        except AtelierError:          # an API client's bad key; a browser always has a session
            user = None
        admin = user is not None and user.role == "admin"
        wanted = request.query_params.get("tab") or ""
        shown = wanted in tab_ids and (admin or wanted != admin_tab.id)
        return session_links(user), gr.Tab(visible=admin), gr.Tabs(selected=wanted) if shown else gr.Tabs()
    return arrive


def ledger_table(entries: list[dict]) -> pd.DataFrame:
    """The credit history, newest first (as the ledger gives it)."""
    return table([[when(e["at"]), e["kind"], f"{e['amount']:+g}" if e["amount"] else "0", e["job_id"] or "",
                   e["note"] or ""] for e in entries], LEDGER_COLUMNS)


def keys_table(keys: list[dict]) -> pd.DataFrame:
    return table([[k["id"], k["prefix"] + "…", k["name"], when(k["created_at"]), when(k["last_used_at"]) or "never",
                   "revoked" if k["revoked"] else ""] for k in keys], KEY_COLUMNS)


def share_url(base: str, token: str) -> str:
    return f"{base}share/{token}"


def shares_table(shares: list[dict], base: str) -> pd.DataFrame:
    return table([[s["id"], share_url(base, s["token"]), ", ".join(a[:12] + "…" for a in s["artifact_ids"]),
                   "yes" if s["show_recipe"] else "no", when(s["created_at"]), "revoked" if s["revoked"] else ""]
                  for s in shares], SHARE_COLUMNS)


def reveal() -> gr.Column:
    return gr.Column(visible=True)


def chosen_id(value, what: str) -> int:
    """The id typed in a Number box, or a message saying where to find it."""
    value = whole(value)
    if not isinstance(value, int):
        raise gr.Error(f"Enter the id of the {what} (the Id column of the table).")
    return value


def build(ctx: UIContext) -> dict:
    """The tab's components. Returns {"load": fn, "outputs": [...]}: `load` fills everything in (wire it
    to the tab's select)."""
    account = ctx.account
    with gr.Row(equal_height=True):
        with gr.Column(scale=4):
            if not account.accounts_mode:
                gr.Markdown(LOCAL_MODE_NOTE, elem_id="account-local-note")
            who = gr.Markdown(elem_id="account-summary")
        with gr.Column(scale=2, min_width=220):
            balance = gr.Markdown(elem_id="account-balance")
            with gr.Row():
                refresh = gr.Button("Refresh", size="sm", elem_id="account-refresh")
                session = gr.HTML("", elem_id="account-session", padding=False)

    if account.accounts_mode:
        buying(ctx)

    gr.Markdown("### Credit history")
    ledger = gr.Dataframe(table([], LEDGER_COLUMNS), interactive=False, max_height=320, elem_id="account-ledger")

    gr.Markdown("### API keys\nScripts use a key as `Client(url, headers={\"Authorization\": \"Bearer <key>\"})`.")
    with gr.Row():
        key_name = gr.Textbox(label="Name of a new key", placeholder="my laptop", scale=3, elem_id="account-key-name")
        create_key = gr.Button("Create key", scale=1, elem_id="account-create-key")
    with gr.Column(visible=False) as new_key_box:
        new_key = gr.Textbox(label="Your new API key", info="Copy it now: it will not be shown again.",
                             interactive=False, buttons=["copy"], elem_id="account-new-key")
    keys = gr.Dataframe(table([], KEY_COLUMNS), interactive=False, max_height=260, elem_id="account-keys")
    with gr.Row():
        key_id = gr.Number(None, label="Key id to revoke", precision=0, scale=3, elem_id="account-key-id")
        revoke_key = gr.Button("Revoke key", variant="stop", scale=1, elem_id="account-revoke-key")

    gr.Markdown("### Share links\nAnyone with a link can see the images in it (no account needed) until you "
                "revoke it. Artifact ids are in each result's Details and in the Gallery's recipe.")
    with gr.Row():
        artifact_ids = gr.Textbox(label="Artifact ids (comma separated)", scale=3, elem_id="account-share-ids")
        show_recipe = gr.Checkbox(True, label="Show the recipe", scale=1, elem_id="account-share-recipe")
        create_share = gr.Button("Create link", scale=1, elem_id="account-create-share")
    with gr.Column(visible=False) as new_link_box:
        new_link = gr.Textbox(label="Your new share link", interactive=False, buttons=["copy"],
                              elem_id="account-new-link")
    shares = gr.Dataframe(table([], SHARE_COLUMNS), interactive=False, max_height=260, elem_id="account-shares")
    with gr.Row():
        share_id = gr.Number(None, label="Link id to revoke", precision=0, scale=3, elem_id="account-share-id")
        revoke_share = gr.Button("Revoke link", variant="stop", scale=1, elem_id="account-revoke-share")

    @user_errors
    def load(request: gr.Request = None):
        user = ctx.current_user(request)
        summary = account.summary(user)
        return (who_markdown(summary), balance_markdown(summary), session_link(summary),
                ledger_table(account.ledger(user)), keys_table(account.keys(user)),
                shares_table(account.shares(user), page_address(request, ctx.public_url)))

    @user_errors
    def make_key(name: str, request: gr.Request = None):
        user = ctx.api_caller(request)
        key = account.create_key(user, (name or "").strip())
        return key, keys_table(account.keys(user))

    @user_errors
    def drop_key(key: float | None, request: gr.Request = None):
        user = ctx.api_caller(request)
        account.revoke_key(user, chosen_id(key, "key"))
        return keys_table(account.keys(user))

    @user_errors
    def make_link(ids: str, recipe: bool, request: gr.Request = None):
        user = ctx.api_caller(request)
        base = page_address(request, ctx.public_url)
        token = account.share(user, ids or "", bool(recipe))
        return share_url(base, token), shares_table(account.shares(user), base)

    @user_errors
    def drop_link(link: float | None, request: gr.Request = None):
        user = ctx.api_caller(request)
        account.revoke_share(user, chosen_id(link, "share link"))
        return shares_table(account.shares(user), page_address(request, ctx.public_url))

    outputs = [who, balance, session, ledger, keys, shares]
    refresh.click(load, None, outputs, api_visibility="private")
    # The API gets the new key or link as plain text; only the page reveals the box that shows it. Gradio's MCP
    # server offers AI agents none of these (keys and links are for people and their scripts).
    for fn in (make_key, drop_key, make_link, drop_link):
        kept_from_agents(fn)
    create_key.click(make_key, [key_name], [new_key, keys], api_name="create_api_key").success(
        reveal, None, [new_key_box], api_visibility="private")
    revoke_key.click(drop_key, [key_id], [keys], api_name="revoke_api_key")
    create_share.click(make_link, [artifact_ids, show_recipe], [new_link, shares],
                       api_name="create_share_link").success(reveal, None, [new_link_box], api_visibility="private")
    revoke_share.click(drop_link, [share_id], [shares], api_name="revoke_share_link")
    return {"load": load, "outputs": outputs}


def buying(ctx: UIContext) -> None:
    """Buy a credit pack, or subscribe to a tier, through Stripe Checkout (the browser goes there and
    comes back); a note instead when billing is not set up."""
    account = ctx.account
    gr.Markdown("### Buy credits")
    if account.billing is None:
        gr.Markdown("Buying credits is not set up on this server; ask its admin for credits.",
                    elem_id="account-billing-off")
        return
    checkout_url = gr.Textbox(visible=False, elem_id="account-checkout-url")
    packs = [(pack.label or f"{pack.credits:,} credits", pack.id) for pack in account.tiers.packs]
    tiers = account.subscribable_tiers()
    with gr.Row():
        pack = gr.Dropdown(packs, value=packs[0][1] if packs else None, label="Credit pack", scale=2,
                           elem_id="account-pack")
        buy = gr.Button("Buy credits", variant="primary", scale=1, elem_id="account-buy")
        if tiers:
            tier = gr.Dropdown(tiers, value=tiers[0], label="Monthly plan", scale=2, elem_id="account-plan")
            subscribe = gr.Button("Subscribe", scale=1, elem_id="account-subscribe")

    @user_errors
    def to_checkout(pack_id: str, request: gr.Request = None) -> str:
        return account.checkout(ctx.current_user(request), pack_id, page_address(request, ctx.public_url))

    @user_errors
    def to_subscription(tier_name: str, request: gr.Request = None) -> str:
        return account.subscribe(ctx.current_user(request), tier_name, page_address(request, ctx.public_url))

    buy.click(to_checkout, [pack], [checkout_url], api_visibility="private").success(
        None, [checkout_url], None, js=REDIRECT_JS)
    if tiers:
        subscribe.click(to_subscription, [tier], [checkout_url], api_visibility="private").success(
            None, [checkout_url], None, js=REDIRECT_JS)
