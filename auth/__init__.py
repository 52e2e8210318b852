"""Accounts: users and guests, who a request comes from (session cookie or API key), sessions, API keys,
roles, tiers, rate limits, the credit ledger, share links, the audit log, OAuth account linking and
Stripe billing. The HTTP routes and pages for these are in `web`."""
from auth.accounts import Accounts, AuthError
from auth.callers import WebAuth, session_secret
from auth.policy import Forbidden, Policy, RateLimited
from auth.service import AccountService
from auth.users import local_owner

__all__ = ["AccountService", "Accounts", "AuthError", "Forbidden", "Policy", "RateLimited", "WebAuth",
           "local_owner", "session_secret"]
