"""Accounts. For now: the one local owner who owns everything in single-user mode."""
from auth.users import local_owner

__all__ = ["local_owner"]
