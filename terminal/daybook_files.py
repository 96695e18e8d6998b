"""The day book's papers: the daily settlement and the signed payout list, as PDF and XLSX.

Both are documents that pay out money, so each carries its amount in figures and in
words, a date and signatures (Law on Accounting 2015, Art. 16). They are printed in
Vietnamese whatever the page's language, like the receipt: they are kept on paper.

PDF: A4 landscape, DejaVu Sans embedded (registered the way ``receipt_pdf`` does),
the table's header repeated on every page, "Trang x/y" at the foot of each page.
Names are data, never markup: every cell is escaped before reportlab's paragraphs
read it. XLSX: numbers stay numbers; text cells go through ``payout_log.safe_cell``.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import (
    KeepTogether,
    Paragraph,
    SimpleDocTemplate,
    Spacer,
    Table,
    TableStyle,
)

from terminal.clock import to_local
from terminal.models import Channel, CollectorType, PayoutStatus
from terminal.money import format_vnd_plain, vnd_in_words
from terminal.receipt_pdf import FONT_BOLD, FONT_REGULAR, _clean, _render_lock, register_fonts
from terminal.services.daybook import PayoutList, PayoutRow, Settlement
from terminal.services.payout_log import safe_cell

SETTLEMENT_TITLE = "BẢNG KÊ CHI TRẢ"
LIST_TITLE = "DANH SÁCH CHI TRẢ TRỢ CẤP XÃ HỘI"
SIGN_HINT = "(Ký, ghi rõ họ tên)"
AUTHOR = "Hệ thống chi trả trợ cấp xã hội"
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"

CHANNEL_VI = {
    Channel.CASH: "Tiền mặt tại quầy",
    Channel.CASH_HOME: "Tiền mặt tại nhà",
    Channel.ACCOUNT: "Rút qua tài khoản",
}
STATUS_VI = {
    PayoutStatus.COMPLETED: "Đã chi",
    PayoutStatus.PENDING: "Đang chờ",
    PayoutStatus.REVERSED: "Đã hủy",
}
COLLECTOR_VI = {CollectorType.BENEFICIARY: "Chính chủ", CollectorType.PROXY: "Nhận thay"}

PAGE = landscape(A4)
MARGIN = 10 * mm


def _date(value: Any) -> str:
    """Format a date as dd/mm/yyyy."""
    return value.strftime("%d/%m/%Y")


def _time(value: datetime) -> str:
    """Format a Vietnam time as HH:MM dd/mm/yyyy."""
    return to_local(value).strftime("%H:%M %d/%m/%Y")


def _money(amount: int | None) -> str:
    """Format đồng with dots between thousands; a dash for no figure."""
    return "—" if amount is None else format_vnd_plain(amount)


# ---- PDF building blocks -------------------------------------------------------------


def _styles() -> dict[str, ParagraphStyle]:
    """Return the paragraph styles of the day book's papers."""
    register_fonts()
    base = ParagraphStyle("base", fontName=FONT_REGULAR, fontSize=9, leading=11.5)
    return {
        "base": base,
        "small": ParagraphStyle("small", parent=base, fontSize=8, leading=10),
        "cell": ParagraphStyle("cell", parent=base, fontSize=8, leading=10),
        "num": ParagraphStyle("num", parent=base, fontSize=8, leading=10, alignment=TA_RIGHT),
        "head": ParagraphStyle(
            "head", parent=base, fontName=FONT_BOLD, fontSize=8, leading=10, alignment=TA_CENTER
        ),
        "title": ParagraphStyle(
            "title", parent=base, fontName=FONT_BOLD, fontSize=16, leading=20, alignment=TA_CENTER
        ),
        "subtitle": ParagraphStyle(
            "subtitle", parent=base, fontSize=10, leading=13, alignment=TA_CENTER
        ),
        "h2": ParagraphStyle("h2", parent=base, fontName=FONT_BOLD, fontSize=10.5, leading=14),
        "bold": ParagraphStyle("bold", parent=base, fontName=FONT_BOLD),
        "center": ParagraphStyle("center", parent=base, alignment=TA_CENTER),
        "sign": ParagraphStyle(
            "sign", parent=base, fontName=FONT_BOLD, alignment=TA_CENTER, leading=13
        ),
        "hint": ParagraphStyle(
            "hint", parent=base, fontSize=8, alignment=TA_CENTER, textColor=colors.HexColor("#444")
        ),
    }


