"""Time receipt rendering against a bare reportlab page carrying only the QR code.

    python benchmarks/receipt_pdf.py [--rounds N]

Cases: (a) baseline: an 80 mm page with only the same QR, drawn the plain way (qrcode's PIL
image placed with drawImage); (b) our 80 mm receipt; (c) our A5 receipt. Prints median and p95
milliseconds per receipt, the ratio to the baseline and the PDF size. The target is (b) at most
1.5x the baseline; timing never fails the script, only errors do.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import qrcode
from qrcode.constants import ERROR_CORRECT_M, ERROR_CORRECT_Q
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfgen.canvas import Canvas

from terminal.receipt_pdf import (
    ReceiptDocument,
    ReceiptLine,
    plan_qr,
    register_fonts,
    render_receipt_pdf,
)


def sample_document() -> ReceiptDocument:
    return ReceiptDocument(
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
        total_words="Một triệu sáu trăm hai mươi nghìn đồng",
        channel="Tiền mặt tại quầy",
        provider_ref="VNP-20211105-88123",
        collector="Người nhận thay",
        proxy_name="Trần Thị Ánh",
        proxy_id_masked="********4421",
        proxy_relationship="Con dâu",
        staff_name="Đặng Văn Lực",
        verify_url="https://htbd.example.gov.vn/v/HTBD-2021-000123?c=Xk3f9QpL2mZt8RwA",
    )


def bare_qr_page(url: str) -> bytes:
    """The baseline: an 80 mm page with the same QR as a qrcode PIL image, nothing else."""
    plan = plan_qr(url, "80mm")
    ec = ERROR_CORRECT_Q if plan.ec_level == "Q" else ERROR_CORRECT_M
    qr = qrcode.QRCode(error_correction=ec, border=plan.quiet_modules, box_size=4)
    qr.add_data(url.encode("utf-8"))
    qr.make(fit=True)
    image = qr.make_image().get_image()
    side = plan.side_mm * mm
    c = Canvas(None, pagesize=(80 * mm, side + 8 * mm), invariant=1, pageCompression=1)
    c.drawImage(ImageReader(image), (80 * mm - side) / 2, 4 * mm, side, side)
    c.showPage()
    return c.getpdfdata()


def measure(fn: Callable[[], bytes], rounds: int) -> tuple[float, float, int]:
    for _ in range(max(5, rounds // 20)):  # warm-up
        fn()
    times = []
    size = 0
    for _ in range(rounds):
        start = time.perf_counter()
        size = len(fn())
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    return statistics.median(times), p95, size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200, help="timed renders per case")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")

    register_fonts()
    doc = sample_document()
    cases = [
        ("bare 80mm page + qrcode image", lambda: bare_qr_page(doc.verify_url)),
        ("receipt 80mm", lambda: render_receipt_pdf(doc, "80mm")),
        ("receipt A5", lambda: render_receipt_pdf(doc, "a5")),
    ]
    rows = [(name, *measure(fn, args.rounds)) for name, fn in cases]
    baseline = rows[0][1]

    header = ("case", "median ms", "p95 ms", "ratio to baseline", "bytes")
    table = [header] + [
        (name, f"{med:.2f}", f"{p95:.2f}", f"{med / baseline:.2f}x", str(size))
        for name, med, p95, size in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    print(f"rounds: {args.rounds}")
    for n, row in enumerate(table):
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        print(" | ".join(cells))
        if n == 0:
            print("-+-".join("-" * w for w in widths))
    ratio = rows[1][1] / baseline
    verdict = "within" if ratio <= 1.5 else "OVER"
    print(f"80 mm receipt vs baseline: {ratio:.2f}x ({verdict} the 1.5x target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
