"""Go number semantics that leak into lighthouse's observable behaviour.

Lighthouse parses targets with Go's ``strconv.ParseFloat`` and prints scores into messages
with ``fmt``'s ``%v``. Python's ``float()`` and ``str()`` differ on exactly the inputs a
user might write or read back (``" 90"``, ``"1_0"``, ``1e6``), so both are reproduced here.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal

# Go float literal syntax accepted by ParseFloat (decimal form). No surrounding whitespace,
# no underscores (Go only allows them together with a base prefix).
_DECIMAL = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
# Hex form: Go requires the binary exponent ("p") for hexadecimal floats.
_HEX = re.compile(r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?\d+")
_SPECIAL = {"inf": math.inf, "infinity": math.inf, "nan": math.nan}


def parse_float(text: str) -> float:
    """``strconv.ParseFloat(text, 64)``; raises ValueError where Go returns an error.

    Out-of-range literals (``1e400``) are an error in Go (ErrRange), not infinity.
    """
    lowered = text.lower()
    sign = -1.0 if lowered.startswith("-") else 1.0
    bare = lowered[1:] if lowered[:1] in "+-" else lowered
    if bare in _SPECIAL:
        if bare == "nan" and lowered != "nan":
            raise ValueError(f"invalid syntax: {text!r}")  # Go rejects a signed NaN
        return sign * _SPECIAL[bare]
    if _HEX.fullmatch(text):
        value = float.fromhex(text)
    elif _DECIMAL.fullmatch(text):
        value = float(text)
    else:
        raise ValueError(f"invalid syntax: {text!r}")
    if math.isinf(value):
        raise ValueError(f"value out of range: {text!r}")
    return value


def format_float(value: float) -> str:
    """``fmt.Sprintf("%v", value)`` for a float64.

    %v is %g with the shortest round-trip digits. With "shortest" precision strconv
    (ftoa.go) switches to exponent form when the decimal exponent is < -4 or >= 6, which is
    why Go prints 123456 but 1.234567e+06.
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    if value == 0:
        return sign + "0"
    # repr() gives the shortest digits that round-trip, the same digits Go picks.
    _, digit_tuple, exponent = Decimal(repr(abs(value))).as_tuple()
    assert isinstance(exponent, int)
    digits = "".join(str(d) for d in digit_tuple).rstrip("0")
    exponent += len(digit_tuple) - len(digits)
    decimal_point = len(digits) + exponent  # position of the point within the digits
    exp10 = decimal_point - 1
    if exp10 < -4 or exp10 >= 6:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if exp10 < 0 else '+'}{abs(exp10):02d}"
    if decimal_point <= 0:
        return f"{sign}0.{'0' * -decimal_point}{digits}"
    if decimal_point >= len(digits):
        return sign + digits + "0" * (decimal_point - len(digits))
    return f"{sign}{digits[:decimal_point]}.{digits[decimal_point:]}"
