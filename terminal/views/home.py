"""The home page: for each role, only the tasks that role can do."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flask import Blueprint, g, render_template, url_for
from flask_babel import lazy_gettext as _l

from terminal.authz import allow, may

bp = Blueprint("home", __name__)


@dataclass(frozen=True)
class Tile:
    """A task shown on the home page to the roles that hold its permission."""

    permission: str
    endpoint: str
    title: Any
    description: Any
    testid: str


# Each domain adds its tasks here as it is built, so the home page never shows
# something that does not exist.
TILES: list[Tile] = [
    Tile(
        "counter",
        "counter.search",
        _l("Pay an allowance"),
        _l("Find the beneficiary, check who is collecting, pay and print the receipt."),
        "tile-counter",
    ),
    Tile(
        "counter",
        "counter.today",
        _l("Today's payouts"),
        _l("What this point has paid today; reprints and reversals."),
        "tile-today",
    ),
    Tile(
        "counter",
        "counter.cash",
        _l("Cash"),
        _l("Today's cash advance and what should be left in the drawer."),
        "tile-cash",
    ),
    Tile(
        "follow_up",
        "followup.queue",
        _l("Follow-up"),
        _l("Failed payments to chase: open cases oldest first, owners, notes, the daily summary."),
        "tile-followup",
    ),
    Tile(
        "supervise",
        "delivery.index",
        _l("Home delivery"),
        _l("Routes of people to pay at home, what came of each visit, the tablets."),
        "tile-delivery",
    ),
    Tile(
        "deliver",
        "tablet.app",
        _l("Tablet app"),
        _l("The home-delivery app: open it on the tablet paired for you."),
        "tile-tablet",
    ),
    Tile(
        "audit_trail",
        "trail.index",
        _l("Audit trail"),
        _l("Every change, chained and signed: verify it, keep a checkpoint, check it later."),
        "tile-trail",
    ),
    Tile(
        "audit",
        "daybook.index",
        _l("Daily settlement"),
        _l("The day's payouts, totals and cash float; close the day; the signed payout list."),
        "tile-daybook",
    ),
    Tile(
        "audit",
        "reports.coverage",
        _l("Coverage"),
        _l("Who was paid in a period, by district or commune; the month's return file."),
        "tile-coverage",
    ),
    Tile(
        "sample",
        "samples.index",
        _l("Payment samples"),
        _l("Draw payouts at random and ask the people paid what they received."),
        "tile-samples",
    ),
    Tile(
        "payout_log",
        "audit.payouts",
        _l("Payout log"),
        _l("Every payout: filter, sort, open one to see its whole story; export for audits."),
        "tile-payout-log",
    ),
    Tile(
        "admin",
        "admin.users",
        _l("Users"),
        _l("Create accounts, set roles, disable access."),
        "tile-users",
    ),
    Tile(
        "admin",
        "admin.points",
        _l("Payout points"),
        _l("Post offices, agent points and delivery teams, and the communes they serve."),
        "tile-points",
    ),
    Tile(
        "admin",
        "roster.upload",
        _l("Import the roster"),
        _l("Load the ministry's monthly list (CSV or Excel): check first, then import."),
        "tile-roster",
    ),
    Tile(
        "admin",
        "roster.periods",
        _l("Payment periods"),
        _l("What is due, paid and cancelled in each month; close a month."),
        "tile-periods",
    ),
]


@bp.route("/")
@allow("signed_in")
def index() -> Any:
    """Show the signed-in user's tasks."""
    tiles = [
        {
            "url": url_for(t.endpoint),
            "title": t.title,
            "description": t.description,
            "testid": t.testid,
        }
        for t in TILES
        if may(g.user, t.permission)
    ]
    return render_template("home/index.html", tiles=tiles)
