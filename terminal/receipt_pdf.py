"""Receipt PDF: the paper an allowance recipient takes home and an auditor checks.

Two formats: "80mm" for thermal roll printers (page height fitted to the content) and "a5"
(148 x 210 mm portrait, continued on further pages when many periods are paid at once).

Everything is drawn as plain text with an embedded DejaVu Sans (Vietnamese needs the full
Latin Extended Additional range): names are data, never markup, so `<`, `&` and quotes print
as themselves. Long values wrap within the column; a word wider than the column is broken by
characters rather than drawn past the margin.

Layout happens in two passes: `_build_blocks` measures everything into blocks of drawing
operations with known heights; `_paginate` places the blocks on pages; `_draw` emits them. The
QR code that lets anyone check the receipt is drawn from its module matrix as one vector path.
Output is byte-for-byte deterministic for the same input (reportlab invariant mode).
"""

from __future__ import annotations

import threading
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import qrcode
from qrcode.constants import ERROR_CORRECT_M, ERROR_CORRECT_Q
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from terminal.money import format_vnd

__all__ = [
    "FONT_BOLD",
    "FONT_REGULAR",
    "QR_MIN_MODULE_MM",
    "QR_QUIET_MODULES",
    "SIZES",
    "QrPlan",
    "ReceiptDocument",
    "ReceiptLine",
    "plan_qr",
    "register_fonts",
    "render_receipt_pdf",
]

FONT_DIR = Path(__file__).parent / "fonts"
FONT_REGULAR = "DejaVuSans"
FONT_BOLD = "DejaVuSans-Bold"

SIZES = ("80mm", "a5")

#: Smallest QR module allowed on paper, and the quiet zone kept blank around the symbol.
QR_MIN_MODULE_MM = 0.4
QR_QUIET_MODULES = 4
# Thermal heads print 8 dots/mm (203 dpi): modules that are a whole number of dots print
# evenly, so module sizes are multiples of 1/8 mm whenever there is room.
_DOT_MM = 0.125
_QR_PREFERRED_MIN_MM = 0.5

COLLECTOR_SELF = "Chính chủ"
COLLECTOR_PROXY = "Người nhận thay"

TITLE = "BIÊN NHẬN CHI TRẢ TRỢ CẤP XÃ HỘI"
TITLE_LINES = ("BIÊN NHẬN CHI TRẢ", "TRỢ CẤP XÃ HỘI")
QR_CAPTION = "Quét mã QR để kiểm tra biên nhận là thật"
SIGN_HINT = "(ký, ghi rõ họ tên)"
_PDF_AUTHOR = "Hệ thống chi trả trợ cấp xã hội"


@dataclass(frozen=True)
class ReceiptLine:
    """One period paid, e.g. ReceiptLine("10/2021", 540_000)."""

    period: str
    amount_vnd: int


@dataclass(frozen=True)
class ReceiptDocument:
    """Everything printed on a receipt, already formatted for people where it is text.

    Datetimes are local Vietnam time. `verify_url` is what the QR code encodes.
    """

    receipt_no: str
    point_name: str
    printed_at: datetime
    paid_at: datetime
    beneficiary_name: str
    beneficiary_code: str
    id_masked: str
    category: str
    commune: str
    lines: tuple[ReceiptLine, ...]
    total_vnd: int
    total_words: str
    channel: str
    provider_ref: str | None
    collector: str
    proxy_name: str | None
    proxy_id_masked: str | None
    proxy_relationship: str | None
    staff_name: str
    verify_url: str
    reprint_count: int = 0
    status_note: str | None = None


# --------------------------------------------------------------------------------------------
# Fonts

_font_lock = threading.Lock()
_fonts_registered = False


def register_fonts() -> None:
    """Register DejaVu Sans regular and bold with reportlab, once per process."""
    global _fonts_registered
    if _fonts_registered:  # fast path: a plain read, no lock
        return
    with _font_lock:
        if _fonts_registered:
            return
        pdfmetrics.registerFont(TTFont(FONT_REGULAR, str(FONT_DIR / "DejaVuSans.ttf")))
        pdfmetrics.registerFont(TTFont(FONT_BOLD, str(FONT_DIR / "DejaVuSans-Bold.ttf")))
        _fonts_registered = True


