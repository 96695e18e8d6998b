"""Passwords (NFKC, argon2id, the breached list), token digests and redaction of logs."""

from __future__ import annotations

import gzip
import hashlib
import logging
import re
import secrets
import string
import unicodedata
from functools import cache
from importlib import resources

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

_hasher = PasswordHasher()
# Checked against when the username is unknown, so both cases cost the same time;
# made on first use (argon2 takes 64 MiB for a moment: not at every import).
_dummy_hash: str | None = None


def use_fast_hashing() -> None:
    """Make hashing cheap (tests only: thousands of logins would take minutes)."""
    global _hasher, _dummy_hash
    _hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    _dummy_hash = None


def _dummy() -> str:
    """Return a hash of a random password, for unknown usernames."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash(secrets.token_urlsafe(16))
    return _dummy_hash


def normalize_password(password: str) -> str:
    """Return the password in Unicode NFKC, as it is hashed and checked.

    "ệ" typed as one character on one keyboard and as e + two accents on another
    are then the same password (NIST SP 800-63B 5.1.1.2).
    """
    return unicodedata.normalize("NFKC", password)


def hash_password(password: str) -> str:
    """Return an argon2id hash of the password (normalised)."""
    return _hasher.hash(normalize_password(password))


def verify_password(password_hash: str | None, password: str) -> bool:
    """Check a password against its hash in constant-ish time, also for unknown users."""
    normalized = normalize_password(password)
    # Hashes made before passwords were normalised are of the text as typed: for ASCII
    # the same, otherwise it is tried second.
    candidates = (normalized,) if normalized == password else (normalized, password)
    for candidate in candidates:
        try:
            if _hasher.verify(password_hash or _dummy(), candidate):
                return password_hash is not None
        except (VerificationError, InvalidHashError):
            continue
    return False


_EDGE_JUNK = string.digits + string.punctuation + string.whitespace


@cache
def _common_passwords() -> frozenset[str]:
    """Load the breached-password list shipped in terminal/data (see its README)."""
    data = resources.files("terminal") / "data" / "common-passwords.txt.gz"
    with data.open("rb") as raw, gzip.open(raw, "rt", encoding="utf-8") as lines:
        return frozenset(line.strip() for line in lines if line.strip())


def is_common_password(password: str) -> bool:
    """Tell whether a password is a common, breached one, or one with digits around it.

    "basketball" and "Password2021!" are both refused: adding a year or a symbol to a
    listed word is the first thing people and cracking tools try.
    """
    folded = normalize_password(password).casefold()
    core = folded.strip(_EDGE_JUNK)
    common = _common_passwords()
    return folded in common or (len(core) >= 4 and core in common)


def new_secret() -> str:
    """Return a new random token for a session id or API token."""
    return secrets.token_urlsafe(32)


def digest(secret: str) -> str:
    """Return the SHA-256 hex digest under which a token is stored."""
    return hashlib.sha256(secret.encode()).hexdigest()


# 9 to 12 digit runs are ID numbers or phones; long base64-ish runs are tokens.
_REDACTIONS = (
    (re.compile(r"(?<!\d)\d{9,12}(?!\d)"), "[redacted-number]"),
    (re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+"), r"\1[redacted]"),
    (
        re.compile(r"(?i)(password|token|otp)(['\"]?\s*[:=]\s*['\"]?)[^\s,'\"}&]+"),
        r"\1\2[redacted]",
    ),
    # Control characters would let a logged value forge extra log lines.
    (re.compile(r"[\r\n\x00-\x08\x0b\x0c\x0e-\x1f\x7f]"), " "),
)


# C0 and C1 controls and the Unicode line and paragraph separators: all start lines.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escape_controls(text: str) -> str:
    """Show control characters as ``\\xNN`` so a logged value stays on its one line."""
    return _CONTROLS.sub(_escaped, text)


def redact(text: str, *, keep_lines: bool = False) -> str:
    """Remove ID numbers, phone numbers, tokens, passwords and line breaks from log text."""
    patterns = _REDACTIONS[:-1] if keep_lines else _REDACTIONS
    for pattern, replacement in patterns:
        text = pattern.sub(replacement, text)
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that redacts personal data and secrets from every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message with secrets removed."""
        message = record.getMessage()
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            # A traceback may quote values (an SQL error's parameters): redact it too.
            record.exc_text = redact(record.exc_text, keep_lines=True)
        return True
