"""PII scrubbing: e-mail addresses, IP addresses, phone numbers, payment-card numbers and secrets
are replaced by typed placeholders, with a count per kind and document.

A cheap vectorized pass (Arrow's RE2 over the whole batch) finds the documents that hold a
candidate at all; only those run the exact Python patterns and validators (Luhn, IP octets,
libphonenumber), which is where precision comes from. Patterns are hand-written because the
libraries that have them (detect-secrets, presidio) scan line by line and cost far more per
document; phone numbers are validated with ``phonenumbers`` (Google's libphonenumber metadata).
"""
from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

PLACEHOLDERS = {
    "email": "<EMAIL>",
    "ip": "<IP_ADDRESS>",
    "phone": "<PHONE_NUMBER>",
    "card": "<CREDIT_CARD>",
    "secret": "<SECRET>",
}
KINDS = tuple(PLACEHOLDERS)

# Secrets first: a key can contain an e-mail-like or digit run that another kind would take.
_SECRET = re.compile(
    r"-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----[\s\S]*?-----END (?:[A-Z]+ )*PRIVATE KEY-----"
    r"|\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"                       # AWS access key id
    r"|\bgh[pousr]_[A-Za-z0-9]{36,255}\b"                     # GitHub tokens
    r"|\bgithub_pat_[A-Za-z0-9_]{22,255}\b"
    r"|\bxox[abposr]-[A-Za-z0-9-]{10,250}\b"                  # Slack
    r"|\bAIza[0-9A-Za-z_-]{35}\b"                             # Google API key
    r"|\b[sr]k_(?:live|test)_[0-9A-Za-z]{16,247}\b"           # Stripe
    r"|\bsk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}\b"              # OpenAI / Anthropic
    r"|\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"  # JWT
)
# `password = "..."`, `api_key: ...`: only the value is replaced, the key name stays readable.
_ASSIGNED_SECRET = re.compile(
    r"(?i)\b((?:api[_-]?key|secret[_-]?key|access[_-]?token|auth[_-]?token|client[_-]?secret|password|passwd)"
    r"[\"']?\s*[:=]\s*[\"']?)([^\s\"'<>()\[\]{}]{8,})(?=[\s\"',;]|$)"  # not code: os.environ['X']
)
_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,24}\b")
# Four dotted octets not inside a longer dotted run of numbers (1.2.3.4.5 is no address).
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
# A word just before the numbers that says they are a version, not an address.
_VERSION_CONTEXT = re.compile(
    r"(?i)(?:\bv|\bversion|\bver|\brelease|\bbuild|\bfirmware|\bupdate|\bsection|§|\bfigure|\bfig|\btable|\bchapter)"
    r"\.?\s*:?\s*$")
# Unbroken 13-19 digits, or the printed groupings (4-4-4-4[-1..3], Amex 4-6-5, Diners 4-6-4) with
# one separator throughout: a row of numbers in a table is not a card.
_CARD = re.compile(r"(?<![\d-])(?:\d{13,19}|\d{4}([ -])\d{4}\1\d{4}\1\d{4}(?:\1\d{1,3})?|\d{4}([ -])\d{6}\2\d{4,5})(?![\d-])")
_PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{1,4}\)[\s.-]?)?\d{1,4}(?:[\s.-]?\d{2,4}){1,5}(?!\w)")
_NOT_PHONE = re.compile(r"\d{4}[-.]\d{2}[-.]\d{2}|\d+\.\d+|\d{1,3}(?:[ .,]\d{3})+")  # dates, decimals, 12 345 678
# Arrow RE2 prefilter: any document without a match cannot hold any kind.
_PREFILTER = r"@|\d[\d .()-]{5,}\d|:[0-9A-Fa-f]*:|PRIVATE KEY|AKIA|ASIA|gh[pousr]_|github_pat_|xox|AIza|k_live_|k_test_|sk-|eyJ|(?i:passw|secret|token|api.?key)"


def luhn_valid(digits: str) -> bool:
    total, double = 0, False
    for ch in reversed(digits):
        d = ord(ch) - 48
        if double:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
        double = not double
    return total % 10 == 0