# --------------------------------------------------------------------------------------------
# Styles


@dataclass(frozen=True)
class _Style:
    page_w: float
    page_h: float | None  # None: fitted to the content (thermal roll)
    margin_x: float
    margin_top: float
    margin_bottom: float
    footer_h: float  # reserved at the bottom of every page (A5 page footer)
    title: float
    body: float
    small: float
    status: float
    label_max_ratio: float
    sign_space: float
    qr_target_mm: float
    dashed_rules: bool
    signatures_side_by_side: bool


_STYLES = {
    "80mm": _Style(
        page_w=80 * mm,
        page_h=None,
        margin_x=4 * mm,
        margin_top=4 * mm,
        margin_bottom=8 * mm,  # clear of the cutter
        footer_h=0,
        title=10.5,
        body=8.5,
        small=7.5,
        status=16,
        label_max_ratio=0.42,
        sign_space=17 * mm,
        qr_target_mm=28,
        dashed_rules=True,
        signatures_side_by_side=False,
    ),
    "a5": _Style(
        page_w=148 * mm,
        page_h=210 * mm,
        margin_x=13 * mm,
        margin_top=10 * mm,
        margin_bottom=9 * mm,
        footer_h=7 * mm,
        title=13,
        body=10,
        small=8.5,
        status=22,
        label_max_ratio=0.34,
        sign_space=18 * mm,
        qr_target_mm=26,
        dashed_rules=False,
        signatures_side_by_side=True,
    ),
}


def _style(size: str) -> _Style:
    try:
        return _STYLES[size]
    except (KeyError, TypeError):
        raise ValueError(f"unknown receipt size {size!r}; expected one of {SIZES}") from None


# --------------------------------------------------------------------------------------------
# QR code


@dataclass(frozen=True)
class QrPlan:
    """How the verification QR code is printed for one size."""

    ec_level: str  # "Q" or "M"
    version: int
    modules: int  # modules per side, without the quiet zone
    module_mm: float
    quiet_modules: int

    @property
    def side_mm(self) -> float:
        """Printed side of the symbol including its quiet zone."""
        return (self.modules + 2 * self.quiet_modules) * self.module_mm


def _module_mm_for(n_total: int, style: _Style) -> float | None:
    """Module size for a symbol of n_total modules (quiet zone included), or None."""
    width_mm = (style.page_w - 2 * style.margin_x) / mm
    dots = max(_QR_PREFERRED_MIN_MM / _DOT_MM, round(style.qr_target_mm / n_total / _DOT_MM))
    module = dots * _DOT_MM
    if n_total * module <= width_mm:
        return module
    module = width_mm / n_total  # no room for whole dots: fill the width
    return module if module >= QR_MIN_MODULE_MM else None


# A fixed mask pattern: any of the eight is valid for every reader, and choosing the
# "best" one means scoring all eight in pure Python (about 40 ms of a receipt's
# 60 ms). The penalty rules it would minimise matter for hard-to-read symbols; ours
# are printed large, with a quiet zone, at Q or M error correction.
QR_MASK = 2


def _qr_for(url: str, style: _Style) -> tuple[QrPlan, list[list[bool]]]:
    # Q (25 % recovery) survives a creased, faded thermal slip better than M (15 %); it costs
    # one or two versions. Use Q while its symbol fits the target size at >= 0.5 mm per
    # module (URLs up to ~100 bytes), else M so long URLs still print at a scannable size.
    for level, ec in (("Q", ERROR_CORRECT_Q), ("M", ERROR_CORRECT_M)):
        qr = qrcode.QRCode(error_correction=ec, border=0, mask_pattern=QR_MASK)
        qr.add_data(url.encode("utf-8"))
        try:
            version = qr.best_fit()
        except qrcode.exceptions.DataOverflowError:
            continue
        modules = version * 4 + 17
        n_total = modules + 2 * QR_QUIET_MODULES
        fits_target = n_total * _QR_PREFERRED_MIN_MM <= style.qr_target_mm
        module = _module_mm_for(n_total, style)
        if module is None or (level == "Q" and not fits_target):
            continue
        qr.make(fit=False)
        plan = QrPlan(level, version, modules, module, QR_QUIET_MODULES)
        return plan, qr.get_matrix()
    raise ValueError("verify_url is too long to print as a QR code on this receipt")


