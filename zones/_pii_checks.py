"""Validators of PII candidates: checksums and format rules that turn a regex match into a finding.

Each takes the text a recognizer's regex matched and returns the PII span inside it (the whole match,
or a shorter prefix when trailing groups belong to the surrounding text), or ``None`` when it is a
look-alike. They run once per *distinct* candidate, never per row.
"""

from __future__ import annotations

import ipaddress
import re

_SEPARATORS = re.compile(r"[ \-./]")
_GROUPS = re.compile(r"[0-9A-Za-z]+|[^0-9A-Za-z]+")

# ISO 13616 registry: IBAN length per country (the countries of the SWIFT IBAN registry).
IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28,
    "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23,
    "GL": 18, "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26,
    "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20,
    "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18,
    "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24,
    "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "ST": 25, "SV": 28, "TL": 23, "TN": 24,
    "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20,
}  # fmt: skip
_NINO_BAD_PREFIXES = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}
_NINO_FIRST = set("ABCEGHJKLMNOPRSTWXYZ")
_NINO_SECOND = set("ABCEGHJKLMNPRSTWXYZ")
_DAY, _MONTH = "(?:0[1-9]|[12][0-9]|3[01])", "(?:0[1-9]|1[0-2])"
_DATE_START = re.compile(rf"(?:{_DAY}[./-]{_MONTH}|{_MONTH}[./-]{_DAY})[./-](?:19|20)[0-9]{{2}}")
_SSN_SAMPLES = ("078051120", "219099999", "123456789")


def _prefixes(text: str) -> list[str]:
    """``text`` and its prefixes ending before a separator, longest first (trailing groups dropped)."""
    parts = _GROUPS.findall(text)
    return ["".join(parts[:end]) for end in range(len(parts), 0, -2)]


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def luhn_ok(digits: str) -> bool:
    """The Luhn (mod 10) check of payment card numbers."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def card(text: str) -> str | None:
    """A payment card: 13-19 digits, issuer prefix 2-6 (Mastercard, Amex/Diners/JCB, Visa, Discover/
    UnionPay), Luhn-valid. A match that starts with an IBAN country code is an IBAN look-alike."""
    if text[:1].isalpha():
        return None
    for candidate in _prefixes(text):
        digits = _digits(candidate)
        if 13 <= len(digits) <= 19 and digits[0] in "23456" and len(set(digits)) > 1 and luhn_ok(digits):
            return candidate
    return None


def iban_ok(compact: str) -> bool:
    """Length of the country and ISO 7064 mod 97-10 of an IBAN without spaces."""
    if IBAN_LENGTHS.get(compact[:2]) != len(compact):
        return False
    rearranged = compact[4:] + compact[:4]
    return int("".join(str(int(c, 36)) for c in rearranged)) % 97 == 1


def iban(text: str) -> str | None:
    """An IBAN (grouped by four with spaces, or compact) with its country's length and a valid mod 97."""
    for candidate in _prefixes(text):
        if iban_ok(candidate.replace(" ", "")):
            return candidate
    return None


def email(text: str) -> str | None:
    """An e-mail address: a local part that neither starts nor ends with a dot nor holds ``..``."""
    local, _, domain = text.rpartition("@")
    if not local or len(local) > 64 or len(text) > 254 or ".." in text:
        return None
    if local[0] == "." or local[-1] == "." or domain.startswith("-"):
        return None
    return text


def _host(text: str, bits: int) -> str | None:
    """The address of ``text`` when it names one host: a CIDR network (``a.b.c.0/24``, as generalized IPs
    are written) names many, so it is no one's address; ``/32`` (``/128``) is the host itself."""
    address, slash, prefix = text.partition("/")
    if slash and (not prefix.isdigit() or int(prefix) != bits):
        return None
    return address


def ipv4(text: str) -> str | None:
    """Four decimal octets 0-255 without leading zeros (``1.2.3.4.5`` and ``10.0.0.256`` are not), not a
    network in CIDR form."""
    text = _host(text, 32) or ""
    parts = text.split(".")
    if len(parts) != 4:
        return None
    if any(len(p) > 3 or (len(p) > 1 and p[0] == "0") or int(p) > 255 for p in parts):
        return None
    return text


