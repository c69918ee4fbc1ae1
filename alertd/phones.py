"""Phone numbers: what the reference accepts (US 10-digit or E.164), as E.164."""
from __future__ import annotations

import functools

import phonenumbers


def normalize(raw: str, region: str = "US") -> str:
    """'5551234567' / '(555) 123-4567' / '+15551234567' -> '+15551234567'.

    Checks the format with ``is_possible_number``, not whether the number is
    assigned: the reference's own examples use 555 numbers, which
    ``is_valid_number`` rejects. Raises ValueError with a readable reason.
    """
    if not isinstance(raw, str) or not raw.strip():
        raise ValueError("Invalid phone number format: empty")
    return _normalize(raw.strip(), region)


@functools.lru_cache(maxsize=4096)  # the same few numbers come back all day; parsing costs ~14 us
def _normalize(text: str, region: str) -> str:
    raw = text
    try:
        parsed = phonenumbers.parse(text, None if text.startswith("+") else region)
    except phonenumbers.NumberParseException:
        raise ValueError(f"Invalid phone number format: {raw!r}") from None
    if not phonenumbers.is_possible_number(parsed):
        raise ValueError(f"Invalid phone number format: {raw!r}")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def pick_caller_id(numbers: list[str], to: str, default: str) -> str:
    """The caller ID for ``to``: the account's first number with the same country
    calling code (a local-looking number is answered more often), else its first."""
    return _pick(tuple(numbers), to, default)


@functools.lru_cache(maxsize=4096)
def _pick(numbers: tuple[str, ...], to: str, default: str) -> str:
    if not numbers:
        return default
    try:
        code = phonenumbers.parse(to).country_code
        for n in numbers:
            if phonenumbers.parse(n).country_code == code:
                return n
    except phonenumbers.NumberParseException:
        pass
    return numbers[0]
