"""Money is an integer in minor units plus an ISO 4217 currency. Never a float."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

# Currencies whose minor unit is not the cent (ISO 4217 exponent).
_EXPONENTS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0,
    "PYG": 0, "RWF": 0, "UGX": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}
_SYMBOLS = {"GBP": "£", "USD": "$", "EUR": "€", "JPY": "¥", "CAD": "CA$", "AUD": "A$"}


def currency_symbol(currency: str) -> str:
    """The currency's symbol (£, $, €), or its ISO code when it has none here."""
    return _SYMBOLS.get(currency.upper(), currency.upper())


def exponent(currency: str) -> int:
    return _EXPONENTS.get(currency.upper(), 2)


def share(amount: int, upto: int, whole: int) -> int:
    """The part of `amount` that belongs to the first `upto` of `whole` units.

    Successive differences `share(a, r+q, n) - share(a, r, n)` add up exactly to
    `amount` over any partition of the n units: no minor unit is lost or invented.
    """
    if whole <= 0:
        return 0
    return amount * upto // whole


def part(amount: int, already: int, more: int, whole: int) -> int:
    """What `more` units give back when `already` of `whole` were given back before."""
    return share(amount, already + more, whole) - share(amount, already, whole)


def tax_on(net: int, rate: Decimal) -> int:
    """Tax on a net amount, rounded half up to the minor unit."""
    return int((Decimal(net) * rate).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def spread(total: int, weights: list[int]) -> list[int]:
    """Split `total` over `weights` by the cumulative rule: the parts add up to `total`."""
    whole = sum(weights)
    if whole <= 0:
        return [0] * len(weights)
    parts, cumulative = [], 0
    for weight in weights:
        parts.append(share(total, cumulative + weight, whole) - share(total, cumulative, whole))
        cumulative += weight
    return parts


def largest_remainder(total: int, weights: list[int], caps: list[int]) -> list[int]:
    """Split `total` in proportion to `weights`, each part at most its cap.

    Largest-remainder apportionment; what a capped part cannot take is apportioned
    again over the others. The parts add up exactly to `total` (which must not exceed
    the sum of the caps).
    """
    if total > sum(caps):
        raise ValueError("total exceeds the caps")
    parts = [0] * len(weights)
    remaining = total
    open_ = [i for i, cap in enumerate(caps) if cap > 0]
    while remaining > 0 and open_:
        ws = {i: weights[i] for i in open_}
        if not sum(ws.values()):
            ws = dict.fromkeys(open_, 1)
        whole = sum(ws.values())
        quotas = {i: remaining * ws[i] // whole for i in open_}
        rems = {i: remaining * ws[i] % whole for i in open_}
        leftover = remaining - sum(quotas.values())
        for i in sorted(open_, key=lambda i: (-rems[i], i))[:leftover]:
            quotas[i] += 1
        given = 0
        for i in open_:
            take = min(quotas[i], caps[i] - parts[i])
            parts[i] += take
            given += take
        remaining -= given
        open_ = [i for i in open_ if parts[i] < caps[i]]
    return parts


def format_money(amount: int, currency: str) -> str:
    """For people: £104.03, ¥1,200, 12.500 KWD."""
    exp = exponent(currency)
    value = Decimal(amount).scaleb(-exp)
    sign = "-" if amount < 0 else ""
    number = f"{abs(value):,.{exp}f}"
    symbol = _SYMBOLS.get(currency.upper())
    if symbol:
        return f"{sign}{symbol}{number}"
    return f"{sign}{number} {currency.upper()}"
