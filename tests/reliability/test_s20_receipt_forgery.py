"""RELIABILITY S20: forged receipts told apart, on the page, by the API and offline.

Four forgeries of two genuine receipts A and B: an altered amount, a swapped receipt
number, an invented token, and a reversed payout's receipt. Each is tried in the
token (the QR code) and, where a forger would rather leave the QR alone, on the
paper only. Pass criterion: 100 % told apart on the verification page ``/r/<token>``,
by ``GET /api/v1/receipts/verify``, by ``payout-terminal verify-receipt`` with the
database, and offline with only ``GET /api/v1/receipts/public-key`` (the reversal
excepted offline: a signature cannot know of a later reversal; the offline answer
says "signature good" with the signed facts, never "GENUINE").
"""

from __future__ import annotations

import base64
import dataclasses

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from terminal.money import format_vnd
from terminal.services import counter, payouts, receipts, verifications
from terminal.services.receipt_tokens import (
    _HEADER,
    SIGNATURE_BYTES,
    VERSION,
    load_public_key,
    make_token,
    read_token,
)
from tests import test_cli
from tests.factories import make_beneficiary, set_float
from tests.services.test_receipts import pay_now

run = test_cli.run  # a command line run as the console script does


def _raw(token: str) -> bytes:
    return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _resigned_payload(token: str, **changes) -> str:
    """Return the token with its signed facts changed and the old signature kept."""
    raw = _raw(token)
    payload, signature = raw[:-SIGNATURE_BYTES], raw[-SIGNATURE_BYTES:]
    version, payout_id, amount, paid = _HEADER.unpack(payload[: _HEADER.size])
    receipt_no = changes.get("receipt_no", payload[_HEADER.size :].decode())
    header = _HEADER.pack(
        version, changes.get("payout_id", payout_id), changes.get("amount", amount), paid
    )
    return _b64(header + receipt_no.encode() + signature)


@pytest.fixture
def two(app, world, session):
    """Two genuine receipts at HTBD, A and B, and their tokens."""
    set_float(session, "HTBD")
    clerk = world.users["clerk"]
    made = []
    for n, monthly in ((1, 540_000), (2, 810_000)):
        person = make_beneficiary(
            session,
            f"TTH000000{n}",
            commune=world.point_a.communes[0],
            full_name=f"Nguyễn Thị Hường {n}",
            id_number=f"04615306081{n}",
            monthly=monthly,
        )
        found = verifications.verify_collector(
            session,
            clerk,
            beneficiary_code=person.code,
            collector="beneficiary",
            id_number=person.id_number,
        )
        due = counter.beneficiary_file(session, clerk, person.code).due
        payout = pay_now(
            app,
            session,
            clerk,
            payouts.PayoutOrder(found.verification.id, tuple(e.id for e in due), "cash", None),
        )
        with app.app_context():
            made.append((payout, receipts.receipt_token(app, payout)))
    return made


class Checks:
    """The four places a receipt is checked, each answering one word."""

    def __init__(self, client, run, key_file) -> None:
        self.client, self.run, self.key_file = client, run, key_file

    def page(self, token: str) -> tuple[str, str]:
        answer = self.client.get(f"/r/{token}")
        html = answer.get_data(as_text=True)
        for verdict in ("genuine", "reversed", "invalid"):
            if f'data-testid="verdict-{verdict}"' in html:
                assert answer.status_code == (404 if verdict == "invalid" else 200)
                return verdict, html
        raise AssertionError(html[:500])

    def api(self, token: str) -> dict:
        answer = self.client.get("/api/v1/receipts/verify", query_string={"token": token})
        assert answer.status_code == 200
        return answer.get_json()

    def online(self, token: str) -> tuple[int, str]:
        result = self.run("verify-receipt", token)
        return result.returncode, result.stdout

    def offline(self, token: str) -> tuple[int, str]:
        result = self.run("verify-receipt", token, "--public-key", str(self.key_file))
        return result.returncode, result.stdout


@pytest.fixture
def checks(client, run, tmp_path):
    key_file = tmp_path / "public-key.pem"
    key_file.write_text(client.get("/api/v1/receipts/public-key").get_data(as_text=True))
    return Checks(client, run, key_file)