def plan_qr(verify_url: str, size: str) -> QrPlan:
    """Return the QR error level, version and printed module size used for `size`."""
    return _qr_for(verify_url, _style(size))[0]


def _qr_rects(matrix: list[list[bool]]) -> list[tuple[int, int, int, int]]:
    """Dark modules as rectangles (col, row, width, height) in modules, row 0 at the top.

    Runs of dark modules in a row are merged, and a run repeated exactly in the next rows is
    extended downwards, so a version-6 symbol needs a few hundred rectangles, not ~800 squares.
    """
    rects: list[tuple[int, int, int, int]] = []
    open_runs: dict[tuple[int, int], list[int]] = {}  # (start, end) -> [first_row, height]
    for r, row in enumerate(matrix):
        runs: list[tuple[int, int]] = []
        start = -1
        for c, dark in enumerate(row):
            if dark and start < 0:
                start = c
            elif not dark and start >= 0:
                runs.append((start, c))
                start = -1
        if start >= 0:
            runs.append((start, len(row)))
        current = set(runs)
        for key in [k for k in open_runs if k not in current]:
            first, height = open_runs.pop(key)
            rects.append((key[0], first, key[1] - key[0], height))
        for key in runs:
            if key in open_runs:
                open_runs[key][1] += 1
            else:
                open_runs[key] = [r, 1]
    for key, (first, height) in open_runs.items():
        rects.append((key[0], first, key[1] - key[0], height))
    rects.sort(key=lambda t: (t[1], t[0]))
    return rects


# --------------------------------------------------------------------------------------------
# Text measuring and wrapping


_NBSP = "\u00a0"  # wraps as a letter, prints as a space


def _clean(text: object) -> str:
    """NFC (precomposed Vietnamese letters); control characters and line breaks as spaces."""
    s = unicodedata.normalize("NFC", "" if text is None else str(text))
    if s.isprintable():
        return s
    return "".join(ch if ch.isprintable() or ch == _NBSP else " " for ch in s)


class _Measure:
    def __init__(self) -> None:
        self._fonts = {name: pdfmetrics.getFont(name) for name in (FONT_REGULAR, FONT_BOLD)}

    def width(self, text: str, font: str, size: float) -> float:
        return self._fonts[font].stringWidth(text, size)

    def wrap(self, text: str, font: str, size: float, width: float) -> list[str]:
        """Greedy word wrap within `width`; words longer than the line break by character."""
        words = [word for word in _clean(text).split(" ") if word]
        if not words:
            return [""]
        sw = self._fonts[font].stringWidth
        space = sw(" ", size)
        lines: list[str] = []
        line = ""
        line_w = 0.0
        for word in words:
            w = sw(word, size)
            if line and line_w + space + w <= width:
                line += " " + word
                line_w += space + w
                continue
            if line:
                lines.append(line)
            if w <= width:
                line, line_w = word, w
                continue
            # A word wider than the whole line: cut it into pieces that fit.
            piece, piece_w = "", 0.0
            for ch in word:
                cw = sw(ch, size)
                if piece and piece_w + cw > width:
                    lines.append(piece)
                    piece, piece_w = "", 0.0
                piece += ch
                piece_w += cw
            line, line_w = piece, piece_w
        lines.append(line)
        return lines


# --------------------------------------------------------------------------------------------
# Blocks: measured groups of drawing operations

