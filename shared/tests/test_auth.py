from datetime import datetime, timedelta, timezone

import pytest

from shared.auth import Principal, issue_token, verify_token
from shared.errors import ApiError

SECRET = "s" * 40


def test_round_trip_keeps_role_merchant_permissions_and_categories():
    p = Principal("merchant_staff", "st-1", merchant_id="m-1", permissions=frozenset({"audit"}),
                  categories=frozenset({"phones"}))
    got = verify_token(issue_token(p, SECRET), SECRET)
    assert got == p


def test_expired_forged_and_garbage_tokens_are_401():
    p = Principal("platform_operator", "op")
    old = issue_token(p, SECRET, now=datetime.now(timezone.utc) - timedelta(hours=1))
    for token, secret in ((old, SECRET), (issue_token(p, "other" * 10), SECRET), ("garbage", SECRET)):
        with pytest.raises(ApiError) as e:
            verify_token(token, secret)
        assert e.value.status == 401 and e.value.code == "unauthorized"