def _refused_everywhere(checks: Checks, token: str) -> None:
    assert checks.page(token)[0] == "invalid"
    assert checks.api(token)["valid"] is False
    code, out = checks.online(token)
    assert code == 1 and out.startswith("NOT GENUINE"), out
    code, out = checks.offline(token)
    assert code == 1 and out.startswith("NOT GENUINE"), out


def test_genuine_receipts_pass_everywhere(two, checks):
    for payout, token in two:
        verdict, html = checks.page(token)
        assert verdict == "genuine" and payout.receipt.receipt_no in html
        assert checks.api(token)["status"] == "genuine"
        code, out = checks.online(token)
        assert code == 0 and out.startswith(f"GENUINE: {payout.receipt.receipt_no}")
        code, out = checks.offline(token)
        assert code == 0 and out.startswith(f"signature good: {payout.receipt.receipt_no}")


def test_an_altered_amount_is_told_apart(two, checks):
    (a, token), _ = two
    for amount in (a.amount_vnd + 1, a.amount_vnd * 10, 1):
        _refused_everywhere(checks, _resigned_payload(token, amount=amount))
    # On paper only (the QR left alone): every check shows the true amount.
    forged = format_vnd(a.amount_vnd * 10)
    _verdict, html = checks.page(token)
    assert format_vnd(a.amount_vnd) in html and forged not in html
    assert checks.api(token)["amount"] == a.amount_vnd
    for code, out in (checks.online(token), checks.offline(token)):
        assert code == 0 and format_vnd(a.amount_vnd) in out and forged not in out


def test_a_swapped_receipt_number_is_told_apart(two, checks):
    (a, token_a), (b, token_b) = two
    a_no, b_no = a.receipt.receipt_no, b.receipt.receipt_no
    _refused_everywhere(checks, _resigned_payload(token_a, receipt_no=b_no))
    _refused_everywhere(checks, _resigned_payload(token_a, payout_id=b.id, receipt_no=b_no))
    # A's facts with B's signature spliced on.
    raw_a, raw_b = _raw(token_a), _raw(token_b)
    _refused_everywhere(checks, _b64(raw_a[:-SIGNATURE_BYTES] + raw_b[-SIGNATURE_BYTES:]))
    # On paper only: A's QR printed under B's number shows A's number, never B's.
    _verdict, html = checks.page(token_a)
    assert a_no in html and b_no not in html
    assert checks.api(token_a)["receipt_no"] == a_no
    for _code, out in (checks.online(token_a), checks.offline(token_a)):
        assert a_no in out and b_no not in out


def test_an_invented_token_is_told_apart(app, two, checks):
    (a, token), _ = two
    claim = receipts.claim_of(a)
    other_key = Ed25519PrivateKey.generate()
    payload = (
        _HEADER.pack(VERSION, a.id, a.amount_vnd, int(claim.paid_at.timestamp()))
        + claim.receipt_no.encode()
    )
    invented = [
        make_token("another-terminal-secret-key-" + "y" * 20, claim),  # another terminal
        _b64(payload + other_key.sign(payload)),  # a key of the forger's own
        _b64(payload + bytes(SIGNATURE_BYTES)),  # no signature at all
        make_token(
            "another-terminal-secret-key-" + "y" * 20, dataclasses.replace(claim, payout_id=999)
        ),
        _b64(bytes(range(120))),
    ]
    for token in invented:
        _refused_everywhere(checks, token)


def test_a_reversed_payouts_receipt_is_told_apart(app, two, checks, session, world):
    (a, token), _ = two
    payouts.reverse_payout(session, world.users["supervisor"], a.id, reason="Nhầm người nhận")
    verdict, _html = checks.page(token)
    assert verdict == "reversed"
    assert checks.api(token)["status"] == "reversed"
    code, out = checks.online(token)
    assert code == 1 and out.startswith("REVERSED:"), out
    # Offline the signature is still the terminal's: said so, never called genuine.
    code, out = checks.offline(token)
    assert code == 0 and out.startswith("signature good:") and "GENUINE" not in out
    with app.app_context():
        assert read_token(token, load_public_key(receipts.public_key(app))) is not None
