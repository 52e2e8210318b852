"""The Admin tab: every account with its usage, granting credits, changing a tier or a role, the audit
log of those actions, and the workers with the queue. In accounts mode only admins see the tab (ui.app
shows it on page load: ui.account_tab.on_arrival); in local mode the local owner is an admin. Whoever
reaches it anyway sees only "Admins only", and each action is checked again by `auth.audit.Admin`, which
refuses non-admins."""
from __future__ import annotations

import json
import time

import gradio as gr
import pandas as pd

from queueing.leases import live_workers, queue_depth
from storage.models import ROLES
from ui.account_tab import when
from ui.common import UIContext, user_errors, whole

USER_COLUMNS = ["Id", "Email", "Role", "Tier", "Balance", "Jobs done", "Credits spent"]
AUDIT_COLUMNS = ["When (UTC)", "Admin", "Action", "Account", "Details"]
WORKER_COLUMNS = ["Worker", "Models", "Threads", "Running jobs", "Heartbeat", "State"]
SEEN_WITHIN = 600          # workers that beat in the last ten minutes are listed
ADMINS_ONLY = "**Admins only.** This tab is for the people who run this server."


def users_table(users: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([[u["user_id"], u["email"], u["role"], u["tier"], f"{u['balance']:g}", u["jobs"],
                          f"{u['credits_spent']:g}"] for u in users], columns=USER_COLUMNS)


def audit_table(events: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([[when(e["at"]), e["actor"], e["action"], e["target"],
                          json.dumps(e["details"], sort_keys=True)] for e in events], columns=AUDIT_COLUMNS)


def workers_table(lease_seconds: float) -> pd.DataFrame:
    """Workers seen lately: alive while they beat within a lease, "gone" after, "stopping" once told to."""
    now, rows = time.time(), []
    for w in live_workers(SEEN_WITHIN):
        state = "stopping" if w.stopping_at else ("alive" if now - w.heartbeat_at <= lease_seconds else "gone")
        rows.append([w.name, ", ".join(json.loads(w.models)) or "all", w.threads, ", ".join(json.loads(w.running)),
                     f"{now - w.heartbeat_at:.0f} s ago", state])
    return pd.DataFrame(rows, columns=WORKER_COLUMNS)


def queue_text() -> str:
    depth = queue_depth()
    if not depth:
        return "**Queue:** empty."
    return "**Queue:** " + " · ".join(f"priority {p}: {n} waiting" for p, n in depth.items())


def target_id(value) -> int:
    value = whole(value)
    if not isinstance(value, int):
        raise gr.Error("Enter the user's id (the Id column of the users table).")
    return value


def build(ctx: UIContext) -> dict:
    """The tab's components. Returns {"load": fn, "outputs": [...]}: `load` fills it in for admins and
    shows "Admins only" to everyone else (wire it to the tab's select)."""
    account = ctx.account
    admin = account.admin
    notice = gr.Markdown("", elem_id="admin-notice")
    with gr.Column(visible=False) as panel:
        with gr.Row():
            gr.Markdown("### Users")
            find = gr.Textbox(placeholder="Find by email", show_label=False, scale=2, elem_id="admin-find")
            refresh = gr.Button("Refresh", size="sm", scale=0, elem_id="admin-refresh")
        users = gr.Dataframe(users_table([]), interactive=False, max_height=360, elem_id="admin-users")
        user_id = gr.Number(None, label="User id", precision=0, elem_id="admin-user-id")
        with gr.Row(equal_height=True):
            amount = gr.Number(None, label="Credits (negative takes away)", elem_id="admin-amount")
            note = gr.Textbox(label="Note", placeholder="why", scale=2, elem_id="admin-note")
            grant = gr.Button("Grant credits", variant="primary", elem_id="admin-grant")
        with gr.Row(equal_height=True):
            tier = gr.Dropdown(list(account.tiers.names), value=account.tiers.default.name, label="Tier",
                               elem_id="admin-tier")
            set_tier = gr.Button("Change tier", elem_id="admin-set-tier")
            role = gr.Dropdown(list(ROLES), value="user", label="Role", elem_id="admin-role")
            set_role = gr.Button("Change role", elem_id="admin-set-role")
        with gr.Row(equal_height=True):
            job_id = gr.Textbox(label="Job id (a succeeded job)", scale=2, elem_id="admin-job-id")
            refund = gr.Button("Refund its credits", elem_id="admin-refund")
        gr.Markdown("### Audit log")
        audit = gr.Dataframe(audit_table([]), interactive=False, max_height=360, elem_id="admin-audit")
        gr.Markdown("### Workers")
        queue = gr.Markdown("", elem_id="admin-queue")
        workers = gr.Dataframe(pd.DataFrame([], columns=WORKER_COLUMNS), interactive=False, max_height=240,
                               elem_id="admin-workers")

    def tables(actor, search: str) -> tuple:
        return users_table(admin.users(actor, (search or "").strip())), audit_table(account.audit_log(actor))

    @user_errors
    def load(search: str = "", request: gr.Request = None):
        actor = ctx.current_user(request)
        if actor.role != "admin":
            return (ADMINS_ONLY, gr.Column(visible=False), users_table([]), audit_table([]), "",
                    pd.DataFrame([], columns=WORKER_COLUMNS))
        return "", gr.Column(visible=True), *tables(actor, search), queue_text(), workers_table(ctx.lease_seconds)

    @user_errors
    def give(who, how_many, why: str, search: str, request: gr.Request = None):
        actor = ctx.current_user(request)
        credits = whole(how_many)
        admin.grant(actor, target_id(who), credits, (why or "").strip())
        gr.Info(f"Granted {credits:g} credits to user {target_id(who)}.")
        return tables(actor, search)

    @user_errors
    def change_tier(who, name: str, search: str, request: gr.Request = None):
        actor = ctx.current_user(request)
        admin.set_tier(actor, target_id(who), name)
        return tables(actor, search)

    @user_errors
    def change_role(who, name: str, search: str, request: gr.Request = None):
        actor = ctx.current_user(request)
        admin.set_role(actor, target_id(who), name)
        return tables(actor, search)

    @user_errors
    def give_back(job: str, search: str, request: gr.Request = None):
        actor = ctx.current_user(request)
        amount = admin.refund(actor, (job or "").strip())
        gr.Info(f"Refunded {amount:g} credits for job {job.strip()}.")
        return tables(actor, search)

    private = {"api_visibility": "private"}
    outputs = [notice, panel, users, audit, queue, workers]
    refresh.click(load, [find], outputs, **private)
    find.submit(load, [find], outputs, **private)
    grant.click(give, [user_id, amount, note, find], [users, audit], **private)
    set_tier.click(change_tier, [user_id, tier, find], [users, audit], **private)
    set_role.click(change_role, [user_id, role, find], [users, audit], **private)
    refund.click(give_back, [job_id, find], [users, audit], **private)
    return {"load": load, "inputs": [find], "outputs": outputs}
