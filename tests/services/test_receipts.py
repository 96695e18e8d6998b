"""Receipts: the PDF's text and QR, files never overwritten, signed tokens told apart."""

from __future__ import annotations

import base64
import io
import subprocess
import sys
import uuid
from pathlib import Path

import pypdfium2
import pytest
import zxingcpp
from pypdf import PdfReader
from sqlalchemy import func, select, text, update

from terminal.models import AuditEvent, Payout, PayoutStatus, Receipt
from terminal.services import counter, payouts, receipts, verifications
from terminal.services.receipt_tokens import load_public_key, read_token
from tests.conftest import SECRET
from tests.factories import make_beneficiary, set_float

HOSTILE = '<script>alert("x")</script> & Đặng "Văn" \'Lực\' ' + "Ngô" * 90


@pytest.fixture
def paid(app, world, session):
    """A payout of two periods to a proxy, at HTBD."""
    person = make_beneficiary(
        session,
        "TTH0000001",
        commune=world.point_a.communes[0],
        full_name="Nguyễn Thị Hường",
        periods=(("2021-09", 0), ("2021-10", 1_080_000)),
        proxy={"full_name": "Trần Thị Ánh", "id_number": "046195867017", "relationship": "Con dâu"},
    )
    set_float(session, "HTBD")
    clerk = world.users["clerk"]
    result = verifications.verify_collector(
        session,
        clerk,
        beneficiary_code=person.code,
        collector="proxy",
        proxy_id=person.proxies[0].id,
        id_number="046195867017",
    )
    due = counter.beneficiary_file(session, clerk, person.code).due
    order = payouts.PayoutOrder(result.verification.id, tuple(e.id for e in due), "cash", None)
    payout = pay_now(app, session, clerk, order)
    with app.app_context():
        receipts.write_original(app, session, payout)
    return payout


def pay_now(app, session, user, order):
    """Pay through the one payment path and return the payout."""
    outcome = payouts.pay(
        session,
        user,
        order,
        key=str(uuid.uuid4()),
        verify_url=lambda payout: receipts.verify_url(app, payout),
    )
    assert outcome.status == 201, outcome.body
    return session.get(Payout, outcome.payout_id)


def pdf_text(data: bytes) -> str:
    """Return a PDF's text with line breaks and runs of spaces made single spaces."""
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(data)).pages)
    return " ".join(text.split())


def qr_texts(data: bytes) -> list[str]:
    document = pypdfium2.PdfDocument(data)
    found = []
    for page in document:
        image = page.render(scale=200 / 72).to_pil()
        found += [b.text for b in zxingcpp.read_barcodes(image)]
    return found


def test_file_written_under_point_and_year(app, paid):
    path = receipts.receipt_path(app, paid.receipt, "HTBD")
    assert path.is_file()
    assert path.parent == Path(app.config["RECEIPTS_DIR"]) / "HTBD" / str(paid.receipt.year)


def test_pdf_text_has_names_amounts_and_words(app, paid, session):
    with app.app_context():
        data = receipts.original_pdf(app, session, paid)
    text = pdf_text(data)
    for expected in (
        "Nguyễn Thị Hường",
        "Trần Thị Ánh",
        "Con dâu",
        paid.receipt.receipt_no,
        "2.160.000 đ",
        "Hai triệu một trăm sáu mươi nghìn đồng",
        "09/2021",
        "10/2021",
        "1.620.000 đ",
        "540.000 đ",
        "Bưu điện Hương Thủy HTBD",
        "********7017",
    ):
        assert expected in text, expected
    assert "046195867017" not in text


def test_qr_decodes_to_the_verification_url_and_says_genuine(app, paid, session):
    with app.app_context():
        data = receipts.original_pdf(app, session, paid)
        url = receipts.verify_url(app, paid)
    assert qr_texts(data) == [url]
    token = url.split("/r/", 1)[1]
    check = receipts.check_token(session, app, token)
    assert check.valid and check.status == "genuine" and check.amount_vnd == 2_160_000


