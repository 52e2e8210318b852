"""Everything the Account and Admin tabs and the account endpoints do, for one caller at a time."""
from __future__ import annotations

from auth import api_keys, audit, credits, sharing
from auth.accounts import Accounts
from auth.audit import Admin
from auth.policy import Forbidden, Policy
from configs import Tiers
from pipelines.errors import AtelierError
from storage.models import User


class AccountService:
    """A user's account as the UI sees it.

    Args:
        accounts, policy, tiers: the account rules.
        accounts_mode: False in local mode (credits are shown but never charged).
        billing: auth.billing.Billing when Stripe is configured, else None.
    """

    def __init__(self, accounts: Accounts, policy: Policy, tiers: Tiers, accounts_mode: bool, billing=None):
        self.accounts = accounts
        self.policy = policy
        self.tiers = tiers
        self.accounts_mode = accounts_mode
        self.billing = billing
        self.admin = Admin(tiers)

    def summary(self, user: User) -> dict:
        """user_id, email, role, tier, balance (and whether this is a guest), as /account returns it."""
        if self.accounts_mode:
            self.accounts.monthly_grant(user)
        user = User.get_by_id(user.id)
        tier = self.tiers.tier(user.tier)
        return {"user_id": user.id, "email": user.email, "role": user.role, "tier": user.tier,
                "balance": credits.balance(user), "guest": user.is_guest, "mode": "accounts" if self.accounts_mode
                else "local", "monthly_credits": tier.monthly_credits, "max_side": tier.max_side,
                "generations_per_hour": tier.generations_per_hour, "api_calls_per_minute": tier.api_calls_per_minute}

    def ledger(self, user: User, limit: int = 100) -> list[dict]:
        return [{"at": e.created_at, "kind": e.kind, "amount": e.amount, "job_id": e.job_id, "note": e.note}
                for e in credits.history(user, limit)]

    def check_api_call(self, user: User) -> None:
        if self.accounts_mode:
            self.policy.check_api_call(user)

    def _member(self, user: User) -> None:
        if user.is_guest:
            raise Forbidden("Sign up first (it keeps what you made as a guest); then you can do that.",
                            field="account")

    # -- API keys ------------------------------------------------------------------------------------

    def create_key(self, user: User, name: str = "") -> str:
        """A new API key (returned once, never shown again)."""
        self._member(user)
        return api_keys.create_key(user, name)[1]

    def keys(self, user: User) -> list[dict]:
        return api_keys.list_keys(user)

    def revoke_key(self, user: User, key_id) -> None:
        api_keys.revoke_key(user, key_id)

    # -- share links ---------------------------------------------------------------------------------

    def share(self, user: User, artifact_ids, show_recipe: bool = True) -> str:
        """A new share link's token."""
        return sharing.create_share(user, artifact_ids, show_recipe).token

    def shares(self, user: User) -> list[dict]:
        return sharing.list_shares(user)

    def revoke_share(self, user: User, share_id) -> None:
        sharing.revoke_share(user, share_id)

    # -- buying credits ------------------------------------------------------------------------------

    def checkout(self, user: User, pack_id: str, base_url: str) -> str:
        """The Stripe Checkout page to pay for credit pack `pack_id`."""
        self._member(user)
        if self.billing is None:
            raise AtelierError("Buying credits is not set up here (no ATELIER_STRIPE_SECRET_KEY); ask the admin.",
                               code="billing_off")
        return self.billing.checkout_url(user, pack_id, base_url)

    def subscribable_tiers(self) -> list[str]:
        """Names of the tiers sold by Stripe subscription (those with a `stripe_price`)."""
        return [t.name for t in self.tiers.tiers if t.stripe_price]

    def subscribe(self, user: User, tier_name: str, base_url: str) -> str:
        """The Stripe Checkout page that subscribes `user` to tier `tier_name` (the webhook sets the tier)."""
        self._member(user)
        if self.billing is None:
            raise AtelierError("Subscriptions are not set up here (no ATELIER_STRIPE_SECRET_KEY); ask the admin.",
                               code="billing_off")
        return self.billing.subscribe_url(user, tier_name, base_url)

    # -- admin ---------------------------------------------------------------------------------------

    def audit_log(self, actor: User, limit: int = 200) -> list[dict]:
        if actor.role != "admin":
            raise Forbidden("Only admins may do that.", field="role")
        return audit.events(limit)
