"""Who may do what, and over which objects: the one policy of the terminal.

Flask-free, so the route guard (``terminal.authz``) and the services decide with
the same table. Roles and their permissions follow DESIGN.md "Who uses it"; scope
follows "Staff act only for their own payout point and the communes it serves":
auditors and admins read everywhere, everyone else only their point's objects,
and an object outside someone's scope looks exactly like one that does not exist.
"""

from __future__ import annotations

import enum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from terminal.models import Role, User, point_communes
from terminal.services.errors import Forbidden


class Permission(enum.StrEnum):
    """What a role may be allowed to do."""

    SIGNED_IN = "signed_in"
    # search, verify identity, pay, print receipts, log failures
    COUNTER = "counter"
    # look a beneficiary up (read only)
    LOOKUP = "lookup"
    # the payout log: staff see their point's, auditors everything
    PAYOUT_LOG = "payout_log"
    # the follow-up queue, read: staff see their point's failures, auditors all
    FOLLOW_UP = "follow_up"
    # reversals, failure follow-up, cash float, daily settlement, channel overrides
    SUPERVISE = "supervise"
    # read payouts, failures, audit trail, reports
    AUDIT = "audit"
    # whole-log exports of personal data (DESIGN rule 8: auditors only)
    EXPORT = "export"
    # the whole audit trail, every point's (auditors only)
    AUDIT_TRAIL = "audit_trail"
    # payment verification by sampling: draw samples, record what people say (auditors)
    SAMPLE = "sample"
    # pay a route's people at home from a registered tablet (its device token)
    DELIVER = "deliver"
    # users, payout points, roster imports, payment periods
    ADMIN = "admin"


STAFF = frozenset({Role.CLERK, Role.AGENT, Role.DELIVERY, Role.SUPERVISOR})
# Roles that read across every point; everyone else is held to their own point.
EVERYWHERE = frozenset({Role.AUDITOR, Role.ADMIN})

# The policy table of DESIGN.md ("Who uses it").
POLICY: dict[Permission, frozenset[Role]] = {
    Permission.SIGNED_IN: frozenset(Role),
    Permission.COUNTER: STAFF,
    Permission.LOOKUP: STAFF | {Role.AUDITOR},
    Permission.PAYOUT_LOG: STAFF | {Role.AUDITOR},
    Permission.FOLLOW_UP: STAFF | {Role.AUDITOR},
    Permission.SUPERVISE: frozenset({Role.SUPERVISOR}),
    Permission.AUDIT: frozenset({Role.AUDITOR, Role.SUPERVISOR}),
    Permission.EXPORT: frozenset({Role.AUDITOR}),
    Permission.AUDIT_TRAIL: frozenset({Role.AUDITOR}),
    Permission.SAMPLE: frozenset({Role.AUDITOR}),
    Permission.DELIVER: frozenset({Role.DELIVERY}),
    Permission.ADMIN: frozenset({Role.ADMIN}),
}

# What a refusal says, per permission, when a service is asked by the wrong role.
_REFUSALS = {
    Permission.COUNTER: ("this role may not pay or verify", "forbidden"),
    Permission.SUPERVISE: ("only the point's supervisor may do this", "forbidden"),
    Permission.EXPORT: ("exports are for auditors", "export_forbidden"),
}


def may(user: Any, permission: str) -> bool:
    """Tell whether a user's role holds a permission."""
    return bool(user is not None and getattr(user, "role", None) in POLICY[Permission(permission)])


def require(user: Any, permission: str) -> None:
    """Refuse (Forbidden) a user whose role does not hold a permission."""
    if not may(user, permission):
        message, code = _REFUSALS.get(
            Permission(permission), ("your role may not do this", "forbidden")
        )
        raise Forbidden(message, code=code)


def sees_everywhere(user: User) -> bool:
    """Tell whether a user reads every point's objects (auditors, admins)."""
    return user.role in EVERYWHERE


def point_of(user: User) -> int | None:
    """Return the only point whose objects a user sees, or None for every point."""
    if sees_everywhere(user):
        return None
    # A staff user without a point sees nothing: -1 matches no point.
    return user.payout_point_id if user.payout_point_id is not None else -1


def sees_point(user: User, point_id: int | None) -> bool:
    """Tell whether an object of a point is within a user's scope."""
    scope = point_of(user)
    return scope is None or (point_id is not None and point_id == scope)


def commune_scope(session: Session, user: User) -> list[int] | None:
    """Return the communes a user acts in, or None for every commune."""
    scope = point_of(user)
    if scope is None:
        return None
    return list(
        session.scalars(
            select(point_communes.c.commune_id).where(point_communes.c.point_id == scope)
        )
    )