def test_file_never_overwritten_and_regenerated_identically(app, paid, session):
    path = receipts.receipt_path(app, paid.receipt, "HTBD")
    original = path.read_bytes()
    with app.app_context():
        receipts.write_original(app, session, paid)
    assert path.read_bytes() == original
    path.unlink()
    with app.app_context():
        again = receipts.original_pdf(app, session, paid)
    assert again == original


def _flip(token: str, index: int) -> str:
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    raw[index] ^= 0x01
    return base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()


def test_altered_invented_and_foreign_tokens_are_rejected(app, paid, session):
    with app.app_context():
        token = receipts.receipt_token(app, paid)
    for index in (1, 9, 17, 26, -1):  # payout id, amount, time, receipt number, signature
        assert not receipts.check_token(session, app, _flip(token, index)).valid
    invented = base64.urlsafe_b64encode(b"\x01" * 120).rstrip(b"=").decode()
    for bad in (invented, "", "x", "%%%", "A" * 5000, token[:-3]):
        assert not receipts.check_token(session, app, bad).valid
    from terminal.services.receipt_tokens import make_token

    forged = make_token("another-terminal-secret-key-xxxxxxxxxxxxxx", receipts.claim_of(paid))
    assert not receipts.check_token(session, app, forged).valid


def test_reversed_payout_reads_reversed(app, paid, session, world):
    with app.app_context():
        token = receipts.receipt_token(app, paid)
    payouts.reverse_payout(session, world.users["supervisor"], paid.id, reason="Nhầm người nhận")
    check = receipts.check_token(session, app, token)
    assert check.valid and check.status == "reversed"


def test_public_page_and_api(client, app, paid, session, world):
    with app.app_context():
        token = receipts.receipt_token(app, paid)
    page = client.get(f"/r/{token}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and 'data-testid="verdict-genuine"' in html
    assert "2.160.000 đ" in html and "N. T. Hường" in html and "Nguyễn Thị Hường" not in html
    bad = client.get(f"/r/{_flip(token, 9)}")
    assert bad.status_code == 404 and 'data-testid="verdict-invalid"' in bad.get_data(as_text=True)
    api = client.get("/api/v1/receipts/verify", query_string={"token": token}).get_json()
    assert api == {
        **api,
        "valid": True,
        "receipt_no": paid.receipt.receipt_no,
        "amount": 2_160_000,
        "status": "genuine",
    }
    assert client.get("/api/v1/receipts/verify", query_string={"token": "nope"}).get_json() == {
        "valid": False,
        "receipt_no": None,
        "amount": None,
        "paid_at": None,
        "status": None,
    }
    payouts.reverse_payout(session, world.users["supervisor"], paid.id, reason="Nhầm người nhận")
    assert 'data-testid="verdict-reversed"' in client.get(f"/r/{token}").get_data(as_text=True)


def test_offline_check_with_the_public_key(client, app, paid):
    pem = client.get("/api/v1/receipts/public-key").get_data(as_text=True)
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    with app.app_context():
        token = receipts.receipt_token(app, paid)
    claim = read_token(token, load_public_key(pem))
    assert claim.receipt_no == paid.receipt.receipt_no and claim.amount_vnd == 2_160_000


def test_cli_verify_receipt_online_and_offline(app, paid, db_url, tmp_path):
    import os

    with app.app_context():
        url = receipts.verify_url(app, paid)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TERMINAL_")}
    env.update(
        TERMINAL_DATABASE_URL=db_url,
        TERMINAL_SECRET_KEY=SECRET,
        TERMINAL_RECEIPTS_DIR=str(tmp_path / "r"),
    )
    script = str(Path(sys.executable).parent / "payout-terminal")
    online = subprocess.run(
        [script, "verify-receipt", url], env=env, capture_output=True, text=True
    )
    assert online.returncode == 0 and online.stdout.startswith("GENUINE: ")
    key = tmp_path / "key.pem"
    key.write_text(
        subprocess.run(
            [script, "verify-receipt", "--print-public-key"],
            env=env,
            capture_output=True,
            text=True,
        ).stdout
    )
    offline = subprocess.run(
        [script, "verify-receipt", url, "--public-key", str(key)],
        env={
            "PATH": env["PATH"],
            "TERMINAL_SECRET_KEY": "z" * 40,
            "TERMINAL_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}",
        },
        capture_output=True,
        text=True,
    )
    assert offline.returncode == 0, offline.stderr
    assert "signature good" in offline.stdout
    tampered = subprocess.run(
        [script, "verify-receipt", _flip(url.split("/r/")[1], 9)],
        env=env,
        capture_output=True,
        text=True,
    )
    assert tampered.returncode == 1 and "NOT GENUINE" in tampered.stdout


def test_reprint_is_marked_counted_and_audited(app, paid, session, world):
    with app.app_context():
        data = receipts.reprint_pdf(app, session, world.users["clerk"], paid)
        data2 = receipts.reprint_pdf(app, session, world.users["clerk"], paid)
    assert "BẢN IN LẠI (lần 1)" in pdf_text(data)
    assert "BẢN IN LẠI (lần 2)" in pdf_text(data2)
    session.rollback()
    assert session.scalar(select(Receipt.reprint_count)) == 2
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "receipt.reprinted")
    ).all()
    assert len(events) == 2


