"""Accounts: users and guests, sessions, API keys, roles, tiers, rate limits, the credit ledger,
share links, the audit log, OAuth login and Stripe billing."""
from auth.accounts import Accounts, AuthError
from auth.policy import Forbidden, Policy, RateLimited
from auth.service import AccountService
from auth.users import local_owner
from auth.web import WebAuth, session_secret

__all__ = ["AccountService", "Accounts", "AuthError", "Forbidden", "Policy", "RateLimited", "WebAuth",
           "local_owner", "session_secret"]
