"""Lockout under parallel guessing: 12 wrong passwords at once get 5 checks, not more (S16)."""

from __future__ import annotations

import threading
import time
from contextlib import closing

import pytest
from sqlalchemy import func, select

from terminal.db import new_session
from terminal.models import LoginAttempt
from terminal.security import verify_password as real_verify_password
from terminal.services import auth
from terminal.services.errors import Throttled, Unauthorized

GUESSES = 12


@pytest.mark.parametrize("username", ["clerk1", "nobody-here"])
def test_parallel_wrong_passwords_get_five_checks(app, world, monkeypatch, username):
    checks = 0
    lock = threading.Lock()

    def counting_verify(password_hash, password):
        """Count each password check; as slow as a real argon2 check, to widen the race."""
        nonlocal checks
        with lock:
            checks += 1
        time.sleep(0.05)
        return real_verify_password(password_hash, password)

    monkeypatch.setattr(auth, "verify_password", counting_verify)
    barrier = threading.Barrier(GUESSES)
    outcomes: list[str] = []

    def guess(number: int) -> None:
        with closing(new_session(app)) as session:
            barrier.wait()
            try:
                auth.authenticate(
                    session,
                    username=username,
                    password=f"wrong-guess-{number}",
                    channel="api",
                    ip="203.0.113.9",
                )
            except Unauthorized:
                outcome = "bad"
            except Throttled:
                outcome = "locked"
            else:
                outcome = "ok"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=guess, args=(n,)) for n in range(GUESSES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(outcomes) == ["bad"] * 5 + ["locked"] * 7
    assert checks == 5
    with closing(new_session(app)) as session:
        recorded = dict(
            session.execute(
                select(LoginAttempt.outcome, func.count())
                .where(LoginAttempt.username == username)
                .group_by(LoginAttempt.outcome)
            ).all()
        )
    assert recorded == {"bad": 5, "locked": 7}