def test_hostile_names_render_as_text(app, world, session, client):
    person = make_beneficiary(
        session,
        "TTH0000099",
        commune=world.point_a.communes[0],
        full_name="Nguyễn Văn An",
        id_number="046160000099",
    )
    person.full_name = HOSTILE[:200]
    session.commit()
    set_float(session, "HTBD")
    clerk = world.users["clerk"]
    result = verifications.verify_collector(
        session,
        clerk,
        beneficiary_code=person.code,
        collector="beneficiary",
        id_number="046160000099",
    )
    due = counter.beneficiary_file(session, clerk, person.code).due
    payout = pay_now(
        app, session, clerk, payouts.PayoutOrder(result.verification.id, (due[0].id,), "cash", None)
    )
    with app.app_context():
        data = receipts.original_pdf(app, session, payout)
        token = receipts.receipt_token(app, payout)
    text = pdf_text(data).replace(" ", "")
    assert '<script>alert("x")</script>' in text
    html = client.get(f"/r/{token}").get_data(as_text=True)
    assert "<script>alert" not in html


def test_public_check_is_rate_limited(client, app, paid):
    with app.app_context():
        token = receipts.receipt_token(app, paid)
    statuses = [client.get(f"/r/{token}").status_code for _ in range(35)]
    assert statuses[:30] == [200] * 30
    assert 429 in statuses[30:]


