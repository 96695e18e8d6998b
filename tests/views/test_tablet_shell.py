"""The tablet app's shell (``/tablet/``), service worker and manifest: public, no personal data."""

from __future__ import annotations

import io
import json
import re

from PIL import Image

from terminal.paths import resource_dir
from terminal.views import tablet
from tests.conftest import login

STATIC = resource_dir("static")


def test_the_shell_is_public_and_the_same_for_everyone(app, world):
    anonymous = app.test_client().get("/tablet/")
    assert anonymous.status_code == 200
    assert anonymous.mimetype == "text/html"
    assert "Set-Cookie" not in anonymous.headers
    signed_in = app.test_client()
    login(signed_in, world.users["delivery"].username)
    again = signed_in.get("/tablet/")
    assert again.status_code == 200
    # Cached by the service worker for whoever uses the tablet next: nothing of anyone in it.
    assert again.get_data() == anonymous.get_data()
    html = anonymous.get_data(as_text=True)
    assert "csrf" not in html.lower()
    for user in world.users.values():
        assert user.full_name not in html
        assert user.username not in re.sub(r'data-testid="[^"]*"', "", html)


def test_the_shell_may_use_the_camera_and_the_position(app):
    client = app.test_client()
    for url in ("/tablet/", "/tablet/sw.js", "/tablet/manifest.webmanifest"):
        response = client.get(url)
        assert response.status_code == 200, url
        assert response.headers["Permissions-Policy"] == "camera=(self), geolocation=(self)"
        assert response.headers["Cache-Control"] == "no-cache", url
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    # Elsewhere the app-wide default still forbids both.
    assert client.get("/login").headers["Permissions-Policy"] == (
        "camera=(), microphone=(), geolocation=()"
    )


def test_the_shell_loads_only_its_own_files_and_no_inline_script(app):
    html = app.test_client().get("/tablet/").get_data(as_text=True)
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources, html
    for source in sources:
        assert source.startswith(("/static/tablet/", "/tablet/")), source
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline script"
    assert not re.search(r"\son[a-z]+=", html), "inline event handler"
    assert "style=" not in html


def test_the_service_worker_is_served_under_its_scope_with_its_version(app):
    response = app.test_client().get("/tablet/sw.js")
    assert response.status_code == 200
    assert response.mimetype == "application/javascript"
    assert response.headers["Service-Worker-Allowed"] == "/tablet/"
    source = response.get_data(as_text=True)
    assert tablet.VERSION_MARK not in source
    assert f'const VERSION = "{tablet.shell_version()}";' in source
    # The API is never cached: the worker steps aside for /api/.
    assert 'url.pathname.startsWith("/api/")) return;' in source


def test_every_precached_file_exists_and_is_served(app):
    client = app.test_client()
    urls = tablet.shell_urls()
    assert "/tablet/" in urls and "/static/tablet/app.js" in urls
    assert not any(url.startswith("/api/") for url in urls)
    for url, path in zip(urls, tablet.shell_files(), strict=True):
        assert path.is_file(), path
        response = client.get(url)
        assert response.status_code == 200, url
        response.close()
    # Every module the app imports is precached, or the app breaks offline.
    for module in (STATIC / "tablet").glob("*.js"):
        if module.name == "sw.js":
            continue
        assert f"/static/tablet/{module.name}" in urls, module.name
        for imported in re.findall(r'from "\./([^"]+)"', module.read_text(encoding="utf-8")):
            assert f"/static/tablet/{imported}" in urls, (module.name, imported)


def test_the_manifest_installs_the_app_on_its_scope(app):
    response = app.test_client().get("/tablet/manifest.webmanifest")
    assert response.status_code == 200
    assert response.mimetype == "application/manifest+json"
    manifest = json.loads(response.get_data())
    assert manifest["start_url"] == "/tablet/"
    assert manifest["scope"] == "/tablet/"
    assert manifest["lang"] == "vi"
    for icon in manifest["icons"]:
        image = Image.open(io.BytesIO(app.test_client().get(icon["src"]).get_data()))
        size = int(icon["sizes"].split("x")[0])
        assert image.size == (size, size)
        assert image.format == "PNG"


def test_the_vendored_libraries_carry_their_licences():
    vendor = STATIC / "tablet" / "vendor"
    assert "Apache License" in (vendor / "jsQR.LICENSE").read_text(encoding="utf-8")
    assert "MIT License" in (vendor / "qrcode.LICENSE").read_text(encoding="utf-8")
    assert "Kazuhiko Arase" in (vendor / "qrcode.js").read_text(encoding="utf-8")[:600]


def _words(language: str) -> dict[str, str]:
    """Read one language's table out of i18n.js (flat "key": "text" lines)."""
    source = (STATIC / "tablet" / "i18n.js").read_text(encoding="utf-8")
    block = re.search(rf"const {language} = \{{\n(.*?)\n\}};", source, re.S)
    assert block, language
    pairs = re.findall(r'^\s+"?([\w.-]+)"?: "((?:[^"\\]|\\.)*)",$', block.group(1), re.M)
    return dict(pairs)


def test_the_app_speaks_vietnamese_and_english_alike():
    vi, en = _words("vi"), _words("en")
    assert len(vi) > 100
    assert vi.keys() == en.keys()
    for key, text in vi.items():
        assert re.findall(r"\{(\w+)\}", text) == re.findall(r"\{(\w+)\}", en[key]), key
    # Every key the app asks for exists.
    used = set()
    for module in (STATIC / "tablet").glob("*.js"):
        used |= set(re.findall(r'\bt\("([\w.-]+)"', module.read_text(encoding="utf-8")))
    assert used - vi.keys() == set()
    assert vi["state.conflict"] == "Có thể đã trả hai lần — tổ trưởng sẽ xử lý"
    assert vi["device.revoked"] == "Thiết bị chưa được ghép hoặc đã bị thu hồi"
    assert vi["receipt.tempNote"] == "Phiếu tạm — số biên lai sẽ có khi đồng bộ"
