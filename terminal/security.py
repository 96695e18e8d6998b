"""Password hashing (argon2id), token digests and redaction of secrets in logs."""

from __future__ import annotations

import hashlib
import logging
import re
import secrets

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


def hash_password(password: str) -> str:
    """Return an argon2id hash of the password."""
    return _hasher.hash(password)


def verify_password(password_hash: str | None, password: str) -> bool:
    """Check a password against its hash in constant-ish time, also for unknown users."""
    try:
        return _hasher.verify(password_hash or _dummy(), password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


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
