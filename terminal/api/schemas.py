"""Request and response models of the API; the OpenAPI document is generated from them."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    """A request body: exact JSON types, unknown fields ignored."""

    model_config = ConfigDict(strict=True, extra="ignore", str_max_length=1000)


class ErrorBody(BaseModel):
    """Every error: a machine code and a sentence, plus fields named per endpoint."""

    error: str
    message: str


class TokenRequest(Strict):
    """Sign in for a bearer token."""

    username: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=128)


class TokenUser(BaseModel):
    """Who the token belongs to."""

    username: str
    role: str
    payout_point: str | None


class TokenResponse(BaseModel):
    """A new bearer token, shown once."""

    token: str
    expires_at: datetime
    user: TokenUser