# Operations, with y offsets measured downwards from the top of their block:
#   ("text", font, size, x, baseline_dy, text)
#   ("rule", x1, x2, dy, line_width, dashed)
#   ("box", x, top_dy, width, height, line_width)
#   ("qr", x, top_dy, module_pt, rects)


class _Block:
    __slots__ = ("height", "keep_with_next", "ops", "table_header")

    def __init__(self, height: float, ops: list[tuple], keep_with_next: bool = False) -> None:
        self.height = height
        self.ops = ops
        self.keep_with_next = keep_with_next
        self.table_header: _Block | None = None  # repeated when a table continues on a page


def _leading(size: float) -> float:
    return size * 1.32


def _baseline(size: float) -> float:
    # DejaVu descends 0.24 em; stacked Vietnamese marks on capitals reach ~1.0 em.
    return _leading(size) - 0.25 * size


class _Builder:
    def __init__(self, style: _Style) -> None:
        self.st = style
        self.m = _Measure()
        self.x0 = style.margin_x
        self.w = style.page_w - 2 * style.margin_x
        self.x1 = self.x0 + self.w
        self.blocks: list[_Block] = []
        self.label_w = 0.0

    # -- primitives --------------------------------------------------------------------------

    def space(self, h: float) -> None:
        if self.blocks and not self.blocks[-1].ops and not self.blocks[-1].keep_with_next:
            self.blocks[-1].height += h
        else:
            self.blocks.append(_Block(h, []))

    def rule(self, above: float, below: float, heavy: bool = False) -> None:
        lw = 0.9 if heavy else 0.5
        dashed = self.st.dashed_rules and not heavy
        self.blocks.append(_Block(above + below, [("rule", self.x0, self.x1, above, lw, dashed)]))

    def _line_ops(
        self, lines: list[str], font: str, size: float, x: float, width: float, align: str
    ) -> list[list[tuple]]:
        out = []
        for line in lines:
            if align == "left":
                lx = x
            else:
                lw = self.m.width(line, font, size)
                lx = x + (width - lw) if align == "right" else x + (width - lw) / 2
            out.append([("text", font, size, lx, _baseline(size), line)])
        return out

    def paragraph(
        self, text: str, font: str, size: float, align: str = "left", keep: bool = False
    ) -> None:
        """Full-width text; one block per line so a long paragraph can cross a page."""
        lines = self.m.wrap(text, font, size, self.w)
        for i, ops in enumerate(self._line_ops(lines, font, size, self.x0, self.w, align)):
            last = i == len(lines) - 1
            self.blocks.append(_Block(_leading(size), ops, keep_with_next=keep or not last))

    def set_labels(self, labels: list[str]) -> None:
        size = self.st.body
        widest = max(self.m.width(label, FONT_REGULAR, size) for label in labels)
        self.label_w = min(widest + 2.5 * mm, self.w * self.st.label_max_ratio)

    def field(self, label: str, value: str, bold: bool = False) -> None:
        """`label` in a column on the left, `value` wrapped in the column on its right."""
        size = self.st.body
        gap = 1.5 * mm
        label_lines = self.m.wrap(label, FONT_REGULAR, size, self.label_w - gap)
        vx = self.x0 + self.label_w
        vfont = FONT_BOLD if bold else FONT_REGULAR
        value_lines = self.m.wrap(value, vfont, size, self.x1 - vx)
        rows = max(len(label_lines), len(value_lines))
        for i in range(rows):
            ops: list[tuple] = []
            if i < len(label_lines):
                ops.append(("text", FONT_REGULAR, size, self.x0, _baseline(size), label_lines[i]))
            if i < len(value_lines):
                ops.append(("text", vfont, size, vx, _baseline(size), value_lines[i]))
            # Keep a label with the first two lines of its value.
            self.blocks.append(_Block(_leading(size), ops, keep_with_next=i == 0 and rows > 1))

    # -- receipt parts -----------------------------------------------------------------------

    def boxed(self, text: str, font: str, size: float, line_width: float) -> None:
        pad = 0.35 * size + 1.2 * mm
        lines = self.m.wrap(text, font, size, self.w - 2 * pad)
        lead = _leading(size)
        h = 2 * pad + lead * len(lines)
        ops: list[tuple] = [("box", self.x0, 0.0, self.w, h, line_width)]
        for i, line_ops in enumerate(self._line_ops(lines, font, size, self.x0, self.w, "center")):
            (_, f, s, x, dy, t) = line_ops[0]
            ops.append(("text", f, s, x, pad + i * lead + dy, t))
        self.blocks.append(_Block(h, ops))

    def table(self, doc: ReceiptDocument) -> None:
        size = self.st.body
        lead = _leading(size)
        base = _baseline(size)
        no_w = self.m.width("STT", FONT_BOLD, size) + 2 * mm
        amounts = [format_vnd(line.amount_vnd) for line in doc.lines]
        total = format_vnd(doc.total_vnd)
        amount_w = max(
            [self.m.width(a, FONT_REGULAR, size) for a in amounts]
            + [self.m.width(total, FONT_BOLD, size), self.m.width("Số tiền", FONT_BOLD, size)]
        )
        px = self.x0 + no_w
        period_w = max(self.w - no_w - amount_w - 3 * mm, 10 * mm)

        head_h = lead + 1.2 * mm
        head_ops: list[tuple] = [
            ("text", FONT_BOLD, size, self.x0, base, "STT"),
            ("text", FONT_BOLD, size, px, base, "Kỳ trợ cấp"),
            ("text", FONT_BOLD, size, self.x1 - self.m.width("Số tiền", FONT_BOLD, size), base,
             "Số tiền"),
            ("rule", self.x0, self.x1, lead + 0.6 * mm, 0.5, False),
        ]  # fmt: skip
        header = _Block(head_h, head_ops, keep_with_next=True)
        self.blocks.append(header)

        for n, (line, amount) in enumerate(zip(doc.lines, amounts, strict=True), start=1):
            period_lines = self.m.wrap(line.period, FONT_REGULAR, size, period_w)
            ops: list[tuple] = [
                ("text", FONT_REGULAR, size, self.x0, base, str(n)),
                ("text", FONT_REGULAR, size,
                 self.x1 - self.m.width(amount, FONT_REGULAR, size), base, amount),
            ]  # fmt: skip
            for i, p in enumerate(period_lines):
                ops.append(("text", FONT_REGULAR, size, px, base + i * lead, p))
            row = _Block(lead * len(period_lines), ops)
            row.table_header = header
            self.blocks.append(row)

        total_ops: list[tuple] = [
            ("rule", self.x0, self.x1, 0.8 * mm, 0.9, False),
            ("text", FONT_BOLD, size + 0.5, self.x0, 1.6 * mm + _baseline(size + 0.5),
             "Tổng cộng"),
            ("text", FONT_BOLD, size + 0.5,
             self.x1 - self.m.width(total, FONT_BOLD, size + 0.5),
             1.6 * mm + _baseline(size + 0.5), total),
        ]  # fmt: skip
        self.blocks.append(_Block(1.6 * mm + _leading(size + 0.5), total_ops, keep_with_next=True))
        self.paragraph(f"Bằng chữ: {doc.total_words}", FONT_REGULAR, size)

    def _signature_column(
        self, role: str, name: str, x: float, width: float
    ) -> tuple[list[tuple], float]:
        st = self.st
        ops: list[tuple] = []
        y = 0.0
        for font, size, text in ((FONT_BOLD, st.body, role), (FONT_REGULAR, st.small, SIGN_HINT)):
            lines = self.m.wrap(text, font, size, width)
            for line_ops in self._line_ops(lines, font, size, x, width, "center"):
                (_, f, s, lx, dy, t) = line_ops[0]
                ops.append(("text", f, s, lx, y + dy, t))
                y += _leading(size)
        y += st.sign_space
        if name:
            lines = self.m.wrap(name, FONT_REGULAR, st.body, width)
            for line_ops in self._line_ops(lines, FONT_REGULAR, st.body, x, width, "center"):
                (_, f, s, lx, dy, t) = line_ops[0]
                ops.append(("text", f, s, lx, y + dy, t))
                y += _leading(st.body)
        return ops, y

    def signatures(self, recipient_name: str, staff_name: str) -> None:
        cols = (("Người nhận", recipient_name), ("Nhân viên chi trả", staff_name))
        if self.st.signatures_side_by_side:
            gap = 6 * mm
            cw = (self.w - gap) / 2
            ops_a, ha = self._signature_column(*cols[0], self.x0, cw)
            ops_b, hb = self._signature_column(*cols[1], self.x0 + cw + gap, cw)
            self.blocks.append(_Block(max(ha, hb), ops_a + ops_b))
        else:
            for i, col in enumerate(cols):
                ops, h = self._signature_column(*col, self.x0, self.w)
                self.blocks.append(_Block(h, ops))
                if i == 0:
                    self.space(4 * mm)

    def qr(self, plan: QrPlan, matrix: list[list[bool]]) -> None:
        module = plan.module_mm * mm
        quiet = plan.quiet_modules * module
        side = plan.modules * module
        x = self.x0 + (self.w - side) / 2
        ops: list[tuple] = [("qr", x, quiet, module, _qr_rects(matrix))]
        self.blocks.append(_Block(side + 2 * quiet, ops, keep_with_next=True))


