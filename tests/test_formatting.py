"""Amounts, dates and numbers in French: the filters write exactly what Babel writes, faster."""

from __future__ import annotations

from decimal import Decimal

from babel.numbers import format_currency
from hypothesis import given, settings
from hypothesis import strategies as st

from webapp.templating import date_fr, datetime_fr, money_fr, number_fr

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


def test_dates_and_numbers_are_babels_even_when_kept(app):
    """The filters keep Babel's output per value: asked twice, and for values equal as numbers but
    written apart (Decimal('2.50') and 2.5), they still write what Babel writes."""
    from datetime import UTC, date, datetime

    import flask_babel

    with app.test_request_context():

        @settings(max_examples=300, deadline=None, database=None)
        @given(
            day=st.dates(min_value=date(1900, 1, 1), max_value=date(2100, 12, 31)),
            moment=st.datetimes(
                min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
            ),
            number=st.one_of(
                st.integers(-(10**12), 10**12),
                st.decimals(min_value=-(10**9), max_value=10**9, allow_nan=False, places=3),
            ),
        )
        def same(day, moment, number):
            for _ in range(2):
                assert date_fr(day) == flask_babel.format_date(day, "dd/MM/yyyy")
                assert datetime_fr(moment) == flask_babel.format_datetime(moment, "dd/MM/yyyy 'à' HH:mm")
                assert number_fr(number) == flask_babel.format_decimal(number)

        same()
        assert number_fr(Decimal("2.50")) == number_fr(2.5) == "2,5"
        assert number_fr(1234567) == "1\u202f234\u202f567"
        assert datetime_fr(datetime(2026, 7, 1, 22, 30, tzinfo=UTC)) == "02/07/2026 à 00:30"
        assert date_fr(None) == datetime_fr(None) == number_fr(None) == "—"