def ipv6(text: str) -> str | None:
    """An IPv6 address as parsed by :mod:`ipaddress` (times and MAC addresses are not), not a network in
    CIDR form."""
    text = _host(text, 128) or ""
    if text.count(":") < 2 or text == "::":  # "::" alone is mostly code (``Foo::``), not an address
        return None
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return None
    return text


def us_ssn(text: str) -> str | None:
    """A US SSN ``AAA-GG-SSSS`` (one separator kind): area not 000, 666 or 9xx, group not 00, serial
    not 0000, not one repeated digit nor a well-known sample."""
    if len({c for c in text if not c.isdigit()}) != 1:
        return None
    digits = _digits(text)
    if digits[:3] in {"000", "666"} or digits[0] == "9" or digits[3:5] == "00" or digits[5:] == "0000":
        return None
    if len(set(digits)) == 1 or digits in _SSN_SAMPLES:
        return None
    return text


def uk_nino(text: str) -> str | None:
    """A UK National Insurance number: allowed prefix letters, six digits, suffix A-D (no checksum)."""
    compact = text.replace(" ", "")
    prefix = compact[:2]
    if prefix[0] not in _NINO_FIRST or prefix[1] not in _NINO_SECOND or prefix in _NINO_BAD_PREFIXES:
        return None
    return text


def nl_bsn(text: str) -> str | None:
    """A Dutch BSN: nine digits passing the 11-test (weights 9..2 and -1)."""
    digits = _digits(text)
    if len(digits) != 9 or len(set(digits)) == 1:
        return None
    total = sum(int(d) * w for d, w in zip(digits[:8], range(9, 1, -1), strict=True)) - int(digits[8])
    return text if total % 11 == 0 else None


def de_tax_id(text: str) -> str | None:
    """A German Steuer-ID: 11 digits, no leading 0, one digit repeated two or three times in the first
    ten, ISO 7064 MOD 11,10 check digit."""
    digits = _digits(text)
    if len(digits) != 11 or digits[0] == "0":
        return None
    counts = sorted((digits[:10].count(d) for d in set(digits[:10])), reverse=True)
    if counts[0] not in (2, 3) or (len(counts) > 1 and counts[1] > 1):
        return None
    product = 10
    for char in digits[:10]:
        total = (int(char) + product) % 10 or 10
        product = (total * 2) % 11
    check = (11 - product) % 10
    return text if check == int(digits[10]) else None


def phone(text: str) -> str | None:
    """A phone number in one of the recognised forms.

    - international: ``+`` country code, 8-15 digits in all (E.164), an optional ``(0)`` trunk;
      ``+1`` numbers follow the NANP rules below;
    - NANP (US, Canada): ``(AAA) EEE-NNNN`` / ``AAA-EEE-NNNN`` / ``AAA.EEE.NNNN`` with an optional
      ``1-``, area and exchange starting 2-9, area not N11;
    - national with a trunk ``0`` (UK, DE, FR, NL and most of Europe): 10-11 digits written in
      groups (``020 7946 0958``, ``06-12345678``, ``01 23 45 67 89``, ``089/1234567``).
    """
    if text[:1].isalpha():  # an IBAN look-alike matched whole so that no number inside it is taken
        return None
    if text.startswith("+"):
        for candidate in _prefixes(text):
            digits = _digits(candidate.replace("(0)", ""))
            if digits.startswith("1"):
                if len(digits) == 11 and _nanp_ok(digits[1:]):
                    return candidate
            elif 8 <= len(digits) <= 15:
                return candidate
        return None
    digits = _digits(text)
    if text.startswith("0"):
        if _DATE_START.match(text):  # 01/02/2024 10:30 is a date and a time, not a number
            return None
        return text if 10 <= len(digits) <= 11 and _SEPARATORS.search(text) else None
    if len(digits) == 11 and digits[0] == "1":
        digits = digits[1:]
    return text if len(digits) == 10 and _nanp_ok(digits) else None


def _nanp_ok(digits: str) -> bool:
    area, exchange = digits[:3], digits[3:6]
    return area[0] in "23456789" and area[1:] != "11" and exchange[0] in "23456789" and exchange[1:] != "11"
