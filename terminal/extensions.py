"""Flask extensions, created unbound and attached to the app in create_app."""

from __future__ import annotations

from flask_babel import Babel
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect

login_manager = LoginManager()
csrf = CSRFProtect()
babel = Babel()
# Counted per worker process (memory storage): with N workers the effective limit is
# at most N times the figure; enough to stop a crawl of the public receipt check.
limiter = Limiter(get_remote_address, storage_uri="memory://", headers_enabled=True)
