"""Password rules (NIST SP 800-63B): length, the breached list, the username, Unicode NFKC."""

from __future__ import annotations

import json
import unicodedata

import pytest
from sqlalchemy import select, update

from terminal import security
from terminal.models import AuditEvent, User
from terminal.services import auth, demo
from terminal.services.errors import InvalidInput, Unauthorized
from tests.conftest import api_token, login, submit
from tests.factories import PASSWORD, ROLES, make_user

# "Mật khẩu rất dài 7" with its accents as single characters (NFC) and spelled out (NFD).
VIETNAMESE_NFC = unicodedata.normalize("NFC", "Mật-khẩu-rất-dài-7")
VIETNAMESE_NFD = unicodedata.normalize("NFD", VIETNAMESE_NFC)


@pytest.mark.parametrize(
    "password",
    [
        "qwertyuiop",  # on the list as it is
        "QwertyUIOP",  # case does not matter
        "1234567890",
        "basketball",
        "Basketball2021!",  # a listed word with a year and a symbol
        "!!password1234",
        "ｑｗｅｒｔｙｕｉｏｐ",  # full-width letters: the same after NFKC
    ],
)
def test_common_and_breached_passwords_are_refused(session, world, password):
    with pytest.raises(InvalidInput) as refused:
        make_user(session, "newclerk", "clerk", point="HTBD", password=password)
    assert refused.value.code == "password_common"


@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("mai.nguyen", "Mai.Nguyen-ve-nha-7"),
        ("thu2021", "xin-chao-THU2021-ban"),
        ("ｌａｎ", "hoa-lan-trong-vuon"),  # the username folds to "lan"
    ],
)
def test_password_holding_the_username_is_refused(session, world, username, password):
    with pytest.raises(InvalidInput) as refused:
        make_user(session, username, "auditor", password=password)
    assert refused.value.code in ("password_contains_username", "username_invalid")
    if refused.value.code == "username_invalid":
        # Full-width usernames are refused first; the rule itself is case-blind:
        with pytest.raises(InvalidInput, match="username"):
            auth.check_password_rules("hoa-LAN-trong-vuon", username="lan")


def test_a_new_password_through_update_is_checked_against_the_username(session, world):
    clerk = world.users["clerk"]
    for bad, code in (("clerk1-mat-khau", "password_contains_username"), ("iloveyou123", "")):
        with pytest.raises(InvalidInput) as refused:
            auth.update_user(session, clerk.id, actor="admin1", password=bad)
        assert refused.value.code == (code or "password_common")


def test_the_test_password_and_the_demo_passwords_pass_what_they_must(session, world):
    for role in ROLES:
        auth.check_password_rules(PASSWORD, username=world.users[role].username)
    for account in demo.DEMO_LOGINS:
        assert not security.is_common_password(account.password)
        # They hold the username: refused for a real account...
        with pytest.raises(InvalidInput, match="username"):
            auth.check_password_rules(account.password, username=account.username)


def test_demo_accounts_keep_their_documented_passwords(session):
    """seed-demo builds demo data only; its logins (README, make run) keep working."""
    logins = demo.seed_points_and_users(session)
    for account in logins:
        user = auth.authenticate(
            session, username=account.username, password=account.password, channel="page", ip=None
        )
        assert user.username == account.username
    created = session.scalars(select(AuditEvent).where(AuditEvent.action == "user.created")).all()
    assert created and all(json.loads(event.data)["demo_account"] is True for event in created)


def test_password_typed_in_nfd_signs_in_to_an_nfc_account(app, client, session, world):
    assert VIETNAMESE_NFC != VIETNAMESE_NFD
    make_user(session, "lan.tran", "auditor", password=VIETNAMESE_NFC)
    # The page, with the accents as separate characters (another keyboard or system):
    assert login(client, "lan.tran", VIETNAMESE_NFD).status_code == 302
    # The API, both ways:
    assert api_token(app.test_client(), "lan.tran", VIETNAMESE_NFD)
    assert api_token(app.test_client(), "lan.tran", VIETNAMESE_NFC)
    with pytest.raises(Unauthorized):
        auth.authenticate(
            session, username="lan.tran", password="Mat-khau-rat-dai-7", channel="api", ip=None
        )


def test_hashes_made_before_normalising_still_verify(session, world):
    """A hash of the raw (NFD) text, as made before this rule, still signs in."""
    clerk = world.users["clerk"]
    legacy = security._hasher.hash(VIETNAMESE_NFD)
    session.execute(update(User).where(User.id == clerk.id).values(password_hash=legacy))
    session.commit()
    user = auth.authenticate(
        session, username="clerk1", password=VIETNAMESE_NFD, channel="page", ip=None
    )
    assert user.id == clerk.id
    # New hashes are of the normalised text: NFC and NFD both verify.
    fresh = security.hash_password(VIETNAMESE_NFD)
    assert security.verify_password(fresh, VIETNAMESE_NFC)
    assert security.verify_password(fresh, VIETNAMESE_NFD)
    assert not security.verify_password(fresh, "Mat-khau-rat-dai-7")


def test_admin_page_explains_a_refused_password_in_vietnamese(as_role):
    admin = as_role("admin")
    response = submit(
        admin,
        "/admin/users/new",
        {
            "username": "hoa.le",
            "full_name": "Lê Thị Hoa",
            "role": "auditor",
            "point": "",
            "password": "Password2021",
        },
    )
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "mật khẩu này quá phổ biến" in html.lower()
    response = submit(
        admin,
        "/admin/users/new",
        {
            "username": "hoa.le",
            "full_name": "Lê Thị Hoa",
            "role": "auditor",
            "point": "",
            "password": "hoa.le-ve-que-2024",
        },
    )
    assert "không được chứa tên đăng nhập" in response.get_data(as_text=True).lower()
