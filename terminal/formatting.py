"""Jinja filters: the one place pages format money, dates and masked personal data."""

from __future__ import annotations

from datetime import date, datetime

from flask import Flask

from terminal.clock import VIETNAM, parse_iso_date, to_local
from terminal.money import format_vnd, format_vnd_plain
from terminal.text import mask_id, mask_phone

__all__ = [
    "VIETNAM",
    "format_date",
    "format_datetime",
    "init_app",
    "parse_iso_date",
    "to_local",
]


def format_date(value: date | datetime | None) -> str:
    """Format a date as dd/mm/yyyy (a timestamp in Vietnam time)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        value = to_local(value)
    return value.strftime("%d/%m/%Y")


def format_datetime(value: datetime | None) -> str:
    """Format a timestamp as dd/mm/yyyy HH:MM in Vietnam time."""
    if value is None:
        return ""
    return to_local(value).strftime("%d/%m/%Y %H:%M")


def init_app(app: Flask) -> None:
    """Register the filters."""
    app.add_template_filter(lambda v: format_vnd(v) if v is not None else "", "vnd")
    app.add_template_filter(lambda n: format_vnd_plain(int(n or 0)), "number")
    app.add_template_filter(format_date, "date")
    app.add_template_filter(format_datetime, "datetime")
    app.add_template_filter(mask_id, "mask_id")
    app.add_template_filter(mask_phone, "mask_phone")
    app.add_template_filter(lambda d: _Dotted(d) if isinstance(d, dict) else d, "dotted")


class _Dotted(dict):  # type: ignore[type-arg]
    """A dict whose keys read as attributes in templates (stored JSON reports)."""

    def __getattr__(self, name: str) -> object:
        return self.get(name)