def _p(text: object, style: ParagraphStyle) -> Paragraph:
    """Return a paragraph of plain text (escaped: names are data, never markup)."""
    return Paragraph(escape(_clean(text)), style)


def _table(
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
    widths: Sequence[float],
    styles: dict[str, ParagraphStyle],
    *,
    numeric: Sequence[int] = (),
    footer: Sequence[Any] | None = None,
    row_height: float | None = None,
    wrap: Sequence[int] | None = None,
) -> Table:
    """Return a ruled table whose header row repeats on every page it runs onto.

    Only the ``wrap`` columns (all when None) are paragraphs that wrap; the others,
    short by nature (numbers, codes, times), are plain text, several times faster to
    lay out: a commune's list of thousands of rows stays a matter of seconds.
    """
    wrapped = set(range(len(header)) if wrap is None else wrap)
    data: list[list[Any]] = [[_p(h, styles["head"]) for h in header]]
    for row in rows:
        data.append(
            [
                (_p(value, styles["num"] if i in numeric else styles["cell"]))
                if i in wrapped
                else _clean(value)
                for i, value in enumerate(row)
            ]
        )
    if footer is not None:
        data.append(
            [
                _p(value, styles["num"] if i in numeric else styles["bold"]) if value != "" else ""
                for i, value in enumerate(footer)
            ]
        )
    heights = None
    if row_height is not None:
        # Room to sign, but never less than the row's wrapped text needs: a long name or
        # many earlier months must not print over the neighbouring rows.
        body = [
            max(
                [row_height]
                + [
                    cell.wrap(widths[i] - 12, 10_000)[1] + 6
                    for i, cell in enumerate(cells)
                    if isinstance(cell, Paragraph)
                ]
            )
            for cells in data[1 : 1 + len(rows)]
        ]
        heights = [None, *body] + ([None] if footer is not None else [])
    table = Table(data, colWidths=list(widths), rowHeights=heights, repeatRows=1)
    commands: list[tuple[Any, ...]] = [
        ("GRID", (0, 0), (-1, -1), 0.4, colors.black),
        ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e6e6e6")),
        ("TOPPADDING", (0, 0), (-1, -1), 2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
        ("FONT", (0, 1), (-1, -1), FONT_REGULAR, 8, 10),
    ]
    commands += [("ALIGN", (i, 1), (i, -1), "RIGHT") for i in numeric]
    if footer is not None:
        commands.append(("BACKGROUND", (0, -1), (-1, -1), colors.HexColor("#f2f2f2")))
    table.setStyle(TableStyle(commands))
    return table


def _long_table(
    header: Sequence[str],
    rows: Sequence[Sequence[Any]],
    widths: Sequence[float],
    styles: dict[str, ParagraphStyle],
    *,
    footer: Sequence[Any],
    span: tuple[int, int],
    numeric: Sequence[int] = (),
    row_height: float | None = None,
    wrap: Sequence[int] | None = None,
) -> list[Any]:
    """Return a table that may run over many pages, and its total row right beneath it.

    The total row is a table of its own: a cell spanning columns makes reportlab
    recompute the spans of every remaining row at each page break, which turns a
    commune's list of 2,000 people from seconds into minutes.
    """
    body = _table(header, rows, widths, styles, numeric=numeric, row_height=row_height, wrap=wrap)
    total = Table(
        [
            [
                _p(value, styles["num"] if i in numeric else styles["bold"]) if value != "" else ""
                for i, value in enumerate(footer)
            ]
        ],
        colWidths=list(widths),
    )
    total.setStyle(
        TableStyle(
            [
                ("GRID", (0, 0), (-1, -1), 0.4, colors.black),
                ("VALIGN", (0, 0), (-1, -1), "MIDDLE"),
                ("BACKGROUND", (0, 0), (-1, -1), colors.HexColor("#f2f2f2")),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
                ("LEFTPADDING", (0, 0), (-1, -1), 3),
                ("RIGHTPADDING", (0, 0), (-1, -1), 3),
                ("SPAN", (span[0], 0), (span[1], 0)),
            ]
        )
    )
    return [body, total]


def _signatures(
    roles: Sequence[str], styles: dict[str, ParagraphStyle], place_date: str
) -> KeepTogether:
    """Return the signature blocks, side by side, with the place and date above the last."""
    width = (PAGE[0] - 2 * MARGIN) / len(roles)
    dated = [""] * (len(roles) - 1) + [place_date]
    table = Table(
        [
            [_p(d, styles["center"]) for d in dated],
            [_p(r, styles["sign"]) for r in roles],
            [_p(SIGN_HINT, styles["hint"]) for _r in roles],
            ["" for _r in roles],
        ],
        colWidths=[width] * len(roles),
        rowHeights=[None, None, None, 24 * mm],
    )
    table.setStyle(TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP")]))
    return KeepTogether([Spacer(1, 4 * mm), table])


def _canvas_class(footer_left: str) -> type[Canvas]:
    """Return a canvas that writes "Trang x/y" and a label at the foot of every page.

    The pages are kept until the end, when their number is known (two passes).
    """

    class NumberedCanvas(Canvas):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for number, state in enumerate(self._pages, start=1):
                self.__dict__.update(state)
                self.setFont(FONT_REGULAR, 7.5)
                self.setFillGray(0.25)
                self.drawString(MARGIN, 6 * mm, footer_left)
                self.drawRightString(PAGE[0] - MARGIN, 6 * mm, f"Trang {number}/{total}")
                super().showPage()
            super().save()

    return NumberedCanvas


def _build(
    story: list[Any], *, title: str, subject: str, footer_left: str, compress: bool
) -> bytes:
    """Lay out a story on A4 landscape pages and return the PDF (same input, same bytes)."""
    out = io.BytesIO()
    doc = SimpleDocTemplate(
        out,
        pagesize=PAGE,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN,
        bottomMargin=12 * mm,
        title=_clean(title),
        author=AUTHOR,
        subject=subject,
        creator=AUTHOR,
        invariant=1,
        pageCompression=1 if compress else 0,
        lang="vi-VN",
    )
    # reportlab keeps module-level state while it writes (font subsets): one at a
    # time, receipts included, hence the receipt module's lock.
    with _render_lock:
        doc.build(story, canvasmaker=_canvas_class(_clean(footer_left)))
    return out.getvalue()


# ---- the daily settlement ------------------------------------------------------------

SETTLEMENT_HEADER = (
    "STT",
    "Số biên nhận",
    "Giờ chi",
    "Mã đối tượng",
    "Họ và tên đối tượng",
    "Số tiền (đ)",
    "Hình thức",
    "Người nhận",
    "Nhân viên",
    "Trạng thái",
)


def _collector(row: PayoutRow) -> str:
    """Return who took the money: the person, or 'Nhận thay: <name>'."""
    if row.collector is CollectorType.PROXY:
        return f"Nhận thay: {row.collector_name}"
    return "Chính chủ"


def _status(row: PayoutRow) -> str:
    """Return a payout's status, with the time of its reversal."""
    text = STATUS_VI.get(row.status, row.status.value)
    if row.reversed_at is not None:
        text += f" lúc {_time(row.reversed_at)}"
    return text


def _settlement_cells(no: int, row: PayoutRow) -> list[Any]:
    """Return one payout as the cells of the settlement's table."""
    return [
        no,
        row.receipt_no,
        row.paid_at.strftime("%H:%M"),
        row.beneficiary_code,
        row.beneficiary_name,
        row.amount_vnd,
        CHANNEL_VI.get(row.channel, row.channel.value),
        _collector(row),
        row.staff,
        _status(row),
    ]


def settlement_title(result: Settlement) -> str:
    """Return the document's name, as files and headings call it."""
    return f"{SETTLEMENT_TITLE} {result.point.code} {_date(result.day)}"


def _state_line(result: Settlement) -> str:
    """Say whether the day is closed, by whom and when."""
    if result.closing is None:
        return "Chưa chốt sổ: số liệu tạm tính đến lúc in."
    closing = result.closing
    who = closing.closed_by_name or closing.closed_by
    return f"Đã chốt sổ lúc {_time(closing.closed_at)}, người chốt: {who}."


def _float_rows(result: Settlement) -> list[tuple[str, int | None]]:
    """Return the cash float's lines: advance, paid, returned, difference."""
    figures = result.figures
    return [
        ("Tiền mặt tạm ứng đầu ngày", figures.advance_vnd),
        ("Đã chi bằng tiền mặt", figures.cash_paid_vnd),
        ("Tiền mặt nộp lại cuối ngày (thủ quỹ kiểm đếm)", figures.returned_vnd),
        ("Chênh lệch (tạm ứng − đã chi − nộp lại; phải bằng 0)", figures.difference_vnd),
    ]


def settlement_pdf(result: Settlement, *, printed_at: datetime, compress: bool = True) -> bytes:
    """Return the daily settlement as an A4 landscape PDF."""
    styles = _styles()
    point = result.point
    figures = result.figures
    story: list[Any] = [
        Table(
            [
                [
                    _p(f"Điểm chi trả: {point.code} – {point.name}", styles["bold"]),
                    _p(f"Số: {point.code}-{result.day.strftime('%Y%m%d')}", styles["num"]),
                ],
                [
                    _p(f"Huyện/thị xã: {point.district.name}", styles["base"]),
                    _p(f"In lúc: {_time(printed_at)}", styles["num"]),
                ],
            ],
            colWidths=[(PAGE[0] - 2 * MARGIN) * 0.7, (PAGE[0] - 2 * MARGIN) * 0.3],
        ),
        Spacer(1, 2 * mm),
        _p(SETTLEMENT_TITLE, styles["title"]),
        _p(f"Chi trả trợ cấp xã hội ngày {_date(result.day)}", styles["subtitle"]),
        _p(_state_line(result), styles["subtitle"]),
        Spacer(1, 3 * mm),
    ]
    listed = result.listed
    widths = [10, 32, 13, 24, 50, 22, 30, 42, 20, 34]
    story.extend(
        _long_table(
            SETTLEMENT_HEADER,
            [
                [_money(c) if isinstance(c, int) and i == 5 else c for i, c in enumerate(cells)]
                for cells in (_settlement_cells(n, r) for n, r in enumerate(listed, start=1))
            ],
            [w * mm for w in widths],
            styles,
            numeric=(0, 5),
            footer=[
                "",
                "Cộng (không tính khoản đã hủy)",
                "",
                "",
                f"{figures.payouts} món",
                _money(figures.total_vnd),
                "",
                "",
                "",
                "",
            ],
            span=(1, 3),
            wrap=(4, 7, 8, 9),
        )
    )
    if not listed:
        story.append(_p("Không có khoản chi nào trong ngày.", styles["base"]))
    story += [Spacer(1, 4 * mm), _p("Tổng hợp theo hình thức chi trả", styles["h2"])]
    channel_rows = [
        [CHANNEL_VI[t.channel], t.count, _money(t.amount_vnd)] for t in result.by_channel
    ]
    reversed_rows = result.reversed_listed
    channel_rows.append(
        [
            "Đã hủy (không tính vào tổng)",
            len(reversed_rows),
            _money(sum(r.amount_vnd for r in reversed_rows)),
        ]
    )
    summary = _table(
        ("Hình thức", "Số món", "Số tiền (đ)"),
        channel_rows,
        [70 * mm, 25 * mm, 40 * mm],
        styles,
        numeric=(1, 2),
        footer=["Tổng cộng đã chi", figures.payouts, _money(figures.total_vnd)],
    )
    cash = _table(
        ("Quỹ tiền mặt", "Số tiền (đ)"),
        [[label, _money(value)] for label, value in _float_rows(result)],
        [85 * mm, 40 * mm],
        styles,
        numeric=(1,),
    )
    story.append(
        KeepTogether(
            [
                Table(
                    [[summary, cash]],
                    colWidths=[(PAGE[0] - 2 * MARGIN) * 0.5, (PAGE[0] - 2 * MARGIN) * 0.5],
                    style=TableStyle(
                        [("VALIGN", (0, 0), (-1, -1), "TOP"), ("LEFTPADDING", (0, 0), (-1, -1), 0)]
                    ),
                ),
                Spacer(1, 3 * mm),
                _p(
                    f"Tổng số tiền đã chi: {format_vnd_plain(figures.total_vnd)} đồng. "
                    f"Viết bằng chữ: {vnd_in_words(figures.total_vnd)}.",
                    styles["bold"],
                ),
            ]
        )
    )
    if result.closing is not None and result.closing.note:
        story.append(_p(f"Ghi chú khi chốt sổ: {result.closing.note}", styles["base"]))
    if result.changes:
        story += _changes_story(result, styles)
    story.append(
        _signatures(
            ("Người lập biểu", "Thủ quỹ", "Trưởng điểm/Phụ trách"),
            styles,
            f"Ngày {result.day.day:02d} tháng {result.day.month:02d} năm {result.day.year}",
        )
    )
    return _build(
        story,
        title=settlement_title(result),
        subject="Bảng kê chi trả trợ cấp xã hội",
        footer_left=f"{SETTLEMENT_TITLE} · {point.code} · {_date(result.day)}",
        compress=compress,
    )


def _changes_story(result: Settlement, styles: dict[str, ParagraphStyle]) -> list[Any]:
    """Return the section of payouts and reversals made after the day was closed."""
    rows = [
        [
            "Chi mới" if change.kind == "payout" else "Hủy chi",
            _time(change.at),
            change.row.receipt_no,
            change.row.beneficiary_code,
            change.row.beneficiary_name,
            CHANNEL_VI.get(change.row.channel, change.row.channel.value),
            _money(change.cash_vnd + change.account_vnd),
        ]
        for change in result.changes
    ]
    cash_delta = sum(c.cash_vnd for c in result.changes)
    account_delta = sum(c.account_vnd for c in result.changes)
    now = result.current
    return [
        Spacer(1, 4 * mm),
        _p("Thay đổi sau khi chốt sổ (hủy chi, chi mới)", styles["h2"]),
        *_long_table(
            ("Loại", "Lúc", "Số biên nhận", "Mã đối tượng", "Họ và tên", "Hình thức", "Số tiền"),
            rows,
            [w * mm for w in (22, 32, 36, 28, 70, 36, 30)],
            styles,
            numeric=(6,),
            footer=["Cộng thay đổi", "", "", "", "", "", _money(cash_delta + account_delta)],
            span=(0, 5),
            wrap=(4,),
        ),
        Spacer(1, 2 * mm),
        _p(
            f"Số liệu hiện tại: {now.payouts} món, tiền mặt {_money(now.cash_paid_vnd)} đ, "
            f"tài khoản {_money(now.account_paid_vnd)} đ (thay đổi tiền mặt "
            f"{_money(cash_delta)} đ, tài khoản {_money(account_delta)} đ so với lúc chốt).",
            styles["base"],
        ),
    ]


def settlement_xlsx(result: Settlement, *, printed_at: datetime) -> bytes:
    """Return the daily settlement as an Excel workbook (numbers as numbers)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    sheet.title = "Bảng kê"
    bold = Font(bold=True)
    figures = result.figures
    point = result.point

    def put(*cells: Any, strong: bool = False) -> None:
        sheet.append([_cell(c) for c in cells])
        if strong:
            for cell in sheet[sheet.max_row]:
                cell.font = bold

    put(SETTLEMENT_TITLE, strong=True)
    put("Điểm chi trả", f"{point.code} – {point.name}")
    put("Ngày", _date(result.day))
    put("Trạng thái", _state_line(result))
    put("In lúc", _time(printed_at))
    put()
    put(*SETTLEMENT_HEADER, strong=True)
    header_row = sheet.max_row
    for n, row in enumerate(result.listed, start=1):
        put(*_settlement_cells(n, row))
    put(
        "",
        "Cộng (không tính khoản đã hủy)",
        "",
        "",
        figures.payouts,
        figures.total_vnd,
        strong=True,
    )
    for cells in sheet.iter_rows(min_row=header_row + 1, min_col=6, max_col=6):
        cells[0].number_format = "#,##0"
    put()
    put("Hình thức", "Số món", "Số tiền (đ)", strong=True)
    for total in result.by_channel:
        put(CHANNEL_VI[total.channel], total.count, total.amount_vnd)
    reversed_rows = result.reversed_listed
    put(
        "Đã hủy (không tính vào tổng)",
        len(reversed_rows),
        sum(r.amount_vnd for r in reversed_rows),
    )
    put("Tổng cộng đã chi", figures.payouts, figures.total_vnd, strong=True)
    put()
    put("Quỹ tiền mặt", "Số tiền (đ)", strong=True)
    for label, value in _float_rows(result):
        put(label, value)
    put()
    put("Tổng số tiền viết bằng chữ", vnd_in_words(figures.total_vnd), strong=True)
    if result.closing is not None and result.closing.note:
        put("Ghi chú khi chốt sổ", result.closing.note)
    put()
    put("Người lập biểu", "", "", "Thủ quỹ", "", "", "Trưởng điểm/Phụ trách", strong=True)
    _widths(sheet, (6, 22, 10, 16, 28, 14, 20, 30, 14, 28))
    if result.changes:
        changes = book.create_sheet("Thay đổi sau chốt sổ")
        changes.append(["Loại", "Lúc", "Số biên nhận", "Mã đối tượng", "Họ và tên", "Số tiền"])
        for change in result.changes:
            changes.append(
                [
                    _cell("Chi mới" if change.kind == "payout" else "Hủy chi"),
                    _cell(_time(change.at)),
                    _cell(change.row.receipt_no),
                    _cell(change.row.beneficiary_code),
                    _cell(change.row.beneficiary_name),
                    change.cash_vnd + change.account_vnd,
                ]
            )
        _widths(changes, (10, 18, 22, 16, 28, 14))
    return _save(book)


def _cell(value: Any) -> Any:
    """Return a value for a worksheet: integers as numbers, text never a formula."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return safe_cell(value)


def _widths(sheet: Any, widths: Sequence[int]) -> None:
    """Set a worksheet's column widths, in characters."""
    from openpyxl.utils import get_column_letter

    for index, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(index)].width = width


def _save(book: Any) -> bytes:
    """Return a workbook's bytes."""
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# ---- the signed payout list ----------------------------------------------------------

LIST_HEADER = (
    "STT",
    "Họ và tên",
    "Năm sinh",
    "Mã đối tượng",
    "Số tiền tháng này (đ)",
    "Truy lĩnh (đ)",
    "Các tháng trước chưa nhận",
    "Số tiền các tháng trước (đ)",
    "Tổng số tiền (đ)",
    "Ký nhận",
    "Họ tên người nhận",
)


def list_title(result: PayoutList) -> str:
    """Return the list's heading: commune and period."""
    return f"{LIST_TITLE} – {result.commune.name} – tháng {result.period.label}"


def payout_list_pdf(result: PayoutList, *, printed_at: datetime, compress: bool = True) -> bytes:
    """Return the signed payout list as an A4 landscape PDF, a tall row per person to sign."""
    styles = _styles()
    commune = result.commune
    district = commune.parent.name if commune.parent else ""
    story: list[Any] = [
        Table(
            [
                [
                    _p(f"Xã/phường/thị trấn: {commune.name}", styles["bold"]),
                    _p(f"In lúc: {_time(printed_at)}", styles["num"]),
                ],
                [_p(f"Huyện/thị xã: {district}", styles["base"]), ""],
            ],
            colWidths=[(PAGE[0] - 2 * MARGIN) * 0.7, (PAGE[0] - 2 * MARGIN) * 0.3],
        ),
        Spacer(1, 2 * mm),
        _p(LIST_TITLE, styles["title"]),
        _p(f"Tháng {result.period.label} – {commune.name}", styles["subtitle"]),
        Spacer(1, 3 * mm),
    ]
    rows = [
        [
            row.no,
            row.full_name,
            row.birth_year,
            row.code,
            _money(row.monthly_vnd),
            _money(row.arrears_vnd) if row.arrears_vnd else "",
            ", ".join(row.earlier_periods),
            _money(row.earlier_vnd) if row.earlier_vnd else "",
            _money(row.total_vnd),
            "",
            "",
        ]
        for row in result.rows
    ]
    widths = [10, 46, 14, 25, 24, 20, 28, 24, 25, 30, 31]
    story.extend(
        _long_table(
            LIST_HEADER,
            rows,
            [w * mm for w in widths],
            styles,
            numeric=(0, 2, 4, 5, 7, 8),
            footer=[
                "",
                f"Cộng: {len(result.rows)} người",
                "",
                "",
                _money(result.monthly_vnd),
                _money(result.arrears_vnd),
                "",
                _money(result.earlier_vnd),
                _money(result.total_vnd),
                "",
                "",
            ],
            span=(1, 3),
            row_height=11 * mm,
            wrap=(1, 6),
        )
    )
    if not result.rows:
        story.append(_p("Không có ai được chi trả trong kỳ này.", styles["base"]))
    # The amount in words goes over the page break with the signatures it is signed by.
    story.append(
        KeepTogether(
            [
                Spacer(1, 3 * mm),
                _p(
                    f"Tổng số tiền: {format_vnd_plain(result.total_vnd)} đồng. "
                    f"Viết bằng chữ: {vnd_in_words(result.total_vnd)}.",
                    styles["bold"],
                ),
                _signatures(
                    ("Người lập danh sách", "Người phê duyệt (TM. UBND xã)"),
                    styles,
                    f"{commune.name}, ngày ..... tháng ..... năm .........",
                ),
            ]
        )
    )
    return _build(
        story,
        title=list_title(result),
        subject="Danh sách chi trả trợ cấp xã hội",
        footer_left=f"Danh sách chi trả · {commune.name} · tháng {result.period.label}",
        compress=compress,
    )


def payout_list_xlsx(result: PayoutList, *, printed_at: datetime) -> bytes:
    """Return the signed payout list as an Excel workbook (numbers as numbers)."""
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    sheet.title = "Danh sách chi trả"
    bold = Font(bold=True)

    def put(*cells: Any, strong: bool = False) -> None:
        sheet.append([_cell(c) for c in cells])
        if strong:
            for cell in sheet[sheet.max_row]:
                cell.font = bold

    commune = result.commune
    put(LIST_TITLE, strong=True)
    put("Xã/phường/thị trấn", commune.name)
    put("Huyện/thị xã", commune.parent.name if commune.parent else "")
    put("Tháng", result.period.label)
    put("In lúc", _time(printed_at))
    put()
    put(*LIST_HEADER, strong=True)
    first = sheet.max_row + 1
    for row in result.rows:
        put(
            row.no,
            row.full_name,
            row.birth_year,
            row.code,
            row.monthly_vnd,
            row.arrears_vnd,
            ", ".join(row.earlier_periods),
            row.earlier_vnd,
            row.total_vnd,
            "",
            "",
        )
    put(
        "",
        f"Cộng: {len(result.rows)} người",
        "",
        "",
        result.monthly_vnd,
        result.arrears_vnd,
        "",
        result.earlier_vnd,
        result.total_vnd,
        strong=True,
    )
    for cells in sheet.iter_rows(min_row=first, max_row=sheet.max_row, min_col=5, max_col=9):
        for cell in cells:
            cell.number_format = "#,##0"
    put()
    put("Tổng số tiền viết bằng chữ", vnd_in_words(result.total_vnd), strong=True)
    put()
    put("Người lập danh sách", "", "", "", "", "", "Người phê duyệt (TM. UBND xã)", strong=True)
    _widths(sheet, (6, 28, 10, 16, 16, 14, 22, 18, 16, 20, 26))
    return _save(book)
