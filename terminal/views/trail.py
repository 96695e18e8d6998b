"""The audit trail for auditors: read the events, verify the chain, keep and check checkpoints.

Reading only: verifying recomputes every hash (on demand, it takes seconds at a
million events), a checkpoint is a signed copy of the head to keep outside the
terminal, and checking one changes nothing.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, current_app, render_template, request
from flask_babel import gettext as _

from terminal.authz import allow
from terminal.db import get_session
from terminal.forms import CheckpointForm
from terminal.models import AuditAction
from terminal.services import audit, receipts
from terminal.services.receipt_tokens import load_public_key

bp = Blueprint("trail", __name__, url_prefix="/trail")

PAGE = 50


def _cursor(name: str) -> int | None:
    """Read a sequence-number cursor; anything else means no cursor."""
    value = request.args.get(name, "")
    if value.isascii() and value.isdigit() and len(value) <= 18:
        return int(value)
    return None


def _filters() -> audit.EventFilter:
    """Read the filters from the query string, each cut to its column's length."""
    args = request.args
    action = args.get("action", "")
    return audit.EventFilter(
        action=action if action in set(AuditAction) else None,
        object_type=(args.get("object_type") or "").strip()[:32] or None,
        object_id=(args.get("object_id") or "").strip()[:64] or None,
        actor=(args.get("actor") or "").strip()[:64] or None,
    )


@bp.route("/")
@allow("audit_trail")
def index() -> Any:
    """List events newest first; verify the whole chain when asked."""
    session = get_session()
    filters = _filters()
    events, older, newer = audit.event_page(
        session, filters, before=_cursor("before"), after=_cursor("after"), limit=PAGE
    )
    report = audit.verify_chain(session) if request.args.get("verify") == "1" else None
    return render_template(
        "trail/index.html",
        events=events,
        older=older,
        newer=newer,
        filters=filters,
        actions=sorted(a.value for a in AuditAction),
        report=report,
        form=CheckpointForm(),
        check=None,
    )


@bp.route("/checkpoint.json")
@allow("audit_trail")
def checkpoint() -> Any:
    """Download a signed checkpoint of the head, to keep outside the terminal."""
    try:
        made = audit.make_checkpoint(get_session(), current_app.config["SECRET_KEY"])
    except audit.BrokenChain as exc:
        return render_template("error.html", message=str(exc), status=409), 409
    response = Response(
        json.dumps(made.as_dict(), ensure_ascii=False, indent=1) + "\n",
        mimetype="application/json",
    )
    response.headers["Content-Disposition"] = (
        f'attachment; filename="audit-checkpoint-{made.seq}.json"'
    )
    return response


@bp.route("/checkpoint", methods=["POST"])
@allow("audit_trail")
def check_checkpoint() -> Any:
    """Check an uploaded checkpoint file against the log (reads only)."""
    session = get_session()
    form = CheckpointForm()
    check: dict[str, Any] | None = None
    status = 200
    if form.validate_on_submit():
        raw = form.file.data.read(4096)
        try:
            kept = audit.read_checkpoint(json.loads(raw.decode("utf-8")))
        except (ValueError, UnicodeDecodeError, RecursionError):
            check = {"ok": False, "reason": _("This file is not an audit checkpoint.")}
            status = 400
        else:
            key = load_public_key(receipts.public_key(current_app))
            result = audit.verify_against(session, kept, key)
            check = {"ok": result.ok, "reason": _checkpoint_words(result, kept), "seq": kept.seq}
    else:
        check = {"ok": False, "reason": _("Choose the checkpoint file (.json) you kept.")}
        status = 400
    events, older, _newer = audit.event_page(session, audit.EventFilter(), limit=PAGE)
    page = render_template(
        "trail/index.html",
        events=events,
        older=older,
        newer=None,
        filters=audit.EventFilter(),
        actions=sorted(a.value for a in AuditAction),
        report=None,
        form=form,
        check=check,
    )
    return page, status


def _checkpoint_words(result: audit.CheckpointReport, kept: audit.Checkpoint) -> str:
    """Say what a checkpoint check found, in the page's language."""
    events = result.chain.events if result.chain else 0
    if result.kind == "ok":
        return _(
            "intact: %(events)s events; the log still extends checkpoint %(seq)s.",
            events=events,
            seq=kept.seq,
        )
    if result.kind == "signature":
        return _("the checkpoint's signature is not valid: it was not made here, or was altered.")
    if result.kind == "broken":
        bad = result.chain.first_bad_seq if result.chain else None
        return _("the chain breaks at event %(seq)s.", seq=bad)
    if result.kind == "short":
        return _(
            "the log ends at event %(events)s, before the checkpoint's %(seq)s: "
            "events were removed from the end.",
            events=events,
            seq=kept.seq,
        )
    return _(
        "event %(seq)s differs from the checkpoint: the log was rewritten at or before it.",
        seq=kept.seq,
    )
