"""The home-delivery tablet app (``/tablet/``): an offline-first shell, service worker, manifest.

The shell holds no personal data and is the same for everyone, so it is public and
cacheable: all data comes from the API with the device token (API.md "Home delivery").
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request

from terminal.authz import public
from terminal.paths import resource_dir

bp = Blueprint("tablet", __name__, url_prefix="/tablet")

PERMISSIONS = "camera=(self), geolocation=(self)"
VERSION_MARK = "__SHELL_VERSION__"
# The precache list in sw.js: one quoted URL a line between these two comments.
_SHELL_LIST = re.compile(r"// shell:begin\n(.*?)// shell:end", re.S)
_QUOTED = re.compile(r'"([^"]+)"')


def sw_source() -> Path:
    """Return the service worker's file."""
    return resource_dir("static") / "tablet" / "sw.js"


def shell_urls() -> list[str]:
    """Return the URLs the service worker precaches, read from sw.js itself."""
    found = _SHELL_LIST.search(sw_source().read_text(encoding="utf-8"))
    if found is None:
        raise RuntimeError("static/tablet/sw.js has no // shell:begin ... // shell:end list")
    return _QUOTED.findall(found.group(1))


def shell_files() -> list[Path]:
    """Return the files behind the precached URLs (the shell page is its template)."""
    files = []
    for url in shell_urls():
        if url.startswith("/static/"):
            files.append(resource_dir("static") / url.removeprefix("/static/"))
        elif url == "/tablet/":
            files.append(resource_dir("templates") / "tablet" / "app.html")
        elif url == "/tablet/manifest.webmanifest":
            files.append(resource_dir("static") / "tablet" / "manifest.webmanifest")
        else:
            raise RuntimeError(f"sw.js precaches {url}, which no file backs")
    return files


def shell_version() -> str:
    """Return a digest of every shell file: a change to any of them installs a new cache."""
    stamps = tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in shell_files())
    stamps += ((str(sw_source()), sw_source().stat().st_mtime_ns, 0),)
    return _digest(stamps)


@lru_cache(maxsize=8)
def _digest(stamps: tuple[tuple[str, int, int], ...]) -> str:
    """Hash the shell files' contents (recomputed only when a file changes)."""
    digest = hashlib.sha256()
    for name, _mtime, _size in stamps:
        digest.update(Path(name).read_bytes())
    return digest.hexdigest()[:16]


@bp.after_request
def allow_camera_and_position(response: Response) -> Response:
    """Let the app use the camera (CCCD QR) and the position; the app-wide default forbids both."""
    response.headers["Permissions-Policy"] = PERMISSIONS
    return response


@bp.after_app_request
def cache_rules(response: Response) -> Response:
    """Tell caches how to keep the shell's files.

    Registered with the blueprint, before the app's own security headers hook, so it
    runs after it (Flask runs after-request hooks in reverse order) and may replace
    that hook's ``no-store``: the shell carries no personal data.
    """
    if request.blueprint == bp.name and response.status_code == 200:
        response.headers["Cache-Control"] = "no-cache"
        response.headers.pop("Pragma", None)
    return response


@bp.route("/")
@public
def app() -> Any:
    """Render the tablet app's shell page."""
    return render_template("tablet/app.html")


@bp.route("/sw.js")
@public
def service_worker() -> Any:
    """Serve the service worker under /tablet/ (its scope), stamped with the shell's version."""
    source = sw_source().read_text(encoding="utf-8").replace(VERSION_MARK, shell_version())
    response = current_app.response_class(source, mimetype="application/javascript")
    response.headers["Service-Worker-Allowed"] = "/tablet/"
    return response


@bp.route("/manifest.webmanifest")
@public
def manifest() -> Any:
    """Serve the web app manifest (install to the home screen)."""
    path = resource_dir("static") / "tablet" / "manifest.webmanifest"
    return current_app.response_class(path.read_bytes(), mimetype="application/manifest+json")
