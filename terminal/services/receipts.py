"""Receipts: the signed verification link, the PDF file, reprints and public checks.

A receipt's PDF is written once the payout has committed, under
``RECEIPTS_DIR/<point>/<year>/<receipt_no>.pdf`` (whole or not at all), and never
overwritten unless it is not a whole PDF. It is
drawn only from the database, deterministically, so a missing file is drawn again
identically. A reprint is a new drawing marked "BẢN IN LẠI (lần N)", counted and
audited; the original file stays as it was.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from flask import Flask
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from terminal.clock import to_local
from terminal.db import write_transaction
from terminal.models import (
    AuditAction,
    Category,
    Channel,
    CollectorType,
    Payout,
    PayoutStatus,
    Receipt,
    User,
    utcnow,
)
from terminal.money import vnd_in_words
from terminal.policy import sees_point
from terminal.receipt_pdf import ReceiptDocument, ReceiptLine, render_receipt_pdf
from terminal.services.audit import record_event
from terminal.services.errors import NotFound
from terminal.services.receipt_tokens import (
    ReceiptClaim,
    load_public_key,
    make_token,
    public_key_pem,
    read_token,
)
from terminal.text import mask_id, mask_name

log = logging.getLogger("terminal")

CATEGORY_LABELS = {
    Category.ORPHAN: "Trẻ em mồ côi",
    Category.DISABLED_SEVERE: "Người khuyết tật nặng",
    Category.DISABLED_EXTREME: "Người khuyết tật đặc biệt nặng",
    Category.ELDERLY_80: "Người cao tuổi từ 80 tuổi",
    Category.OTHER: "Khác",
}
CHANNEL_LABELS = {
    Channel.CASH: "Tiền mặt tại quầy",
    Channel.CASH_HOME: "Tiền mặt tại nhà",
    Channel.ACCOUNT: "Rút từ tài khoản",
}


def claim_of(payout: Payout) -> ReceiptClaim:
    """Return what a payout's receipt token binds."""
    assert payout.receipt is not None
    return ReceiptClaim(
        receipt_no=payout.receipt.receipt_no,
        payout_id=payout.id,
        amount_vnd=payout.amount_vnd,
        paid_at=payout.paid_at,
    )


def receipt_token(app: Flask, payout: Payout) -> str:
    """Return the signed token of a payout's receipt."""
    return make_token(app.config["SECRET_KEY"], claim_of(payout))


def verify_url(app: Flask, payout: Payout) -> str:
    """Return the URL the receipt's QR code encodes."""
    return f"{app.config['PUBLIC_URL']}/r/{receipt_token(app, payout)}"


def public_key(app: Flask) -> str:
    """Return the PEM public key that checks receipt tokens."""
    return public_key_pem(app.config["SECRET_KEY"])


@dataclass(frozen=True)
class ReceiptCheck:
    """The answer to "is this receipt genuine?"."""

    valid: bool
    status: str | None = None  # "genuine" or "reversed"
    receipt_no: str | None = None
    amount_vnd: int | None = None
    paid_at: datetime | None = None
    point_name: str | None = None
    masked_name: str | None = None


def check_token(session: Session, app: Flask, token: str) -> ReceiptCheck:
    """Check a token's signature, then that the payout it names exists and matches it."""
    claim = None
    # The current key, then keys retired by a rotation: old receipts stay checkable.
    for pem in (public_key(app), *app.config.get("RETIRED_RECEIPT_KEYS", ())):
        claim = read_token(token, load_public_key(pem))
        if claim is not None:
            break
    if claim is None:
        return ReceiptCheck(valid=False)
    payout = session.get(Payout, claim.payout_id)
    if (
        payout is None
        or payout.receipt is None
        or payout.receipt.receipt_no != claim.receipt_no
        or payout.amount_vnd != claim.amount_vnd
        or int(payout.paid_at.timestamp()) != int(claim.paid_at.timestamp())
    ):
        return ReceiptCheck(valid=False)
    return ReceiptCheck(
        valid=True,
        status="reversed" if payout.status is PayoutStatus.REVERSED else "genuine",
        receipt_no=claim.receipt_no,
        amount_vnd=payout.amount_vnd,
        paid_at=payout.paid_at,
        point_name=payout.point.name,
        masked_name=mask_name(payout.beneficiary.full_name),
    )


