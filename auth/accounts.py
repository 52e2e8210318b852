"""Accounts: sign-up and password login, guests, login sessions and the monthly grant.

Passwords are hashed with argon2id (argon2-cffi) and never stored or logged in clear. A login
session is a random token in a signed, HttpOnly cookie; the table keeps only its sha256, so logging
out (or an admin deleting the row) ends it at once.
"""
from __future__ import annotations

import hashlib
import logging
import re
import secrets
import time

import argon2
from peewee import fn

from auth import credits
from configs import Tiers
from pipelines.errors import AtelierError
from storage.artifacts import move_holdings
from storage.db import database
from storage.models import ROLES, Job, OAuthIdentity, Session, ShareLink, User

logger = logging.getLogger(__name__)

_hasher = argon2.PasswordHasher()
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 8


class AuthError(AtelierError):
    code = "unauthorized"


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def check_email(email) -> str:
    if not isinstance(email, str) or not EMAIL.match(email.strip()):
        raise AtelierError(f"{email!r} is not an email address; write it as name@example.com.", code="bad_email",
                           field="email")
    return email.strip().lower()


def check_password(password) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise AtelierError(f"The password needs at least {MIN_PASSWORD} characters.", code="weak_password",
                           field="password")
    return password


class Accounts:
    """People and their logins.

    Args:
        tiers: the tiers (for the monthly grant and the default tier).
        guest_credits: credits a new guest gets.
        session_seconds: how long a login lasts.
    """

    def __init__(self, tiers: Tiers, guest_credits: float = 5.0, session_seconds: float = 30 * 86400):
        self.tiers = tiers
        self.guest_credits = guest_credits
        self.session_seconds = session_seconds

    # -- users -----------------------------------------------------------------------------------

    def create_user(self, email: str, password: str | None = None, *, role: str = "user", tier: str | None = None,
                    credits_: float = 0.0, name: str = "") -> User:
        """A new account; raises AtelierError if the email is taken or a value is wrong. Gets its tier's
        monthly credits (plus `credits_`, if given)."""
        email = check_email(email)
        if role not in ROLES:
            raise AtelierError(f"Unknown role {role!r}; use one of {ROLES}.", code="bad_role", field="role")
        tier = tier or self.tiers.default.name
        if tier not in self.tiers.names:
            raise AtelierError(f"Unknown tier {tier!r}; use one of {self.tiers.names}.", code="bad_tier",
                               field="tier")
        password_hash = hash_password(check_password(password)) if password is not None else ""
        with database.atomic():
            if User.select().where(User.email == email).exists():
                raise AtelierError(f"There is already an account for {email}; log in instead.", code="email_taken",
                                   field="email")
            user = User.create(email=email, name=name or email.split("@")[0], role=role, tier=tier,
                               password_hash=password_hash)
            if credits_:
                credits.grant(user, credits_, f"created:{user.id}", note="on creation")
        self.monthly_grant(user)
        logger.info("user %s: created (%s, %s)", user.id, role, tier)
        return user

    def authenticate(self, email, password) -> User:
        """The user with this email and password; raises AuthError (the same message either way)."""
        wrong = AuthError("Wrong email or password.", field="password")
        if not isinstance(email, str) or not isinstance(password, str):
            raise wrong
        user = User.get_or_none((User.email == email.strip().lower()) & (User.is_guest == False))  # noqa: E712
        if user is None or not user.password_hash:
            _hasher.hash(password)                  # the same work either way, so timing says nothing
            raise wrong
        try:
            _hasher.verify(user.password_hash, password)
        except argon2.exceptions.VerificationError:
            raise wrong from None
        if _hasher.check_needs_rehash(user.password_hash):
            User.update(password_hash=hash_password(password)).where(User.id == user.id).execute()
        self.monthly_grant(user)
        return user

    def monthly_grant(self, user: User, now: float | None = None) -> bool:
        """Grant the tier's monthly credits once per calendar month (UTC); guests get none."""
        return credits.monthly_grant(user, self.tiers.tier(user.tier).monthly_credits, now)

    # -- guests ------------------------------------------------------------------------------------

    def create_guest(self) -> User:
        """A visitor without an account: a guest user with `guest_credits` to try things."""
        with database.atomic():
            user = User.create(email=f"guest-{secrets.token_hex(8)}@guest.invalid", name="Guest", is_guest=True,
                               tier=self.tiers.default.name)
            credits.grant(user, self.guest_credits, f"guest:{user.id}", note="guest credits")
        logger.info("user %s: guest created", user.id)
        return user

    def sign_up(self, email, password, guest: User | None = None) -> User:
        """A new account with a password. A guest signing up becomes the account, keeping what they
        made and their credits."""
        if guest is None or not guest.is_guest:
            return self.create_user(email, password)
        email, password = check_email(email), check_password(password)
        with database.atomic():
            if User.select().where(User.email == email).exists():
                raise AtelierError(f"There is already an account for {email}; log in instead.", code="email_taken",
                                   field="email")
            User.update(email=email, name=email.split("@")[0], password_hash=hash_password(password),
                        is_guest=False).where(User.id == guest.id).execute()
        user = User.get_by_id(guest.id)
        self.monthly_grant(user)
        logger.info("user %s: guest signed up", user.id)
        return user

    def absorb_guest(self, guest: User | None, user: User) -> None:
        """A guest logged in to an existing account: move the guest's jobs, artifacts, share links and
        credits over."""
        if guest is None or not guest.is_guest or guest.id == user.id:
            return
        with database.atomic():
            Job.update(owner=user).where(Job.owner == guest).execute()
            move_holdings(guest, user)        # each as the guest held it: what the guest made stays made
            ShareLink.update(owner=user).where(ShareLink.owner == guest).execute()
            credits.move_all(guest, user, f"guest-merge:{guest.id}")
        logger.info("user %s: took over guest %s", user.id, guest.id)

    def oauth_user(self, provider: str, subject: str, email: str, email_verified: bool = False,
                   guest: User | None = None) -> User:
        """The user an OAuth / OpenID Connect login stands for: the one linked to (provider, subject),
        else the account with that email if the provider verified it, else a new account (the guest's,
        if a guest is logged in). Raises AtelierError when the email belongs to an account but is not
        verified (linking it would let anyone claim that account)."""
        identity = OAuthIdentity.get_or_none((OAuthIdentity.provider == provider) & (OAuthIdentity.subject == subject))
        if identity is not None:
            user = identity.user
        else:
            email = check_email(email or f"{subject}@{provider}.oauth.invalid")
            user = User.get_or_none(User.email == email)
            if user is not None and not email_verified:
                raise AtelierError(f"There is already an account for {email}, and {provider} has not verified that "
                                   "address. Log in with your password instead.", code="email_unverified",
                                   field="email")
            if user is None:
                user = (self._promote(guest, email) if guest is not None and guest.is_guest
                        else self.create_user(email))
            OAuthIdentity.create(provider=provider, subject=subject, user=user, email=email)
        self.absorb_guest(guest, user)
        self.monthly_grant(user)
        return user

    def _promote(self, guest: User, email: str) -> User:
        User.update(email=email, name=email.split("@")[0], is_guest=False).where(User.id == guest.id).execute()
        return User.get_by_id(guest.id)

    def prune_guests(self, older_than_days: float) -> int:
        """Delete guests older than `older_than_days` that never queued a job (visitors who looked and
        left, or crawlers); returns how many."""
        cutoff = time.time() - older_than_days * 86400
        idle = (User.select(User.id).where((User.is_guest == True) & (User.created_at < cutoff)  # noqa: E712
                                           & ~fn.EXISTS(Job.select().where(Job.owner == User.id))))
        return User.delete().where(User.id.in_([u.id for u in idle])).execute()

    # -- sessions ----------------------------------------------------------------------------------

    def start_session(self, user: User) -> str:
        """A new login for `user`; returns the token for the cookie."""
        token = secrets.token_urlsafe(32)
        now = time.time()
        Session.create(token_hash=sha256(token), user=user, created_at=now, expires_at=now + self.session_seconds)
        return token

    def session_user(self, token) -> User | None:
        """The user of a live session token; None for unknown, ended or expired ones."""
        if not isinstance(token, str) or not token:
            return None
        session = (Session.select(Session, User).join(User)
                   .where((Session.token_hash == sha256(token)) & (Session.expires_at > time.time())).first())
        return session.user if session is not None else None

    def end_session(self, token) -> None:
        if isinstance(token, str) and token:
            Session.delete().where(Session.token_hash == sha256(token)).execute()