def _junk_variants(token: str) -> dict[str, str]:
    """Return spellings of a genuine token with junk appended, inserted or re-padded."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    variants = {
        "appended_bang": token + "!",
        "appended_dot": token + ".",
        "appended_tilde": token + "~",
        "appended_letter": token + "A",
        "appended_space": token + " ",
        "appended_newline": token + "\n",
        "padding_1": token + "=",
        "padding_2": token + "==",
        "padding_3": token + "===",
        "inserted_dot": token[:20] + "." + token[20:],
        "inserted_padding": token[:20] + "=" + token[20:],
        "inserted_newline": token[:20] + "\n" + token[20:],
        "inserted_percent": token[:20] + "%" + token[20:],
        "standard_alphabet": token.replace("-", "+").replace("_", "/"),
    }
    if len(token) % 4:
        # The last character's unused low bits set: the same bytes, another spelling.
        last = alphabet.index(token[-1])
        spare = 0b1111 if len(token) % 4 == 2 else 0b11
        variants["unused_bits_set"] = token[:-1] + alphabet[last | spare]
    if "-" not in token and "_" not in token:
        variants.pop("standard_alphabet")  # nothing to swap in this token
    return variants


def test_tokens_with_junk_are_not_genuine(app, client, paid, session, tmp_path):
    """One receipt, one token: no other spelling verifies (page, API, offline CLI)."""
    from urllib.parse import quote

    with app.app_context():
        token = receipts.receipt_token(app, paid)
    assert client.get(f"/r/{token}").status_code == 200
    pem = client.get("/api/v1/receipts/public-key").get_data(as_text=True)
    key_file = tmp_path / "key.pem"
    key_file.write_text(pem)
    variants = _junk_variants(token)
    # 13 always; the alphabet swap and the unused bits only where the token has them
    # (it carries the time of payment, so which ones apply changes from run to run).
    assert len(variants) >= 13
    for name, variant in variants.items():
        assert variant != token
        assert read_token(variant, load_public_key(pem)) is None, name
        assert not receipts.check_token(session, app, variant).valid, name
        page = client.get("/r/" + quote(variant, safe=""))
        # 404: the "not genuine" page, or no route at all for a line break in the path.
        assert page.status_code == 404, name
        assert "verdict-genuine" not in page.get_data(as_text=True), name
        api = client.get("/api/v1/receipts/verify", query_string={"token": variant})
        assert api.status_code in (200, 400), name
        assert api.get_json()["valid" if api.status_code == 200 else "error"] in (
            False,
            "invalid_request",
        ), name
    # Offline, with only the public key, through the command (in this process: a
    # process per variant would take minutes). Its argument's surrounding white space
    # is trimmed (a pasted URL), so variants that only add some at the end are left out.
    runner = app.test_cli_runner()
    trimmed = ("appended_space", "appended_newline")
    for name, given in [("genuine", token), *variants.items()]:
        if name in trimmed:
            continue
        result = runner.invoke(args=["verify-receipt", given, "--public-key", str(key_file)])
        if name == "genuine":
            assert result.exit_code == 0 and "signature good" in result.output, result.output
        else:
            assert result.exit_code == 1 and "NOT GENUINE" in result.output, (name, result.output)


def test_a_reversal_waiting_on_another_sees_it_and_reverses_nothing(app, paid, session, world):
    # PostgreSQL takes row locks; SQLite's BEGIN IMMEDIATE serialises every write already.
    if session.get_bind().dialect.name != "postgresql":
        pytest.skip("row locks: PostgreSQL only (SQLite serialises writes with BEGIN IMMEDIATE)")
    import threading

    from terminal.db import new_session
    from terminal.models import User

    # A first reversal holds the payout's row (as a retry's first try would, mid-way).
    first = new_session(app)
    first.execute(select(Payout.id).where(Payout.id == paid.id).with_for_update())
    second = new_session(app)
    outcome: list[str] = []

    def reverse_again() -> None:
        supervisor = second.get(User, world.users["supervisor"].id)
        try:
            payouts.reverse_payout(second, supervisor, paid.id, reason="Bấm lại lần hai")
            outcome.append("reversed")
        except payouts.AlreadyReversed:
            outcome.append("already reversed")

    thread = threading.Thread(target=reverse_again)
    thread.start()
    for _ in range(400):  # until the second waits on the row lock
        waiting = session.scalar(
            text(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE wait_event_type = 'Lock' AND datname = current_database()"
            )
        )
        session.rollback()
        if waiting or not thread.is_alive():
            break
        thread.join(timeout=0.05)
    first.execute(
        update(Payout)
        .where(Payout.id == paid.id)
        .values(
            status=PayoutStatus.REVERSED,
            reversed_at=func.now(),
            reversed_by_id=world.users["supervisor"].id,
            reversal_reason="Nhầm người nhận",
        )
    )
    first.commit()
    thread.join(timeout=30)
    first.close()
    second.close()
    # Before the row lock, the second read "completed" and reversed it again.
    assert outcome == ["already reversed"]
    reversed_events = select(func.count()).where(AuditEvent.action == "payout.reversed")
    assert session.scalar(reversed_events) == 0
