"""Users, sign-in with lockout, revocable login sessions and API tokens."""

from __future__ import annotations

import hashlib
import logging
import re
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session, joinedload, lazyload

from terminal.db import new_session, write_transaction
from terminal.models import (
    ApiToken,
    AuditAction,
    LoginAttempt,
    LoginSession,
    PayoutPoint,
    Role,
    User,
    utcnow,
)
from terminal.policy import STAFF
from terminal.security import (
    digest,
    hash_password,
    is_common_password,
    new_secret,
    normalize_password,
    verify_password,
)
from terminal.services.audit import record_event
from terminal.services.errors import InvalidInput, NotFound, Throttled, Unauthorized
from terminal.text import clean_name

log = logging.getLogger("terminal.security")

LOCKOUT_FAILURES = 5
LOCKOUT_WINDOW = timedelta(minutes=15)
USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{2,31}$")
PASSWORD_MIN, PASSWORD_MAX = 10, 128
# Counter, agent, delivery and supervisor staff act for one payout point.
# Roles that work at a payout point: the policy's staff.
POINT_ROLES = STAFF


def normalize_username(username: str) -> str:
    """Return the stored form of a username: trimmed and lower-case."""
    return (username or "").strip().lower()


def check_password_rules(password: str, *, username: str | None) -> None:
    """Refuse a password too short or long, common or breached, or holding the username.

    These are NIST SP 800-63B's rules: length, a blocklist and the context, and no
    composition tricks. The password is judged as it will be hashed (NFKC).
    """
    if not isinstance(password, str):
        raise InvalidInput("password must be text", code="password_invalid")
    normalized = normalize_password(password)
    if not PASSWORD_MIN <= len(normalized) <= PASSWORD_MAX:
        raise InvalidInput(
            f"password must be {PASSWORD_MIN} to {PASSWORD_MAX} characters",
            code="password_invalid",
        )
    if username and normalize_username(username) in normalized.casefold():
        raise InvalidInput(
            "password must not contain the username", code="password_contains_username"
        )
    if is_common_password(normalized):
        raise InvalidInput(
            "password is on the list of common, breached passwords", code="password_common"
        )


def _role(value: str | Role) -> Role:
    """Return the Role for a value or refuse it."""
    try:
        return Role(value)
    except ValueError:
        names = ", ".join(r.value for r in Role)
        raise InvalidInput(f"role must be one of {names}", code="role_invalid") from None


def _point_for(session: Session, role: Role, point_code: str | None) -> PayoutPoint | None:
    """Return the payout point a user of this role belongs to, checking the rule."""
    code = (point_code or "").strip().upper()
    if role in POINT_ROLES:
        if not code:
            raise InvalidInput(f"a {role.value} needs a payout point", code="point_required")
        point = session.scalar(select(PayoutPoint).where(PayoutPoint.code == code))
        if point is None:
            raise NotFound(f"no payout point {code}", code="point_not_found")
        return point
    if code:
        raise InvalidInput(
            f"a {role.value} does not belong to a payout point", code="point_not_allowed"
        )
    return None


def create_user(
    session: Session,
    *,
    username: str,
    role: str | Role,
    password: str,
    full_name: str | None = None,
    point_code: str | None = None,
    actor: str = "system",
    demo_account: bool = False,
) -> User:
    """Create a user and commit it with its audit event.

    A demo account (``seed-demo`` only) keeps its documented password, which holds
    its username (``clerk-demo-2021``); the audit event says it is one.
    """
    name = normalize_username(username)
    if not USERNAME_RE.match(name):
        raise InvalidInput(
            "username must be 3-32 characters: letters, digits, dot, dash, underscore",
            code="username_invalid",
        )
    role_ = _role(role)
    check_password_rules(password, username=None if demo_account else name)
    try:
        display = clean_name(full_name) if full_name else name
    except ValueError as exc:
        raise InvalidInput(str(exc), code="full_name_invalid") from None
    with write_transaction(session):
        if session.scalar(select(User.id).where(User.username == name)) is not None:
            raise InvalidInput(f"user {name} already exists", code="username_taken")
        point = _point_for(session, role_, point_code)
        user = User(
            username=name,
            full_name=display,
            role=role_,
            payout_point=point,
            password_hash=hash_password(password),
            active=True,
        )
        session.add(user)
        session.flush()
        record_event(
            session,
            actor=actor,
            action=AuditAction.USER_CREATED,
            object_type="user",
            object_id=user.id,
            data={
                "username": name,
                "role": role_.value,
                "point": point.code if point else None,
                **({"demo_account": True} if demo_account else {}),
            },
        )
    return user