def _fmt_time(value: datetime) -> str:
    return value.strftime("%d/%m/%Y %H:%M")


def _collector_field(doc: ReceiptDocument) -> tuple[str, str, str]:
    """(label, value, name to print under the recipient's signature)."""
    collector = _clean(doc.collector).strip()
    is_proxy = collector == COLLECTOR_PROXY or (collector != COLLECTOR_SELF and doc.proxy_name)
    if not is_proxy:
        return "Người nhận:", collector or COLLECTOR_SELF, doc.beneficiary_name
    name = _clean(doc.proxy_name or "").strip() or "(không ghi tên)"
    value = name
    if doc.proxy_relationship:
        value += f"{_NBSP}— {doc.proxy_relationship}"
    if doc.proxy_id_masked:
        value += f", CCCD/CMND{_NBSP}{doc.proxy_id_masked}"
    return f"{COLLECTOR_PROXY}:", value, name


def _markers(doc: ReceiptDocument) -> list[str]:
    out = []
    if doc.reprint_count > 0:
        out.append(f"BẢN IN LẠI (lần {doc.reprint_count})")
    if doc.status_note:
        out.append(_clean(doc.status_note))
    return out


def _build_blocks(doc: ReceiptDocument, style: _Style) -> list[_Block]:
    b = _Builder(style)
    st = style
    if b.m.width(TITLE, FONT_BOLD, st.title) <= b.w:
        b.paragraph(TITLE, FONT_BOLD, st.title, align="center")
    else:  # break at the phrase, not wherever the width runs out
        b.paragraph(TITLE_LINES[0], FONT_BOLD, st.title, align="center", keep=True)
        b.paragraph(TITLE_LINES[1], FONT_BOLD, st.title, align="center")
    b.space(1.5 * mm)
    if doc.reprint_count > 0:
        b.boxed(f"BẢN IN LẠI (lần {doc.reprint_count})", FONT_BOLD, st.body + 0.5, 0.6)
        b.space(1.5 * mm)
    if doc.status_note:
        b.boxed(doc.status_note, FONT_BOLD, st.status, 2.0)
        b.space(1.5 * mm)

    collector_label, collector_value, recipient_name = _collector_field(doc)
    b.set_labels(
        [
            "Số biên nhận:",
            "Điểm chi trả:",
            "Thời gian chi trả:",
            "Người hưởng:",
            "Mã đối tượng:",
            "Số CCCD/CMND:",
            "Diện:",
            "Xã/Phường:",
            "Hình thức:",
            "Mã giao dịch:",
            collector_label,
            "Nhân viên chi trả:",
        ]
    )
    b.field("Số biên nhận:", doc.receipt_no, bold=True)
    b.field("Điểm chi trả:", doc.point_name)
    b.field("Thời gian chi trả:", _fmt_time(doc.paid_at))
    b.rule(1.2 * mm, 1.2 * mm)
    b.field("Người hưởng:", doc.beneficiary_name, bold=True)
    b.field("Mã đối tượng:", doc.beneficiary_code)
    b.field("Số CCCD/CMND:", doc.id_masked or "(không có)")
    b.field("Diện:", doc.category)
    b.field("Xã/Phường:", doc.commune)
    b.rule(1.2 * mm, 1.0 * mm)
    b.table(doc)
    b.rule(1.0 * mm, 1.2 * mm)
    b.field("Hình thức:", doc.channel)
    if doc.provider_ref:
        b.field("Mã giao dịch:", doc.provider_ref)
    b.field(collector_label, collector_value)
    b.field("Nhân viên chi trả:", doc.staff_name)
    b.rule(1.2 * mm, 3.0 * mm)
    # Signatures, QR and caption stay together: a page never ends between them.
    sign_from = len(b.blocks)
    b.signatures(recipient_name, doc.staff_name)
    b.space(3 * mm)
    for blk in b.blocks[sign_from:]:
        blk.keep_with_next = True

    plan, matrix = _qr_for(doc.verify_url, st)
    b.qr(plan, matrix)
    b.paragraph(QR_CAPTION, FONT_REGULAR, st.small, align="center")
    if st.page_h is None:  # roll: printed-at closes the slip; A5 prints it in the footer
        b.space(1.5 * mm)
        b.paragraph(f"In lúc: {_fmt_time(doc.printed_at)}", FONT_REGULAR, st.small, "center")
    return b.blocks


