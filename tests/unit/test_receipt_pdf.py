"""Receipt PDF renderer: content, QR code, layout bounds, determinism."""

from __future__ import annotations

import dataclasses
import io
import re
import threading
import unicodedata
from datetime import datetime

import pypdfium2 as pdfium
import pytest
import zxingcpp
from pypdf import PdfReader
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics

from terminal.receipt_pdf import (
    FONT_BOLD,
    FONT_REGULAR,
    QR_MIN_MODULE_MM,
    QrPlan,
    ReceiptDocument,
    ReceiptLine,
    plan_qr,
    register_fonts,
    render_receipt_pdf,
)

DPI = 200
PT_PER_MM = 72 / 25.4
URL = "https://htbd.example.gov.vn/v/HTBD-2021-000123?c=Xk3f9QpL2mZt8RwA"
WORDS = "Một triệu sáu trăm hai mươi nghìn đồng"
LONG_WORD = "Ư" + "x" * 298 + "Ờ"  # 300 characters, no space to break at
HOSTILE_NAME = f'<script>alert(1)</script> O\'Brien "Bà Tư" &amp; {LONG_WORD}'


def sample(**changes) -> ReceiptDocument:
    doc = ReceiptDocument(
        receipt_no="HTBD-2021-000123",
        point_name="Bưu điện văn hóa xã Hòa Lợi, huyện Châu Thành",
        printed_at=datetime(2021, 11, 5, 9, 42),
        paid_at=datetime(2021, 11, 5, 9, 31),
        beneficiary_name="Nguyễn Thị Hường",
        beneficiary_code="BTXH-74-000816",
        id_masked="********0816",
        category="Người cao tuổi từ đủ 80 tuổi trở lên",
        commune="Xã Hòa Lợi",
        lines=(
            ReceiptLine("10/2021", 540_000),
            ReceiptLine("11/2021", 540_000),
            ReceiptLine("12/2021", 540_000),
        ),
        total_vnd=1_620_000,
        total_words=WORDS,
        channel="Tiền mặt tại quầy",
        provider_ref="VNP-20211105-88123",
        collector="Người nhận thay",
        proxy_name="Trần Thị Ánh",
        proxy_id_masked="********4421",
        proxy_relationship="Con dâu",
        staff_name="Đặng Văn Lực",
        verify_url=URL,
    )
    return dataclasses.replace(doc, **changes)


def many_lines(n: int) -> dict:
    lines = tuple(ReceiptLine(f"{1 + i % 12:02d}/{2019 + i // 12}", 540_000) for i in range(n))
    return {"lines": lines, "total_vnd": 540_000 * n}


def page_texts(data: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(data)).pages]


def flat(text: str) -> str:
    """Extracted text with every run of whitespace as one space."""
    return " ".join(text.split())


def render_images(data: bytes) -> list:
    pdf = pdfium.PdfDocument(data)
    try:
        return [pdf[i].render(scale=DPI / 72).to_pil() for i in range(len(pdf))]
    finally:
        pdf.close()


def read_qr(image) -> list:
    return [b for b in zxingcpp.read_barcodes(image) if b.format == zxingcpp.BarcodeFormat.QRCode]


def char_boxes(data: bytes) -> list[tuple[int, str, tuple, tuple]]:
    """(page index, character, char box (l, b, r, t), page size) for every printed character."""
    out = []
    pdf = pdfium.PdfDocument(data)
    try:
        for i in range(len(pdf)):
            page = pdf[i]
            size = page.get_size()
            text = page.get_textpage()
            for k in range(text.count_chars()):
                ch = text.get_text_range(k, 1)
                if ch.strip():
                    out.append((i, ch, text.get_charbox(k), size))
    finally:
        pdf.close()
    return out


# --------------------------------------------------------------------------------------------
# Content


