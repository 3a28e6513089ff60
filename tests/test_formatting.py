"""Amounts in French: money_fr writes exactly what Babel's format_currency writes, faster."""

from __future__ import annotations

from decimal import Decimal

from babel.numbers import format_currency
from hypothesis import given, settings
from hypothesis import strategies as st

from webapp.templating import money_fr

AMOUNTS = st.decimals(min_value=Decimal("-1e12"), max_value=Decimal("1e12"), allow_nan=False, places=4)
CURRENCIES = st.sampled_from(["EUR", "USD", "GBP", "CHF", "CAD", "JPY", "XOF", "TND", "KWD"])


def test_money_fr_is_babels_french_format(app):
    with app.test_request_context():

        @settings(max_examples=500, deadline=None, database=None)
        @given(amount=AMOUNTS, currency=CURRENCIES)
        def same(amount, currency):
            assert money_fr(amount, currency) == format_currency(amount, currency, locale="fr_FR")

        same()
        assert money_fr(Decimal("-1234.5")) == "-1\u202f234,50\xa0€"
        assert money_fr(Decimal("-0.004")) == "-0,00\xa0€"
        assert money_fr(None) == "—"