# --------------------------------------------------------------------------------------------
# Pages


def _continuation_block(doc: ReceiptDocument, style: _Style) -> _Block:
    b = _Builder(style)
    parts = [f"Biên nhận số {doc.receipt_no} (tiếp theo)", *_markers(doc)]
    b.paragraph(" — ".join(parts), FONT_BOLD, style.body)
    b.rule(1.0 * mm, 2.0 * mm)
    ops: list[tuple] = []
    y = 0.0
    for blk in b.blocks:
        for op in blk.ops:
            ops.append(_shift(op, y))
        y += blk.height
    return _Block(y, ops)


def _shift(op: tuple, dy: float) -> tuple:
    kind = op[0]
    if kind == "text":
        return (*op[:4], op[4] + dy, op[5])
    if kind == "rule":
        return (*op[:3], op[3] + dy, *op[4:])
    return (*op[:2], op[2] + dy, *op[3:])  # box, qr


def _paginate(
    blocks: list[_Block], available: float | None, cont: _Block | None
) -> list[list[tuple[float, _Block]]]:
    """Place blocks on pages: [[(y_offset, block), ...], ...]; None `available` = one page."""
    pages: list[list[tuple[float, _Block]]] = [[]]
    y = 0.0
    i = 0
    while i < len(blocks):
        # A unit: this block plus the blocks it is kept with.
        j = i
        unit_h = blocks[i].height
        while blocks[j].keep_with_next and j + 1 < len(blocks):
            j += 1
            unit_h += blocks[j].height
        if available is not None and pages[-1] and y + unit_h > available:
            fresh_h = available - (cont.height if cont else 0.0)
            if unit_h > fresh_h:  # too tall for any page: move on block by block
                j = i
                unit_h = blocks[i].height
            if y + unit_h > available:
                pages.append([])
                y = 0.0
                if cont is not None:
                    pages[-1].append((y, cont))
                    y += cont.height
                header = blocks[i].table_header
                if header is not None:
                    pages[-1].append((y, header))
                    y += header.height
                if not blocks[i].ops:  # no blank space at the top of a page
                    i += 1
                    continue
        for k in range(i, j + 1):
            pages[-1].append((y, blocks[k]))
            y += blocks[k].height
        i = j + 1
    return pages


