"""GET /v1/route reads its query string as ``urllib.parse.parse_qsl`` does (the last of a
repeated parameter wins, blank ones are absent), whether or not it has escapes."""
from __future__ import annotations

from urllib.parse import parse_qsl

import pytest

from consultation_routing.api.route import query_values

QUERIES = [
    "", "channel=im", "channel=im&entry_point=product_page&sku=sku-1",
    "channel=im&channel=phone", "sku=&channel=im", "sku&channel=im", "=x&channel=im", "a=b=c",
    "&&channel=im&", "sku=%E6%89%8B%E6%9C%BA&channel=im", "customer_id=a+b&channel=im", "at=2026-01-01T00:00:00%2B08:00",
    "sku=a%26b&channel=im", "x=%zz", "sku=%20",
]


@pytest.mark.parametrize("qs", QUERIES)
def test_the_query_reads_as_parse_qsl_reads_it(qs):
    expected = {k: v for k, v in parse_qsl(qs.encode("latin-1").decode("latin-1")) if v}
    assert query_values(qs.encode("latin-1")) == expected