@pytest.mark.parametrize("size", ["80mm", "a5"])
def test_text_content(size):
    text = flat("\n".join(page_texts(render_receipt_pdf(sample(), size))))
    for expected in (
        "BIÊN NHẬN CHI TRẢ",
        "TRỢ CẤP XÃ HỘI",
        "Số biên nhận: HTBD-2021-000123",
        "Điểm chi trả: Bưu điện văn hóa xã Hòa Lợi, huyện Châu Thành",
        "Thời gian chi trả: 05/11/2021 09:31",
        "Người hưởng: Nguyễn Thị Hường",
        "Mã đối tượng: BTXH-74-000816",
        "Số CCCD/CMND: ********0816",
        "Diện: Người cao tuổi từ đủ 80 tuổi trở lên",
        "Xã/Phường: Xã Hòa Lợi",
        "10/2021",
        "540.000 đ",
        "Tổng cộng 1.620.000 đ",
        f"Bằng chữ: {WORDS}",
        "Hình thức: Tiền mặt tại quầy",
        "Mã giao dịch: VNP-20211105-88123",
        "Người nhận thay: Trần Thị Ánh — Con dâu, CCCD/CMND ********4421",
        "Nhân viên chi trả: Đặng Văn Lực",
        "(ký, ghi rõ họ tên)",
        "Quét mã QR để kiểm tra biên nhận là thật",
        "In lúc: 05/11/2021 09:42",
    ):
        assert expected in text, expected
    assert "BẢN IN LẠI" not in text


@pytest.mark.parametrize("size", ["80mm", "a5"])
def test_content_order(size):
    data = render_receipt_pdf(sample(reprint_count=1, status_note="ĐÃ HỦY"), size)
    # A5 page footers ("Số ... · In lúc ... Trang i/n") repeat on every page: leave them out.
    lines = "\n".join(page_texts(data)).splitlines()
    text = flat("\n".join(line for line in lines if "Trang " not in line))
    order = [
        "BIÊN NHẬN CHI TRẢ",
        "BẢN IN LẠI (lần 1)",
        "ĐÃ HỦY",
        "Số biên nhận:",
        "Điểm chi trả:",
        "Thời gian chi trả:",
        "Người hưởng:",
        "Mã đối tượng:",
        "Số CCCD/CMND:",
        "Diện:",
        "Xã/Phường:",
        "Kỳ trợ cấp",
        "Tổng cộng",
        "Bằng chữ:",
        "Hình thức:",
        "Mã giao dịch:",
        "Người nhận thay:",
        "Nhân viên chi trả:",
        "Người nhận",
        "(ký, ghi rõ họ tên)",
        "Nhân viên chi trả",
        "Quét mã QR",
    ]
    if size == "80mm":
        order.append("In lúc:")
    position = -1
    for label in order:
        position = text.find(label, position + 1)
        assert position >= 0, f"{label!r} missing or out of order"


def test_self_collection_and_optional_fields():
    doc = sample(
        collector="Chính chủ",
        proxy_name=None,
        proxy_id_masked=None,
        proxy_relationship=None,
        provider_ref=None,
        id_masked="",
    )
    text = flat("\n".join(page_texts(render_receipt_pdf(doc, "80mm"))))
    assert "Người nhận: Chính chủ" in text
    assert "Người nhận thay" not in text
    assert "Mã giao dịch" not in text
    assert "Số CCCD/CMND: (không có)" in text


@pytest.mark.parametrize("size", ["80mm", "a5"])
def test_reprint_and_status_note(size):
    text = flat("\n".join(page_texts(render_receipt_pdf(sample(reprint_count=2), size))))
    assert "BẢN IN LẠI (lần 2)" in text
    text = flat("\n".join(page_texts(render_receipt_pdf(sample(status_note="ĐÃ HỦY"), size))))
    assert "ĐÃ HỦY" in text


def test_status_note_is_big_and_bold():
    data = render_receipt_pdf(sample(status_note="ĐÃ HỦY"), "80mm")
    sizes = {}

    def visit(text, cm, tm, font, font_size):
        if "HỦY" in text:
            sizes[font["/BaseFont"]] = tm[0] * font_size

    PdfReader(io.BytesIO(data)).pages[0].extract_text(visitor_text=visit)
    [(base_font, size)] = sizes.items()
    assert base_font.endswith("DejaVuSans-Bold")
    assert size >= 14


def test_decomposed_input_prints_precomposed():
    nfd = unicodedata.normalize("NFD", "Nguyễn Thị Hường")
    text = "\n".join(page_texts(render_receipt_pdf(sample(beneficiary_name=nfd), "80mm")))
    assert "Nguyễn Thị Hường" in unicodedata.normalize("NFC", text)
    assert "\u0303" not in text and "\u0300" not in text  # no loose combining marks