def update_user(
    session: Session,
    user_id: int,
    *,
    actor: str,
    full_name: str | None = None,
    role: str | Role | None = None,
    point_code: str | None = None,
    active: bool | None = None,
    password: str | None = None,
) -> User:
    """Change a user's details; disabling or a new password ends their logins at once."""
    with write_transaction(session):
        user = session.get(User, user_id)
        if user is None:
            raise NotFound("no such user")
        if password is not None:
            check_password_rules(password, username=user.username)
        changes: dict[str, object] = {}
        if full_name is not None:
            try:
                cleaned = clean_name(full_name)
            except ValueError as exc:
                raise InvalidInput(str(exc), code="full_name_invalid") from None
            if cleaned != user.full_name:
                user.full_name = cleaned
                changes["full_name"] = True
        new_role = _role(role) if role is not None else user.role
        if point_code is None and new_role in POINT_ROLES and user.payout_point is not None:
            point_code = user.payout_point.code
        point = _point_for(session, new_role, point_code)
        if new_role != user.role:
            changes["role"] = [user.role.value, new_role.value]
            user.role = new_role
        if (point.id if point else None) != user.payout_point_id:
            changes["point"] = point.code if point else None
            user.payout_point = point
        if active is not None and active != user.active:
            user.active = active
            changes["active"] = active
        if password is not None:
            user.password_hash = hash_password(password)
            changes["password"] = "reset"  # noqa: S105 (a label, not a password)
        if not changes:
            return user
        user.updated_at = utcnow()
        if "active" in changes or "password" in changes:
            _end_all(session, user.id, reason="account_changed")
        record_event(
            session,
            actor=actor,
            action=AuditAction.USER_UPDATED,
            object_type="user",
            object_id=user.id,
            data=changes,
        )
    return user


def _end_all(session: Session, user_id: int, *, reason: str) -> None:
    """End every login session and revoke every API token of a user."""
    now = utcnow()
    session.execute(
        update(LoginSession)
        .where(LoginSession.user_id == user_id, LoginSession.ended_at.is_(None))
        .values(ended_at=now, end_reason=reason)
    )
    session.execute(
        update(ApiToken)
        .where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )


# Sign-ins reserved but not yet checked count as failures until their check ends, so
# parallel guesses never get more than LOCKOUT_FAILURES password checks between them.
_COUNTED = ("bad", "pending")
# Wrong sign-ins from one address (any usernames: password spraying) before the
# address is refused for the rest of the window; counted in the database, so every
# worker and terminal counts together. The address is the peer's, never a header.
ADDRESS_FAILURES = 50


def _recent_failures(session: Session, username: str, now: datetime) -> list[datetime]:
    """Return the times of wrong-password attempts within the lockout window."""
    return list(
        session.scalars(
            select(LoginAttempt.at)
            .where(
                LoginAttempt.username == username,
                LoginAttempt.outcome.in_(_COUNTED),
                LoginAttempt.at > now - LOCKOUT_WINDOW,
            )
            .order_by(LoginAttempt.at)
        )
    )


def _recent_address_failures(session: Session, ip: str | None, now: datetime) -> list[datetime]:
    """Return the times of the latest ADDRESS_FAILURES wrong attempts from an address."""
    if not ip:
        return []
    return list(
        session.scalars(
            select(LoginAttempt.at)
            .where(
                LoginAttempt.ip == ip,
                LoginAttempt.outcome.in_(_COUNTED),
                LoginAttempt.at > now - LOCKOUT_WINDOW,
            )
            .order_by(LoginAttempt.at.desc())
            .limit(ADDRESS_FAILURES)
        )
    )


