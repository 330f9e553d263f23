"""The one RFC 2822 formatter (API dates, webhook and callback parameters)."""

from __future__ import annotations

import random
from email.utils import formatdate

from rcmlrouter.dates import rfc2822


def test_rfc2822_is_email_utils_formatdate_in_gmt() -> None:
    assert rfc2822(1383567251) == "Mon, 04 Nov 2013 12:14:11 +0000"
    rng = random.Random(2822)
    for timestamp in [0.0, 951782400.5, 4102444799.0] + [rng.uniform(0, 4e9) for _ in range(2000)]:
        assert rfc2822(timestamp) == formatdate(timestamp).replace("-0000", "+0000")