def _draw_op(c: Canvas, op: tuple, top: float, state: list) -> None:
    kind = op[0]
    if kind == "text":
        _, font, size, x, dy, text = op
        if state[0] != (font, size):
            c.setFont(font, size)
            state[0] = (font, size)
        c.drawString(x, top - dy, text)
    elif kind == "rule":
        _, x1, x2, dy, lw, dashed = op
        c.setLineWidth(lw)
        c.setDash(1.2, 1.6) if dashed else c.setDash()
        c.line(x1, top - dy, x2, top - dy)
    elif kind == "box":
        _, x, dy, w, h, lw = op
        c.setLineWidth(lw)
        c.setDash()
        c.rect(x + lw / 2, top - dy - h + lw / 2, w - lw, h - lw, stroke=1, fill=0)
    elif kind == "qr":
        _, x, dy, module, rects = op
        # One filled path in module units: a transform maps (column, row) to the page, so the
        # rectangles are small integers, and one nonzero fill leaves no seams between them.
        c.saveState()
        c.transform(module, 0, 0, -module, x, top - dy)
        c.addLiteral("\n".join(f"{col} {row} {w} {h} re" for col, row, w, h in rects) + " f")
        c.restoreState()


def _footer(c: Canvas, doc: ReceiptDocument, style: _Style, page: int, pages: int) -> None:
    size = style.small
    y = style.margin_bottom
    x0, x1 = style.margin_x, style.page_w - style.margin_x
    c.setLineWidth(0.4)
    c.setDash()
    c.line(x0, y + size * 1.6, x1, y + size * 1.6)
    c.setFont(FONT_REGULAR, size)
    right = f"Trang {page}/{pages}"
    right_w = pdfmetrics.stringWidth(right, FONT_REGULAR, size)
    left = f"Số {doc.receipt_no} · In lúc: {_fmt_time(doc.printed_at)}"
    lines = _Measure().wrap(left, FONT_REGULAR, size, x1 - x0 - right_w - 4 * mm)
    c.drawString(x0, y, lines[0])  # the receipt number is also printed in full above
    c.drawRightString(x1, y, right)


