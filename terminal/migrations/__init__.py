"""Alembic migrations; run them with ``payout-terminal init-db``."""
