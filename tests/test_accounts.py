"""Accounts mode end to end: API keys, credits, ownership, tiers and rate limits, through gradio_client
against the app served on 127.0.0.1 (real SQLite, real Huey consumer)."""
import pytest
from gradio_client.exceptions import AppError

from tests.conftest import api_client


def test_an_api_key_acts_as_its_user(accounts_app, make_user):
    user, key = make_user(balance=10)
    client = api_client(accounts_app, key)
    me = client.predict(api_name="/account")
    assert (me["user_id"], me["email"], me["role"], me["tier"], me["balance"]) == \
        (user.id, user.email, "user", "free", 10)
    files, info = client.predict(prompt="a paid fox", api_name="/txt2img")
    assert info["credits"] == 0.5                       # 64x64 on SD1.5: the half-credit minimum
    assert client.predict(api_name="/account")["balance"] == 9.5
