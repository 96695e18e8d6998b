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
# Where the counts live comes from TERMINAL_RATELIMIT_STORAGE_URL (config.py): a shared
# Redis, so all workers and terminals count together, or each worker's memory.
limiter = Limiter(get_remote_address, headers_enabled=True)
