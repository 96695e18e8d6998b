"""Signed receipt tokens: what a receipt's QR code carries after ``/r/``.

A token binds the receipt number, the payout, the amount and the time of payment,
signed with Ed25519. Anyone holding the public key (``GET /api/v1/receipts/public-key``
or ``payout-terminal verify-receipt``) can check a receipt offline; an altered or
invented token fails the signature. The signing key is derived from the
terminal's secret key, so every worker and every restart signs alike.
"""

from __future__ import annotations

import base64
import re
import struct
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = 1
_HEADER = struct.Struct(">BQQq")  # version, payout id, amount in đồng, paid at (unix seconds)
SIGNATURE_BYTES = 64
MAX_TOKEN_CHARS = 400


@dataclass(frozen=True)
class ReceiptClaim:
    """What a token says about a receipt."""

    receipt_no: str
    payout_id: int
    amount_vnd: int
    paid_at: datetime


def signing_key(secret_key: str) -> Ed25519PrivateKey:
    """Derive the receipt signing key from the terminal's secret key."""
    seed = HKDF(
        algorithm=hashes.SHA256(), length=32, salt=b"payout-terminal", info=b"receipt-signing-v1"
    ).derive(secret_key.encode())
    return Ed25519PrivateKey.from_private_bytes(seed)


def public_key_pem(secret_key: str) -> str:
    """Return the public key that checks receipts, as PEM text."""
    public = signing_key(secret_key).public_key()
    return public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


_TOKEN_CHARS = re.compile(r"[A-Za-z0-9_-]+")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    """Decode a token strictly: exactly one spelling of a byte string is accepted.

    Python's decoder skips characters outside the alphabet, takes padding and the
    standard alphabet's + and /, and ignores the unused low bits of the last
    character, so junk added to a genuine token would still verify. The alphabet is
    checked, and the bytes must encode back to the very same text.
    """
    if not _TOKEN_CHARS.fullmatch(text) or len(text) % 4 == 1:
        raise ValueError("not an unpadded URL-safe base64 text")
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(raw) != text:
        raise ValueError("not the canonical spelling")
    return raw


def make_token(secret_key: str, claim: ReceiptClaim) -> str:
    """Return the signed token of a receipt (about 130 URL-safe characters)."""
    paid = int(claim.paid_at.timestamp())
    payload = (
        _HEADER.pack(VERSION, claim.payout_id, claim.amount_vnd, paid) + claim.receipt_no.encode()
    )
    signature = signing_key(secret_key).sign(payload)
    return _b64(payload + signature)


def read_token(token: str, public_key: Ed25519PublicKey) -> ReceiptClaim | None:
    """Return what a token claims if its signature is good, else None."""
    if not token or len(token) > MAX_TOKEN_CHARS:
        return None
    try:
        raw = _unb64(token)
    except (ValueError, TypeError):
        return None
    if len(raw) <= _HEADER.size + SIGNATURE_BYTES:
        return None
    payload, signature = raw[:-SIGNATURE_BYTES], raw[-SIGNATURE_BYTES:]
    try:
        public_key.verify(signature, payload)
    except InvalidSignature:
        return None
    version, payout_id, amount, paid = _HEADER.unpack(payload[: _HEADER.size])
    if version != VERSION:
        return None
    try:
        receipt_no = payload[_HEADER.size :].decode()
    except UnicodeDecodeError:
        return None
    return ReceiptClaim(
        receipt_no=receipt_no,
        payout_id=payout_id,
        amount_vnd=amount,
        paid_at=datetime.fromtimestamp(paid, UTC),
    )


def load_public_key(pem: str) -> Ed25519PublicKey:
    """Load a PEM public key (as served by the API) for offline checks."""
    key = serialization.load_pem_public_key(pem.encode())
    if not isinstance(key, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    return key