def _lock_username(session: Session, username: str, ip: str | None) -> None:
    """Make sign-ins of one username, and of one address, wait for each other.

    Otherwise parallel guesses on PostgreSQL all count the same earlier failures and
    all get a password check past the limit. Advisory locks on the name (serving
    unknown usernames too), then on the address, held until the transaction ends:
    always in this order, so two sign-ins never wait for each other in a circle.
    SQLite needs none: the write lock, taken up front, lets one writer in at a time.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    for scope in (b"login:" + username.encode(), b"login-ip:" + (ip or "").encode()):
        key = int.from_bytes(hashlib.sha256(scope).digest()[:8], "big", signed=True)
        session.execute(select(func.pg_advisory_xact_lock(key)))


@dataclass(frozen=True)
class _Lock:
    """Why a sign-in is refused unchecked: the account's or the address's failures."""

    scope: str
    failures: int
    retry_after: int


def _refusal(session: Session, name: str, ip: str | None, now: datetime) -> _Lock | None:
    """Return the lock on the account or the address, or None to go on."""
    failures = _recent_failures(session, name, now)
    if len(failures) >= LOCKOUT_FAILURES:
        retry_after = int((failures[-LOCKOUT_FAILURES] + LOCKOUT_WINDOW - now).total_seconds()) + 1
        scope, count = "account", len(failures)
    else:
        recent = _recent_address_failures(session, ip, now)
        if len(recent) < ADDRESS_FAILURES:
            return None
        retry_after = int((recent[-1] + LOCKOUT_WINDOW - now).total_seconds()) + 1
        scope, count = "address", len(recent)
    return _Lock(scope, count, max(retry_after, 1))


def authenticate(
    session: Session, *, username: str, password: str, channel: str, ip: str | None
) -> User:
    """Check a username and password, counting failures per account in the database.

    After LOCKOUT_FAILURES wrong attempts within LOCKOUT_WINDOW the account answers
    Throttled even to the right password, and so does every sign-in from an address
    after ADDRESS_FAILURES wrong ones. An unknown user and a wrong password give the
    same answer and cost the same time.

    The slow password check runs between two short write transactions, never inside
    one (on SQLite the write lock is the whole database's): the first reserves the
    attempt ("pending", counted as a failure meanwhile), the second records its outcome.
    """
    name = normalize_username(username)[:64]
    now = utcnow()
    with write_transaction(session):
        _lock_username(session, name, ip)
        refused = _refusal(session, name, ip, now)
        if refused is not None:
            log.warning(
                "login refused, %s locked: user=%s channel=%s ip=%s",
                refused.scope,
                name,
                channel,
                ip,
            )
            session.add(
                LoginAttempt(username=name, at=now, outcome="locked", channel=channel, ip=ip)
            )
            record_event(
                session,
                actor=name or "-",
                action=AuditAction.AUTH_LOCKED_OUT,
                object_type="user",
                object_id=name or "-",
                data={
                    "channel": channel,
                    "ip": ip,
                    "failures": refused.failures,
                    **({"scope": "address"} if refused.scope == "address" else {}),
                },
            )
        else:
            attempt = LoginAttempt(username=name, at=now, outcome="pending", channel=channel, ip=ip)
            session.add(attempt)
            user = session.scalar(select(User).where(User.username == name))
            password_hash = user.password_hash if user else None
    if refused is not None:
        raise Throttled("too many failed attempts", retry_after=refused.retry_after)
    ok = verify_password(password_hash, password or "")
    with write_transaction(session):
        if user is not None:
            session.refresh(user)  # disabled meanwhile: refused
        ok = ok and user is not None and user.active
        session.execute(
            update(LoginAttempt)
            .where(LoginAttempt.id == attempt.id)
            .values(outcome="ok" if ok else "bad")
        )
        if ok:
            assert user is not None
            user.last_login_at = now
            log.info("login ok: user=%s channel=%s ip=%s", name, channel, ip)
        else:
            log.warning("login failed: user=%s channel=%s ip=%s", name, channel, ip)
            # Failed sign-ins are security events (S23): in the chain, not only the log.
            record_event(
                session,
                actor=name or "-",
                action=AuditAction.AUTH_LOGIN_FAILED,
                object_type="user",
                object_id=name or "-",
                data={"channel": channel, "ip": ip, "known_user": user is not None},
            )
    if not ok:
        raise Unauthorized("wrong username or password", code="invalid_credentials")
    assert user is not None
    return user


@dataclass(frozen=True)
class IssuedToken:
    """A new API token, shown to the client once."""

    token: str
    expires_at: datetime
    user: User


def start_login_session(session: Session, user: User, *, ip: str | None) -> str:
    """Record a new browser login and return the secret session id for the cookie."""
    sid = new_secret()
    now = utcnow()
    with write_transaction(session):
        session.add(LoginSession(sid_hash=digest(sid), user_id=user.id, last_seen_at=now, ip=ip))
        record_event(
            session,
            actor=user.username,
            action=AuditAction.AUTH_LOGIN,
            object_type="user",
            object_id=user.id,
            data={"channel": "page"},
        )
    return sid


# Why a login session ends, and the audit action that records it.
_END_ACTIONS = {
    "logout": AuditAction.AUTH_LOGOUT,
    "idle_timeout": AuditAction.AUTH_IDLE_TIMEOUT,
    "session_expired": AuditAction.AUTH_SESSION_EXPIRED,
    "account_disabled": AuditAction.AUTH_ACCOUNT_DISABLED,
}


def end_login_session(session: Session, sid: str | None, *, reason: str = "logout") -> None:
    """End a browser login so its cookie is worthless from now on."""
    if not sid:
        return
    with write_transaction(session):
        row = session.scalar(select(LoginSession).where(LoginSession.sid_hash == digest(sid)))
        if row is None or row.ended_at is not None:
            return
        row.ended_at = utcnow()
        row.end_reason = reason
        user = session.get(User, row.user_id)
        record_event(
            session,
            actor=user.username if user else "system",
            action=_END_ACTIONS[reason],
            object_type="user",
            object_id=row.user_id,
            data={},
        )


def load_session_user(
    session: Session, sid: str | None, *, idle: timedelta, max_age: timedelta
) -> tuple[User | None, str | None]:
    """Return the user of a live login session, or None and why it is not live.

    The idle clock is refreshed at most once a minute, in its own short write, so
    reading pages does not queue on the database's write lock.
    """
    if not sid:
        return None, None
    row = session.scalar(select(LoginSession).where(LoginSession.sid_hash == digest(sid)))
    if row is None or row.ended_at is not None:
        return None, "ended"
    now = utcnow()
    expired = None
    if now - row.last_seen_at > idle:
        expired = "idle_timeout"
    elif now - row.created_at > max_age:
        expired = "session_expired"
    user = session.get(User, row.user_id)
    if expired is None and (user is None or not user.active):
        expired = "account_disabled"
    if expired is not None:
        with closing(new_session()) as other:
            end_login_session(other, sid, reason=expired)
        return None, expired
    if now - row.last_seen_at > timedelta(seconds=60):
        with closing(new_session()) as touch, write_transaction(touch):
            touch.execute(
                update(LoginSession).where(LoginSession.id == row.id).values(last_seen_at=now)
            )
    return user, None


def issue_token(
    session: Session, *, username: str, password: str, ip: str | None, hours: int
) -> IssuedToken:
    """Sign in through the API and return a new bearer token."""
    user = authenticate(session, username=username, password=password, channel="api", ip=ip)
    token = new_secret()
    expires = utcnow() + timedelta(hours=hours)
    with write_transaction(session):
        row = ApiToken(token_hash=digest(token), user_id=user.id, expires_at=expires)
        session.add(row)
        session.flush()
        record_event(
            session,
            actor=user.username,
            action=AuditAction.AUTH_TOKEN_ISSUED,
            object_type="api_token",
            object_id=row.id,
            data={"expires_at": expires.isoformat()},
        )
    return IssuedToken(token=token, expires_at=expires, user=user)


# Run on every API call, so built once. It loads the user but not their point and its
# communes, which the few calls that need them load then (most need only the point's id).
_TOKEN_LOOKUP = (
    select(ApiToken)
    .where(ApiToken.token_hash == bindparam("token_hash"))
    # The user and their point in one statement (paying needs the point); the point's
    # district and communes only when a request reads them.
    .options(
        joinedload(ApiToken.user)
        .joinedload(User.payout_point)
        .options(lazyload(PayoutPoint.communes), lazyload(PayoutPoint.district))
    )
)


def user_for_token(session: Session, token: str) -> tuple[User, ApiToken] | None:
    """Return the user and token row of a live bearer token, or None."""
    if not token or len(token) > 200:
        return None
    row = session.scalar(_TOKEN_LOOKUP, {"token_hash": digest(token)})
    if row is None or row.revoked_at is not None or row.expires_at <= utcnow():
        return None
    if not row.user.active:
        return None
    return row.user, row


def revoke_token(session: Session, token_id: int, *, actor: str) -> None:
    """Revoke an API token."""
    with write_transaction(session):
        row = session.get(ApiToken, token_id)
        if row is None or row.revoked_at is not None:
            return
        row.revoked_at = utcnow()
        record_event(
            session,
            actor=actor,
            action=AuditAction.AUTH_TOKEN_REVOKED,
            object_type="api_token",
            object_id=row.id,
            data={},
        )


def count_users(session: Session) -> int:
    """Return how many users exist."""
    return session.scalar(select(func.count(User.id))) or 0
