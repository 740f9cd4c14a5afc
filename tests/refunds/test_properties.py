"""Property tests: partial refunds and splits add up exactly, for any sequence."""

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from backoffice.money import largest_remainder, part, spread, tax_on


@given(
    quantity=st.integers(1, 50),
    unit_price=st.integers(0, 100_000),
    discount_share=st.floats(0, 1),
    rate=st.sampled_from(["0", "0.05", "0.175", "0.20", "0.21"]),
    data=st.data(),
)
@settings(max_examples=300)
def test_any_sequence_of_partial_refunds_sums_to_net_and_tax(
    quantity, unit_price, discount_share, rate, data
):
    gross = quantity * unit_price
    net = gross - int(gross * discount_share)
    tax = tax_on(net, Decimal(rate))
    refunded = 0
    given_net = given_tax = 0
    while refunded < quantity:
        q = data.draw(st.integers(1, quantity - refunded))
        given_net += part(net, refunded, q, quantity)
        given_tax += part(tax, refunded, q, quantity)
        assert 0 <= given_net <= net and 0 <= given_tax <= tax
        refunded += q
    assert (given_net, given_tax) == (net, tax)


@given(
    total=st.integers(0, 10**9),
    weights=st.lists(st.integers(1, 10**7), min_size=1, max_size=6),
)
def test_spread_adds_up_exactly(total, weights):
    parts = spread(total, weights)
    assert sum(parts) == total
    assert all(p >= 0 for p in parts)


@given(
    payments=st.lists(st.tuples(st.integers(1, 10**6), st.integers(0, 10**6)), min_size=1,
                      max_size=5),
    data=st.data(),
)
def test_split_across_payments_adds_up_and_respects_what_is_left(payments, data):
    weights = [amount for amount, _ in payments]
    caps = [min(amount, left) for amount, left in payments]
    total = data.draw(st.integers(0, sum(caps)))
    parts = largest_remainder(total, weights, caps)
    assert sum(parts) == total
    assert all(0 <= p <= cap for p, cap in zip(parts, caps, strict=True))
