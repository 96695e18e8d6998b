"""Districts, communes and payout points."""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from terminal.db import write_transaction
from terminal.models import (
    Area,
    AreaLevel,
    AuditAction,
    PayoutPoint,
    PointKind,
    ProviderAdapterKind,
    ReceiptFormat,
    utcnow,
)
from terminal.providers import check_provider_url
from terminal.services.audit import record_event
from terminal.services.errors import InvalidInput, NotFound
from terminal.text import clean_text, fold

POINT_CODE_RE = re.compile(r"^[A-Z0-9]{2,12}$")


def _area_name(value: str, what: str) -> str:
    """Return a cleaned area name or refuse an empty or overlong one."""
    try:
        name = clean_text(value, max_len=120)
    except ValueError:
        raise InvalidInput(f"{what} name is too long", code=f"{what}_invalid") from None
    if not name or not fold(name):
        raise InvalidInput(f"{what} name is empty", code=f"{what}_invalid")
    return name


def find_district(session: Session, name: str) -> Area | None:
    """Return the district with this name (accents and case ignored), if any."""
    return session.scalar(
        select(Area).where(
            Area.level == AreaLevel.DISTRICT, Area.parent_id.is_(None), Area.name_key == fold(name)
        )
    )


def get_or_create_district(session: Session, name: str) -> Area:
    """Return the district with this name, creating it in the caller's transaction."""
    clean = _area_name(name, "district")
    district = find_district(session, clean)
    if district is None:
        district = Area(level=AreaLevel.DISTRICT, name=clean, name_key=fold(clean))
        session.add(district)
        session.flush()
    return district


def find_commune(session: Session, district: Area, name: str) -> Area | None:
    """Return the commune of a district with this name (accents and case ignored)."""
    return session.scalar(
        select(Area).where(
            Area.level == AreaLevel.COMMUNE,
            Area.parent_id == district.id,
            Area.name_key == fold(name),
        )
    )


def get_or_create_commune(session: Session, district: Area, name: str) -> Area:
    """Return the commune of a district, creating it in the caller's transaction."""
    clean = _area_name(name, "commune")
    commune = find_commune(session, district, clean)
    if commune is None:
        commune = Area(level=AreaLevel.COMMUNE, name=clean, name_key=fold(clean), parent=district)
        session.add(commune)
        session.flush()
    return commune


def normalize_point_code(code: str) -> str:
    """Return a point code upper-cased, or refuse one that is not 2-12 letters/digits."""
    value = (code or "").strip().upper()
    if not POINT_CODE_RE.match(value):
        raise InvalidInput(
            "point code must be 2-12 letters or digits (e.g. HTBD)", code="point_code_invalid"
        )
    return value