def test_metadata_holds_only_the_receipt_number():
    reader = PdfReader(io.BytesIO(render_receipt_pdf(sample(), "a5")))
    meta = reader.metadata
    assert meta.title == "HTBD-2021-000123"
    assert meta.author
    blob = " ".join(str(v) for v in meta.values())
    for personal in ("Hường", "Ánh", "Lực", "0816", "4421", "BTXH"):
        assert personal not in blob


# --------------------------------------------------------------------------------------------
# QR code


@pytest.mark.parametrize("size", ["80mm", "a5"])
def test_qr_decodes_to_the_exact_url(size):
    image = render_images(render_receipt_pdf(sample(), size))[-1]
    codes = read_qr(image)
    assert [c.text for c in codes] == [URL]
    assert codes[0].ec_level in ("M", "Q")


@pytest.mark.parametrize("size", ["80mm", "a5"])
def test_qr_module_size(size):
    plan = plan_qr(URL, size)
    assert isinstance(plan, QrPlan)
    assert plan.ec_level in ("M", "Q")
    assert plan.modules == 4 * plan.version + 17
    assert plan.quiet_modules == 4
    assert plan.module_mm >= QR_MIN_MODULE_MM
    content_mm = (80 - 8) if size == "80mm" else (148 - 26)
    assert plan.side_mm <= content_mm

    # The printed symbol really has modules of that size: measure it on the rendered page.
    image = render_images(render_receipt_pdf(sample(), size))[-1]
    [code] = read_qr(image)
    pos = code.position
    width_px = ((pos.top_right.x - pos.top_left.x) + (pos.bottom_right.x - pos.bottom_left.x)) / 2
    module_mm = width_px / plan.modules / DPI * 25.4
    assert module_mm >= QR_MIN_MODULE_MM
    assert module_mm == pytest.approx(plan.module_mm, rel=0.05)


def test_long_url_falls_back_to_m_and_still_scans():
    url = "https://htbd.example.gov.vn/verify?" + "&".join(f"k{i}=v{i:04d}" for i in range(25))
    plan = plan_qr(url, "80mm")
    assert plan.ec_level == "M"
    assert plan.module_mm >= QR_MIN_MODULE_MM
    image = render_images(render_receipt_pdf(sample(verify_url=url), "80mm"))[0]
    assert [c.text for c in read_qr(image)] == [url]


def test_url_too_long_for_any_qr_is_refused():
    with pytest.raises(ValueError):
        render_receipt_pdf(sample(verify_url="https://x.vn/" + "a" * 4000), "80mm")


# --------------------------------------------------------------------------------------------
# Page geometry


def test_80mm_width_and_height_grows_with_lines():
    heights = []
    for n in (1, 3, 12):
        reader = PdfReader(io.BytesIO(render_receipt_pdf(sample(**many_lines(n)), "80mm")))
        assert len(reader.pages) == 1
        box = reader.pages[0].mediabox
        assert float(box.width) == pytest.approx(80 * PT_PER_MM, abs=0.01)
        heights.append(float(box.height))
    assert heights[0] < heights[1] < heights[2]


def test_a5_page_size_and_continuation():
    reader = PdfReader(io.BytesIO(render_receipt_pdf(sample(), "a5")))
    assert len(reader.pages) == 1
    box = reader.pages[0].mediabox
    assert float(box.width) == pytest.approx(148 * PT_PER_MM, abs=0.01)
    assert float(box.height) == pytest.approx(210 * PT_PER_MM, abs=0.01)

    data = render_receipt_pdf(sample(**many_lines(30)), "a5")
    texts = page_texts(data)
    assert len(texts) >= 2
    all_text = flat("\n".join(texts))
    for i in range(30):
        assert f"{1 + i % 12:02d}/{2019 + i // 12}" in all_text
    assert "Tổng cộng 16.200.000 đ" in all_text
    assert "(tiếp theo)" in texts[1]
    assert "Kỳ trợ cấp" in texts[1]  # the table header is repeated
    assert "Trang 1/" in texts[0] and f"Trang {len(texts)}/{len(texts)}" in texts[-1]
    # Signatures and QR travel together on the last page, and the QR still scans there.
    assert "(ký, ghi rõ họ tên)" in texts[-1] and "Quét mã QR" in texts[-1]
    assert [c.text for c in read_qr(render_images(data)[-1])] == [URL]
    for page, ch, (left, bottom, right, top), (w, h) in char_boxes(data):
        assert left >= 0 and right <= w and bottom >= 0 and top <= h, (page, ch)


