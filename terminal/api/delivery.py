"""``/api/v1/devices``, ``/routes`` and ``/sync``: home delivery on tablets.

API.md, "Home delivery: devices, routes and offline sync". Supervisors register
tablets and give routes with their own tokens; a tablet reads its route and syncs
with its device token (``Authorization: Bearer``), never with a page's session or
CSRF token that would expire while it is offline. The service owns the rules
(terminal/services/delivery.py); these handlers parse, call and answer.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import current_app, g, jsonify

from terminal.api import endpoint, parse_body, reply
from terminal.api.schemas import (
    DeviceBody,
    DeviceIssued,
    DeviceList,
    DevicePoint,
    DeviceRequest,
    DeviceUser,
    ErrorBody,
    RouteAssignedBody,
    RouteBody,
    RouteRequest,
    SyncRequest,
    SyncResponse,
)
from terminal.clock import to_local
from terminal.db import get_session
from terminal.models import Device, Payout
from terminal.services import delivery, receipts
from terminal.services.errors import Forbidden

log = logging.getLogger("terminal")

ERRORS: dict[int, Any] = {400: ErrorBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody}


def current_device() -> Device:
    """Return the tablet of the request's device token, or refuse a user token."""
    device = g.get("device")
    if device is None:
        raise Forbidden(
            "this is for a registered tablet: use its device token", code="device_token_required"
        )
    return device


def _device_body(device: Device) -> DeviceBody:
    return DeviceBody(
        device_id=device.id,
        name=device.name,
        state=delivery.device_state(device),
        expires_at=to_local(device.expires_at),
        last_seen_at=to_local(device.last_seen_at) if device.last_seen_at else None,
        user=DeviceUser(username=device.user.username, full_name=device.user.full_name),
        point=DevicePoint(code=device.point.code, name=device.point.name),
    )


@endpoint(
    "/devices",
    "POST",
    summary="Register a tablet for a delivery user of the point (its token is shown once)",
    permission="supervise",
    body=DeviceRequest,
    responses={201: DeviceIssued, **ERRORS, 422: ErrorBody},
)
def create_device() -> Any:
    """Register a tablet and return its device token."""
    data = parse_body(DeviceRequest)
    issued = delivery.register_device(get_session(), g.user, name=data.name, username=data.username)
    return reply(
        DeviceIssued(
            device_id=issued.device.id,
            token=issued.token,
            expires_at=to_local(issued.device.expires_at),
        ),
        201,
    )


@endpoint(
    "/devices",
    "GET",
    summary="The point's tablets",
    permission="supervise",
    responses={200: DeviceList, 401: ErrorBody, 403: ErrorBody},
)
def list_devices() -> Any:
    """List the tablets of the supervisor's point."""
    devices = delivery.list_devices(get_session(), g.user)
    return reply(DeviceList(items=[_device_body(d) for d in devices]))


@endpoint(
    "/devices/<int:device_id>",
    "DELETE",
    summary="Revoke a tablet: its token stops working at once",
    permission="supervise",
    responses={204: None, **ERRORS},
)
def delete_device(device_id: int) -> Any:
    """Revoke a tablet (lost, stolen, or handed back)."""
    delivery.revoke_device(get_session(), g.user, device_id)
    return "", 204


@endpoint(
    "/devices/current",
    "GET",
    summary="The tablet of this device token, and whom it belongs to",
    permission="deliver",
    responses={200: DeviceBody, 401: ErrorBody, 403: ErrorBody},
)
def get_current_device() -> Any:
    """Tell a tablet who it is paired to."""
    return reply(_device_body(current_device()))


@endpoint(
    "/devices/current",
    "DELETE",
    summary="Sign the tablet out: its own token stops working",
    permission="deliver",
    responses={204: None, 401: ErrorBody, 403: ErrorBody},
)
def delete_current_device() -> Any:
    """Revoke the device token in use (the tablet's sign-out)."""
    device = current_device()
    delivery.revoke_device(get_session(), g.user, device.id, own=True)
    return "", 204


@endpoint(
    "/routes",
    "POST",
    summary="Give people of a period to a delivery user; their due entitlements are reserved",
    permission="supervise",
    body=RouteRequest,
    responses={201: RouteAssignedBody, **ERRORS, 422: ErrorBody},
)
def create_route() -> Any:
    """Reserve the people's due entitlements for the delivery user's tablet."""
    data = parse_body(RouteRequest)
    assigned = delivery.assign_route(
        get_session(),
        g.user,
        username=data.username,
        period=data.period,
        beneficiary_codes=data.beneficiary_codes,
    )
    return reply(
        RouteAssignedBody(
            route_id=assigned.route.id,
            reserved=assigned.reserved,
            people=assigned.people,
            expires_at=to_local(assigned.route.expires_at),
        ),
        201,
    )


@endpoint(
    "/routes/<int:route_id>/people/<code>",
    "DELETE",
    summary="Release a person from a route: they may be paid anywhere again",
    permission="supervise",
    responses={204: None, **ERRORS},
)
def release_route_person(route_id: int, code: str) -> Any:
    """Take a person off a route and free their entitlements."""
    delivery.release_person(get_session(), g.user, route_id, code)
    return "", 204


@endpoint(
    "/routes/current",
    "GET",
    summary="The tablet's current route, with salted ID hashes for offline checks",
    permission="deliver",
    responses={200: RouteBody, 401: ErrorBody, 403: ErrorBody, 404: ErrorBody},
)
def get_current_route() -> Any:
    """Return the route the tablet stores for offline work."""
    return jsonify(delivery.current_route(get_session(), current_device()))


@endpoint(
    "/sync",
    "POST",
    summary="Apply the tablet's queued payouts and visits, each exactly once",
    permission="deliver",
    body=SyncRequest,
    responses={200: SyncResponse, 400: ErrorBody, 401: ErrorBody, 403: ErrorBody},
)
def sync() -> Any:
    """Answer each queued item: applied, duplicate, conflict or rejected."""
    data = parse_body(SyncRequest)
    device = current_device()
    session = get_session()
    app = current_app._get_current_object()  # type: ignore[attr-defined]

    def draw_receipt(payout_id: int) -> None:
        # The PDF is made when the payout reaches the server; if drawing fails the
        # payout stands and the receipt is drawn when first printed.
        try:
            receipts.write_original(app, session, session.get(Payout, payout_id))
        except Exception:
            session.rollback()
            log.exception("could not draw the receipt of a synced payout")

    body = delivery.sync(
        session,
        device,
        payouts=data.payouts,
        visits=data.visits,
        verify_url=lambda payout: receipts.verify_url(app, payout),
        on_applied=draw_receipt,
    )
    return jsonify(body)