def save_point(
    session: Session,
    *,
    code: str,
    name: str,
    kind: str | PointKind,
    district: str,
    communes: Iterable[str],
    receipt_format: str | ReceiptFormat | None = None,
    active: bool | None = None,
    adapter: str | None = None,
    provider_url: str | None = None,
    create_only: bool = False,
    actor: str,
) -> tuple[PayoutPoint, bool]:
    """Create or update a payout point serving the named communes; True if created."""
    point_code = normalize_point_code(code)
    try:
        point_name = clean_text(name, max_len=200)
    except ValueError:
        raise InvalidInput("point name is too long", code="point_name_invalid") from None
    if not point_name:
        raise InvalidInput("point name is empty", code="point_name_invalid")
    try:
        point_kind = PointKind(kind)
    except ValueError:
        raise InvalidInput(
            "kind must be post_office, agent or delivery", code="point_kind_invalid"
        ) from None
    fmt = None
    if receipt_format is not None:
        try:
            fmt = ReceiptFormat(receipt_format)
        except ValueError:
            raise InvalidInput(
                "receipt format must be 80mm or a5", code="receipt_format_invalid"
            ) from None
    adapter_kind, url = _checked_adapter(adapter, provider_url)
    commune_names = [c for c in (clean_text(c) for c in communes) if c]
    if not commune_names:
        raise InvalidInput("a payout point serves at least one commune", code="communes_required")
    if len(commune_names) > 200:
        raise InvalidInput("too many communes", code="communes_invalid")
    with write_transaction(session):
        area = get_or_create_district(session, district)
        served = []
        for commune_name in commune_names:
            commune = get_or_create_commune(session, area, commune_name)
            if commune not in served:
                served.append(commune)
        point = session.scalar(select(PayoutPoint).where(PayoutPoint.code == point_code))
        created = point is None
        if create_only and not created:
            raise InvalidInput(f"point {point_code} already exists", code="point_code_taken")
        if point is None:
            point = PayoutPoint(code=point_code, kind=point_kind)
            session.add(point)
        point.name = point_name
        point.kind = point_kind
        point.district = area
        point.communes = served
        if fmt is not None:
            point.receipt_format = fmt
        elif created:
            point.receipt_format = ReceiptFormat.ROLL_80MM
        if active is not None:
            point.active = active
        if adapter_kind is not None:
            point.adapter = adapter_kind
            point.provider_url = url
        elif created:
            point.adapter = ProviderAdapterKind.MANUAL
        if point.adapter is ProviderAdapterKind.HTTP and not point.provider_url:
            raise InvalidInput("an http point needs --provider-url", code="provider_url_invalid")
        if not created:
            point.updated_at = utcnow()
        session.flush()
        record_event(
            session,
            actor=actor,
            action=AuditAction.POINT_CREATED if created else AuditAction.POINT_UPDATED,
            object_type="payout_point",
            object_id=point.id,
            data={
                "code": point_code,
                "name": point_name,
                "kind": point_kind.value,
                "district": area.name,
                "communes": [c.name for c in served],
                "receipt_format": point.receipt_format.value,
                "active": point.active,
                "adapter": point.adapter.value,
                "provider_url": point.provider_url,
            },
        )
    return point, created


def set_adapter(
    session: Session, code: str, *, adapter: str, provider_url: str | None, actor: str
) -> PayoutPoint:
    """Connect a point to its provider (``http``) or back to ``manual``; audited."""
    kind, url = _checked_adapter(adapter, provider_url)
    if kind is None:
        raise InvalidInput("adapter must be manual or http", code="adapter_invalid")
    with write_transaction(session):
        point = get_point(session, code)
        point.adapter = kind
        point.provider_url = url
        point.updated_at = utcnow()
        record_event(
            session,
            actor=actor,
            action=AuditAction.POINT_UPDATED,
            object_type="payout_point",
            object_id=point.id,
            data={"code": point.code, "adapter": kind.value, "provider_url": url},
        )
    return point


def _checked_adapter(
    adapter: str | None, provider_url: str | None
) -> tuple[ProviderAdapterKind | None, str | None]:
    """Return a point's provider adapter and URL (None, None: leave them as they are)."""
    if adapter is None and not provider_url:
        return None, None
    try:
        kind = ProviderAdapterKind(adapter or "http")
    except ValueError:
        raise InvalidInput("adapter must be manual or http", code="adapter_invalid") from None
    if kind is ProviderAdapterKind.MANUAL:
        return kind, None
    url = check_provider_url(provider_url)
    if url is None:
        raise InvalidInput(
            "the provider URL must be an http:// or https:// address", code="provider_url_invalid"
        )
    return kind, url


def get_point(session: Session, code: str) -> PayoutPoint:
    """Return a payout point by code or raise NotFound."""
    point = session.scalar(select(PayoutPoint).where(PayoutPoint.code == (code or "").upper()))
    if point is None:
        raise NotFound(f"no payout point {code}", code="point_not_found")
    return point


def list_points(session: Session) -> list[PayoutPoint]:
    """Return every payout point, by code."""
    return list(session.scalars(select(PayoutPoint).order_by(PayoutPoint.code)))