# --------------------------------------------------------------------------------------------
# Hostile text


@pytest.mark.parametrize("size", ["80mm", "a5"])
def test_hostile_name_is_literal_and_stays_in_the_margins(size):
    doc = sample(beneficiary_name=HOSTILE_NAME, proxy_name=HOSTILE_NAME, point_name=LONG_WORD)
    data = render_receipt_pdf(doc, size)
    texts = page_texts(data)
    text = "\n".join(texts)
    assert "<script>alert(1)</script>" in text
    assert "O'Brien" in text and '"Bà Tư"' in text and "&amp;" in text
    assert "&lt;" not in text

    # The 300-character word comes out whole once line breaks are removed, but on no line.
    assert LONG_WORD in re.sub(r"\s+", "", text)
    assert all(LONG_WORD not in line for line in text.splitlines())

    margin = (4 if size == "80mm" else 13) * PT_PER_MM
    boxes = char_boxes(data)
    assert len(boxes) > 1000
    for page, ch, (left, _bottom, right, _top), (w, _h) in boxes:
        assert left >= margin - 1 and right <= w - margin + 1, (page, ch, left, right)

    # Every text run drawn, measured in its own font, ends inside the margins too.
    for page in PdfReader(io.BytesIO(data)).pages:
        width = float(page.mediabox.width)

        def visit(t, cm, tm, font, font_size, width=width):
            if not t.strip() or font is None:
                return
            name = FONT_BOLD if str(font["/BaseFont"]).endswith("Bold") else FONT_REGULAR
            x = tm[4] * cm[0] + cm[4]
            run = pdfmetrics.stringWidth(t.replace("\n", ""), name, tm[0] * font_size)
            assert x >= margin - 0.5 and x + run <= width - margin + 0.5, t

        page.extract_text(visitor_text=visit)


# --------------------------------------------------------------------------------------------
# API behaviour


@pytest.mark.parametrize("size", ["80mm", "a5"])
def test_identical_input_gives_identical_bytes(size):
    first = render_receipt_pdf(sample(), size)
    assert render_receipt_pdf(sample(), size) == first
    assert render_receipt_pdf(sample(receipt_no="HTBD-2021-000124"), size) != first
    assert first.startswith(b"%PDF-")


@pytest.mark.parametrize("size", ["A4", "80MM", "a6", "", None, 80])
def test_unknown_size_raises(size):
    with pytest.raises(ValueError):
        render_receipt_pdf(sample(), size)


def test_concurrent_renders_match_serial_output():
    docs = [sample(receipt_no=f"HTBD-2021-{n:06d}", **many_lines(1 + n % 7)) for n in range(12)]
    expected = [render_receipt_pdf(d, size) for d in docs for size in ("80mm", "a5")]
    results: dict[int, bytes] = {}

    def worker(k: int) -> None:
        results[k] = render_receipt_pdf(docs[k // 2], ("80mm", "a5")[k % 2])

    threads = [threading.Thread(target=worker, args=(k,)) for k in range(len(expected))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [results[k] for k in range(len(expected))] == expected


def test_register_fonts_is_idempotent_and_thread_safe():
    errors = []

    def worker():
        try:
            register_fonts()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    register_fonts()
    assert not errors
    names = pdfmetrics.getRegisteredFontNames()
    assert FONT_REGULAR in names and FONT_BOLD in names
    assert pdfmetrics.stringWidth("Đặng", FONT_REGULAR, 10) > 0


def test_sample_dimensions_are_sane():
    # Not a golden image, just guards against a collapsed or runaway 80 mm layout.
    reader = PdfReader(io.BytesIO(render_receipt_pdf(sample(), "80mm")))
    height_mm = float(reader.pages[0].mediabox.height) / PT_PER_MM
    assert 150 < height_mm < 300
    assert mm == pytest.approx(PT_PER_MM)