# Issuer prefixes (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay, Maestro): a Luhn-valid
# run of digits with no issuer prefix is more often an id or a tracking number.
_ISSUER = re.compile(r"^(?:4|5[1-5]|2[2-7]|3[47]|3[068]|6011|64[4-9]|65|35|62|5[06-9]|6[0-9])")


def _card(match: re.Match) -> bool:
    digits = re.sub(r"[ -]", "", match.group())
    return 13 <= len(digits) <= 19 and _ISSUER.match(digits) is not None and luhn_valid(digits)


def _not_a_version(match: re.Match) -> bool:
    return _VERSION_CONTEXT.search(match.string, max(0, match.start() - 12), match.start()) is None


def _ipv4(match: re.Match) -> bool:
    return all(int(part) <= 255 for part in match.group().split(".")) and _not_a_version(match)


def _ipv6(match: re.Match) -> bool:
    text = match.group()
    if sum(1 for group in text.split(":") if group) < 2 or ("::" not in text and not any(c.isalpha() for c in text)):
        return False  # "::" alone is punctuation, 12:30:45 a time
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class PhoneValidator:
    """libphonenumber's validity check; numbers without a ``+`` country code are read in ``region``."""

    region: str = "US"

    def __call__(self, match: re.Match) -> bool:
        import phonenumbers

        text = match.group()
        digits = sum(c.isdigit() for c in text)
        if digits < 7 or digits > 15 or (not text.startswith("+") and digits < 10):
            return False
        if not text.startswith("+") and _NOT_PHONE.fullmatch(text):
            return False
        try:
            return phonenumbers.is_valid_number(phonenumbers.parse(text, self.region))
        except phonenumbers.NumberParseException:
            return False


@dataclass(frozen=True)
class PiiScrubber:
    """Which kinds to replace; ``scrub`` returns the new texts and a count array per kind."""

    kinds: tuple[str, ...] = KINDS
    phone_region: str = "US"

    def __post_init__(self) -> None:
        unknown = set(self.kinds) - set(KINDS)
        if unknown:
            raise ValueError(f"unknown PII kinds {sorted(unknown)}; known: {list(KINDS)}")

    def patterns(self) -> list[tuple[str, re.Pattern, Callable[[re.Match], bool] | None]]:
        table = {
            "secret": [(_SECRET, None)],
            "email": [(_EMAIL, None)],
            "card": [(_CARD, _card)],
            "ip": [(_IPV4, _ipv4), (_IPV6, _ipv6)],
            "phone": [(_PHONE, PhoneValidator(self.phone_region))],
        }
        # Order matters: cards before phones (a card number is also a long digit run).
        return [(kind, pattern, check) for kind in ("secret", "email", "card", "ip", "phone") if kind in self.kinds
                for pattern, check in table[kind]]

    def scrub(self, texts: pa.Array) -> tuple[pa.Array, dict[str, np.ndarray]]:
        counts = {kind: np.zeros(len(texts), np.int32) for kind in self.kinds}
        if not self.kinds or len(texts) == 0:
            return texts, counts
        maybe = pc.fill_null(pc.match_substring_regex(texts, _PREFILTER), False).to_numpy(zero_copy_only=False)
        rows = np.flatnonzero(maybe)
        if len(rows) == 0:
            return texts, counts
        values = texts.to_pylist()
        patterns = self.patterns()
        for i in rows:
            values[i] = self.scrub_one(values[i], patterns, counts, i)
        return pa.array(values, texts.type), counts

    def scrub_one(self, text: str, patterns, counts: dict[str, np.ndarray], row: int) -> str:
        if "secret" in self.kinds:
            text, n = _ASSIGNED_SECRET.subn(lambda m: m.group(1) + PLACEHOLDERS["secret"], text)
            counts["secret"][row] += n
        for kind, pattern, check in patterns:
            found = 0

            def replace(match: re.Match) -> str:
                nonlocal found
                if check is not None and not check(match):
                    return match.group()
                found += 1
                return PLACEHOLDERS[kind]

            text = pattern.sub(replace, text)
            counts[kind][row] += found
        return text