def render_receipt_pdf(doc: ReceiptDocument, size: str) -> bytes:
    """Render `doc` as a PDF for `size` ("80mm" thermal roll or "a5"); same input, same bytes."""
    style = _style(size)
    register_fonts()
    blocks = _build_blocks(doc, style)
    content_top = style.margin_top
    if style.page_h is None:
        total = sum(blk.height for blk in blocks)
        page_h = style.margin_top + total + style.margin_bottom
        pages = _paginate(blocks, None, None)
    else:
        page_h = style.page_h
        available = page_h - style.margin_top - style.margin_bottom - style.footer_h
        pages = _paginate(blocks, available, _continuation_block(doc, style))

    # reportlab keeps module-level state while it writes a document (font subsets,
    # object numbering): two threads rendering at once could mix their bytes.
    with _render_lock:
        return _write_pdf(doc, style, page_h, content_top, pages)


_render_lock = threading.Lock()


def _write_pdf(
    doc: ReceiptDocument, style: _Style, page_h: float, content_top: float, pages: list
) -> bytes:
    """Draw the laid-out pages and return the PDF bytes."""
    c = Canvas(
        None,  # type: ignore[arg-type]  # getpdfdata() only, nothing written
        pagesize=(style.page_w, page_h),
        invariant=1,
        pageCompression=1,
        lang="vi-VN",
    )
    c.setTitle(_clean(doc.receipt_no))
    c.setAuthor(_PDF_AUTHOR)
    c.setSubject("Biên nhận chi trả trợ cấp xã hội")
    c.setCreator(_PDF_AUTHOR)
    for number, placed in enumerate(pages, start=1):
        state: list = [None]
        c.setFillGray(0)
        c.setStrokeGray(0)
        for y, blk in placed:
            top = page_h - content_top - y
            for op in blk.ops:
                _draw_op(c, op, top, state)
        if style.footer_h:
            _footer(c, doc, style, number, len(pages))
        c.showPage()
    return c.getpdfdata()
