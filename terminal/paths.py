"""Where the templates, static files and fonts are, in a checkout or once installed."""

from __future__ import annotations

from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def resource_dir(name: str) -> Path:
    """Return the folder 'templates' or 'static': inside the package when installed,
    at the top of the repository in a checkout."""
    inside = PACKAGE / name
    if inside.is_dir():
        return inside
    return PACKAGE.parent / name
