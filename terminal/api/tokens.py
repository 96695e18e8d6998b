"""``/api/v1/tokens``: sign in for a bearer token, and revoke it."""

from __future__ import annotations

from typing import Any

from flask import current_app, g, request

from terminal.api import bp, endpoint, parse_body, reply
from terminal.api.schemas import ErrorBody, TokenRequest, TokenResponse, TokenUser
from terminal.authz import PUBLIC
from terminal.clock import to_local
from terminal.db import get_session
from terminal.services import auth as auth_service


@endpoint(
    "/tokens",
    "POST",
    summary="Sign in and get a bearer token",
    permission=PUBLIC,
    body=TokenRequest,
    responses={201: TokenResponse, 400: ErrorBody, 401: ErrorBody, 429: ErrorBody},
)
def create_token() -> Any:
    """Exchange a username and password for a bearer token."""
    data = parse_body(TokenRequest)
    issued = auth_service.issue_token(
        get_session(),
        username=data.username,
        password=data.password,
        ip=request.remote_addr,
        hours=current_app.config["API_TOKEN_HOURS"],
    )
    user = issued.user
    return reply(
        TokenResponse(
            token=issued.token,
            expires_at=to_local(issued.expires_at),
            user=TokenUser(
                username=user.username,
                role=user.role.value,
                payout_point=user.payout_point.code if user.payout_point else None,
            ),
        ),
        201,
    )


@endpoint(
    "/tokens/current",
    "DELETE",
    summary="Revoke the token in use",
    permission="signed_in",
    responses={204: None, 401: ErrorBody},
)
def delete_token() -> Any:
    """Revoke the bearer token this request carries."""
    auth_service.revoke_token(get_session(), g.api_token.id, actor=g.user.username)
    return "", 204


__all__ = ["bp"]