def document(
    app: Flask, payout: Payout, *, reprint_count: int = 0, printed_at: datetime | None = None
) -> ReceiptDocument:
    """Return everything printed on a payout's receipt, from the database only."""
    assert payout.receipt is not None
    person = payout.beneficiary
    proxy = payout.proxy if payout.collector_type is CollectorType.PROXY else None
    lines = tuple(
        ReceiptLine(period=line.entitlement.period.label, amount_vnd=line.amount_vnd)
        for line in sorted(payout.lines, key=lambda item: item.entitlement.period.code)
    )
    return ReceiptDocument(
        receipt_no=payout.receipt.receipt_no,
        point_name=payout.point.name,
        printed_at=to_local(printed_at or payout.paid_at),
        paid_at=to_local(payout.paid_at),
        beneficiary_name=person.full_name,
        beneficiary_code=person.code,
        id_masked=mask_id(person.id_number),
        category=CATEGORY_LABELS[person.category],
        commune=person.commune.name,
        lines=lines,
        total_vnd=payout.amount_vnd,
        total_words=vnd_in_words(payout.amount_vnd),
        channel=CHANNEL_LABELS[payout.channel],
        provider_ref=payout.provider_ref,
        collector="Người nhận thay" if proxy else "Chính chủ",
        proxy_name=proxy.full_name if proxy else None,
        proxy_id_masked=mask_id(proxy.id_number) if proxy else None,
        proxy_relationship=proxy.relationship_label if proxy else None,
        staff_name=payout.user.full_name,
        verify_url=verify_url(app, payout),
        reprint_count=reprint_count,
        status_note="ĐÃ HỦY" if payout.status is PayoutStatus.REVERSED and reprint_count else None,
    )


def receipt_path(app: Flask, receipt: Receipt, point_code: str) -> Path:
    """Return where a receipt's original PDF lives."""
    safe = receipt.receipt_no.replace("/", "_")
    return Path(app.config["RECEIPTS_DIR"]) / point_code / str(receipt.year) / f"{safe}.pdf"


def write_original(app: Flask, session: Session, payout: Payout) -> Path:
    """Write a committed payout's receipt PDF once; a whole existing file is left alone.

    Written to a temporary file, synced, then linked into place: a crash or a full
    disk mid-write leaves no half receipt under the real name (RELIABILITY S05). A
    file left empty or cut short by an older version is drawn again.
    """
    receipt = payout.receipt
    assert receipt is not None
    path = receipt_path(app, receipt, payout.point.code)
    if _whole_pdf(path):
        return path
    data = render_receipt_pdf(document(app, payout), receipt.format.value)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o640)
        try:
            # A link never overwrites: if two workers draw it at once, the first stays.
            os.link(temp, path)
        except FileExistsError:
            if _whole_pdf(path):
                return path
            os.replace(temp, path)  # a broken file is no receipt: replace it
        _sync_folder(path.parent)
    finally:
        Path(temp).unlink(missing_ok=True)
    digest = hashlib.sha256(data).hexdigest()
    with write_transaction(session):
        session.execute(
            update(Receipt)
            .where(Receipt.id == receipt.id, Receipt.file_path.is_(None))
            .values(file_path=str(path), file_sha256=digest)
        )
    return path


def _whole_pdf(path: Path) -> bool:
    """Tell whether a receipt file exists and holds a whole PDF (start and end marks)."""
    try:
        with path.open("rb") as handle:
            head = handle.read(5)
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(size - 1024, 0))
            tail = handle.read()
    except OSError:
        return False
    return head == b"%PDF-" and b"%%EOF" in tail


def _sync_folder(folder: Path) -> None:
    """Make a new name in a folder survive power loss (the file's own fsync does not)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def find_receipt(session: Session, user: User, receipt_no: str) -> Payout:
    """Return the payout of a receipt the user may see (staff: their point's)."""
    receipt = session.scalar(select(Receipt).where(Receipt.receipt_no == (receipt_no or "")[:32]))
    if receipt is None:
        raise NotFound("no such receipt", code="receipt_not_found")
    payout = receipt.payout
    if not sees_point(user, payout.point_id):
        raise NotFound("no such receipt", code="receipt_not_found")
    return payout


def original_pdf(app: Flask, session: Session, payout: Payout) -> bytes:
    """Return the original receipt PDF, drawing it again if its file is missing."""
    path = write_original(app, session, payout)
    return path.read_bytes()


def reprint_pdf(app: Flask, session: Session, user: User, payout: Payout) -> bytes:
    """Draw a reprint marked as such; count it and audit it."""
    assert payout.receipt is not None
    with write_transaction(session):
        count = session.execute(
            update(Receipt)
            .where(Receipt.id == payout.receipt.id)
            .values(reprint_count=Receipt.reprint_count + 1)
            .returning(Receipt.reprint_count)
        ).scalar_one()
        record_event(
            session,
            actor=user.username,
            action=AuditAction.RECEIPT_REPRINTED,
            object_type="receipt",
            object_id=payout.receipt.id,
            data={"receipt_no": payout.receipt.receipt_no, "reprint": count},
        )
    session.refresh(payout)
    doc = document(app, payout, reprint_count=count, printed_at=utcnow())
    return render_receipt_pdf(doc, payout.receipt.format.value)
