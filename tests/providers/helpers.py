"""Driving withdrawals over the API, as a tablet or a script does."""

from __future__ import annotations

import itertools
from typing import Any

from tests.conftest import api_token, bearer
from tests.factories import make_beneficiary

_keys = itertools.count(1)


def account_holder(session: Any, point: Any, n: int, *, amount: int = 540_000) -> Any:
    """Create an account beneficiary of the point with one due entitlement and own account."""
    return make_beneficiary(
        session,
        f"PLV{n:07d}",
        commune=point.communes[0],
        full_name=f"Trần Văn Người {n}",
        id_number=f"0461{n:08d}",
        phone=None,
        method="account",
        provider="viettel_pay",
        account_no=f"97{n:08d}",
        monthly=amount,
    )


class Agent:
    """An agent of the http point, speaking the JSON API."""

    def __init__(self, client: Any, username: str = "agentb") -> None:
        self.client = client
        self.headers = bearer(api_token(client, username))

    def verify(self, person: Any) -> int:
        answer = self.client.post(
            "/api/v1/verifications",
            json={
                "beneficiary_code": person.code,
                "collector": "beneficiary",
                "id_number": person.id_number,
            },
            headers=self.headers,
        )
        assert answer.status_code == 201, answer.get_json()
        return answer.get_json()["verification_id"]

    def entitlements(self, person: Any) -> list[int]:
        answer = self.client.get(f"/api/v1/beneficiaries/{person.code}", headers=self.headers)
        assert answer.status_code == 200, answer.get_json()
        return [e["id"] for e in answer.get_json()["entitlements"] if e["status"] == "due"]

    def start(self, person: Any, *, key: str | None = None) -> Any:
        return self.client.post(
            "/api/v1/withdrawals",
            json={
                "verification_id": self.verify(person),
                "entitlement_ids": self.entitlements(person),
            },
            headers={**self.headers, "Idempotency-Key": key or f"w-{next(_keys)}"},
        )

    def otp(self, withdrawal_id: int, code: str) -> Any:
        return self.client.post(
            f"/api/v1/withdrawals/{withdrawal_id}/otp", json={"otp": code}, headers=self.headers
        )

    def resend(self, withdrawal_id: int) -> Any:
        return self.client.post(f"/api/v1/withdrawals/{withdrawal_id}/resend", headers=self.headers)

    def get(self, withdrawal_id: int) -> Any:
        return self.client.get(f"/api/v1/withdrawals/{withdrawal_id}", headers=self.headers)
