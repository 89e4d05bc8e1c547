"""Domains and addresses in one comparable form: lower-case ASCII A-labels (IDNA 2008, UTS 46).

Owns the only definition of "the same domain" and "the same address" in Maruhi: rule scopes and
message recipients both pass through here, so ``例え.jp``, ``XN--R8JZ45G.JP`` and the full-width
``例え．ｊｐ`` compare equal, while a look-alike (Cyrillic ``аcme.example``) becomes a different
A-label and never matches.

Must not: do any I/O or DNS lookup; raise anything but ``ValueError`` (whose message is a plain
reason a sales admin can act on); echo anything but the domain or address it was given.

Hazard: these run for every recipient of every message, with hostile input. Both are cached and
take an ASCII fast path that skips the (comparatively slow) ``idna`` codec.
"""

from __future__ import annotations

import re
from functools import lru_cache

import idna

# An ASCII hostname label (RFC 1123); labels with "--" go the slow path so that ``idna`` can
# check A-labels (xn--) and the IDNA 2008 "no hyphens in positions 3 and 4" rule.
_ASCII_DOMAIN = re.compile(
    r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
)
_MAX_DOMAIN = 253  # RFC 1035: 255 octets on the wire, 253 characters in text form
_MAX_LOCAL = 64  # RFC 5321 4.5.3.1.1
# Characters that cannot appear unquoted in an address (RFC 5322 specials and whitespace).
_BAD_LOCAL = re.compile(r'[\s<>()\[\],;:\\"\x00-\x1f\x7f]')
_DOMAIN_LITERAL = re.compile(r"\[[0-9A-Fa-f:.]+\]|\[IPv6:[0-9A-Fa-f:.]+\]", re.IGNORECASE)


def _why_not_domain(text: str) -> str | None:
    """A plain reason why ``text`` is not a domain, for the common mistakes; None if none."""
    if not text:
        return "the domain is empty"
    if "@" in text:
        return "a domain has no '@' (put addresses under addresses)"
    if any(c.isspace() for c in text):
        return "a domain has no spaces"
    if "*" in text:
        return "wildcards are not needed: a domain already covers its subdomains"
    if text.startswith((".", "．", "。")):
        return "a domain does not start with a dot"
    if text.endswith((".", "．", "。")):
        return "a domain does not end with a dot"
    if "/" in text or ":" in text:
        return "a domain is not a URL (remove the scheme, port and path)"
    return None


@lru_cache(maxsize=65536)
def to_alabel(domain: str) -> str:
    """The lower-case ASCII A-label form of ``domain``; ``ValueError`` with a plain reason."""
    lowered = domain.lower()
    if (
        len(lowered) <= _MAX_DOMAIN
        and lowered.isascii()
        and "--" not in lowered
        and _ASCII_DOMAIN.fullmatch(lowered)
    ):
        return lowered
    reason = _why_not_domain(domain)
    if reason is not None:
        raise ValueError(reason)
    try:
        alabel = idna.encode(domain, uts46=True, transitional=False).decode("ascii")
    except idna.IDNAError as exc:
        # idna's message quotes the input; ours must not (it may be a misplaced term).
        raise ValueError("not a valid domain name (a label has a character not allowed)") from exc
    except UnicodeError as exc:  # e.g. a label over 63 characters, from the codec layer
        raise ValueError("not a valid domain name (a label is too long)") from exc
    if "." not in alabel:
        raise ValueError("a domain needs at least one dot (e.g. acme.example)")
    if len(alabel) > _MAX_DOMAIN:
        raise ValueError("the domain is longer than 253 characters")
    return alabel.lower()


@lru_cache(maxsize=65536)
def normalize_address(addr: str) -> str:
    """``local@domain`` with the local part lower-cased and the domain as an A-label.

    The local part is compared case-insensitively (what every mail system we front does in
    practice); it is otherwise kept as written. Address literals (``x@[192.0.2.1]``) are accepted
    as written so that a recipient never crashes the scope check; no rule domain matches them.
    """
    text = addr.strip()
    local, at, domain = text.rpartition("@")
    if not at:
        raise ValueError("an address needs an '@'")
    if not local:
        raise ValueError("the part before '@' is empty")
    if not domain:
        raise ValueError("the domain after '@' is empty")
    if len(local.encode("utf-8")) > _MAX_LOCAL:
        raise ValueError("the part before '@' is longer than 64 characters")
    quoted = len(local) >= 2 and local[0] == local[-1] == '"'
    if not quoted and ("@" in local or _BAD_LOCAL.search(local)):
        raise ValueError("the part before '@' contains a space or a character not allowed there")
    if not quoted and (local.startswith(".") or local.endswith(".") or ".." in local):
        raise ValueError("the part before '@' has a misplaced dot")
    if _DOMAIN_LITERAL.fullmatch(domain):
        return f"{local.lower()}@{domain.lower()}"
    return f"{local.lower()}@{to_alabel(domain)}"


def domain_of(addr: str) -> str:
    """The A-label domain of an address (``ValueError`` if it is not an address)."""
    return normalize_address(addr).rpartition("@")[2]
