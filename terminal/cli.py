"""The ``payout-terminal`` command line (API.md): one Flask CLI group.

Every command exits 0 on success and non-zero with a one-line reason on stderr
otherwise; bad settings are reported the same way, never as a traceback.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from functools import wraps
from pathlib import Path
from typing import Any, BinaryIO

import click
from flask import Flask
from flask.cli import FlaskGroup, ScriptInfo, with_appcontext

from terminal.config import ConfigError


def _app_for_cli() -> Flask:
    """Build the app for a command, turning a bad setting into a one-line error."""
    from terminal import create_app

    try:
        return create_app()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def service_command(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run a command in the app context, reporting refusals as one line."""
    from terminal.services.errors import ServiceError

    @wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ServiceError as exc:
            raise click.ClickException(exc.message) from None

    return with_appcontext(run)


def _session():  # type: ignore[no-untyped-def]
    """Open a database session for a command."""
    from terminal.db import new_session

    return closing(new_session())


@click.command("init-db")
@service_command
def init_db() -> None:
    """Create or migrate the schema to the latest version (safe to run twice)."""
    from terminal.db import get_engine
    from terminal.schema import current_revision, head_revision, upgrade

    engine = get_engine()
    before = current_revision(engine)
    upgrade(engine)
    after = head_revision()
    if before == after:
        click.echo(f"database already at the latest schema ({after})")
    else:
        click.echo(f"database migrated from {before or 'empty'} to {after}")


@click.command("create-point")
@click.argument("code")
@click.option("--name", required=True, help="Name of the point.")
@click.option(
    "--kind", required=True, type=click.Choice(["post_office", "agent", "delivery"]), help="Kind."
)
@click.option("--district", required=True, help="District (huyện/thị xã) it lies in.")
@click.option("--communes", required=True, help='Communes it serves, "A;B;C".')
@click.option("--receipt-format", type=click.Choice(["80mm", "a5"]), default=None)
@click.option(
    "--adapter",
    type=click.Choice(["manual", "http"]),
    default=None,
    help="How account payouts reach the provider (default: manual, kept on update).",
)
@click.option("--provider-url", default=None, help="The provider's base URL (http adapter).")
@service_command
def create_point(
    code: str,
    name: str,
    kind: str,
    district: str,
    communes: str,
    receipt_format: str | None,
    adapter: str | None,
    provider_url: str | None,
) -> None:
    """Create or update a payout point serving those communes."""
    from terminal.services.places import save_point

    with _session() as session:
        point, created = save_point(
            session,
            code=code,
            name=name,
            kind=kind,
            district=district,
            communes=communes.split(";"),
            receipt_format=receipt_format,
            adapter=adapter,
            provider_url=provider_url,
            actor="cli",
        )
        verb = "created" if created else "updated"
        via = f", provider {point.provider_url}" if point.provider_url else ""
        click.echo(
            f"point {point.code} {verb}: {len(point.communes)} communes in {point.district.name}"
            f"{via}"
        )


@click.command("set-adapter")
@click.argument("code")
@click.option("--adapter", required=True, type=click.Choice(["manual", "http"]))
@click.option("--provider-url", default=None, help="The provider's base URL (http adapter).")
@service_command
def set_adapter(code: str, adapter: str, provider_url: str | None) -> None:
    """Connect a payout point to its provider (http) or back to manual, nothing else changed."""
    from terminal.services.places import set_adapter as set_point_adapter

    with _session() as session:
        point = set_point_adapter(
            session, code, adapter=adapter, provider_url=provider_url, actor="cli"
        )
        via = f" at {point.provider_url}" if point.provider_url else ""
        click.echo(f"point {point.code}: adapter {point.adapter.value}{via}")


@click.command("create-user")
@click.argument("username")
@click.option(
    "--role",
    required=True,
    type=click.Choice(["clerk", "agent", "delivery", "supervisor", "auditor", "admin"]),
)
@click.option("--point", "point_code", default=None, help="Payout point code (staff roles).")
@click.option("--full-name", default=None, help="Full name shown on receipts.")
@click.option("--password-stdin", is_flag=True, required=True, help="Read the password from stdin.")
@service_command
def create_user(
    username: str, role: str, point_code: str | None, full_name: str | None, password_stdin: bool
) -> None:
    """Create a user; the password is read from standard input."""
    from terminal.services.auth import create_user as create

    if not password_stdin:
        raise click.UsageError("give --password-stdin and the password on standard input")
    password = sys.stdin.readline().rstrip("\r\n")
    with _session() as session:
        user = create(
            session,
            username=username,
            role=role,
            password=password,
            full_name=full_name,
            point_code=point_code,
            actor="cli",
        )
        click.echo(f"user {user.username} created ({user.role.value})")


@click.command("seed-demo")
@click.option("--if-empty", is_flag=True, help="Do nothing (but print the logins) if not empty.")
@click.option(
    "--scale",
    type=click.FloatRange(0.001, 10.0),
    default=1.0,
    show_default=True,
    help="Size of the roster relative to the 2021 pilot (13,080 people).",
)
@service_command
def seed_demo(if_empty: bool, scale: float) -> None:
    """Fill an empty database with demo data and print the demo logins."""
    from terminal.services import demo

    with _session() as session:
        if not demo.is_empty(session):
            if if_empty:
                if demo.has_demo_users(session):
                    demo.ensure_demo_floats(session)
                    _print_logins(demo.DEMO_LOGINS)
                return
            raise click.ClickException("the database is not empty; seed-demo fills a new one")
        click.echo("Creating the demo: the 2021 pilot's points, users and roster...")
        logins = demo.seed(session, scale=scale)
        _print_logins(logins)


def _print_logins(logins: Any) -> None:
    """Print the demo accounts as a small table."""
    click.echo("Demo logins (username / password / role / point):")
    for login in logins:
        click.echo(
            f"  {login.username:<13} {login.password:<23} {login.role:<11} {login.point or '-'}"
        )


@click.command("import-roster")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--period", required=True, help="Payment period, YYYY-MM.")
@click.option("--dry-run", is_flag=True, help="Check and report; write nothing.")
@service_command
def import_roster(file: Path, period: str, dry_run: bool) -> None:
    """Import a roster (CSV or XLSX) and create that period's entitlements."""
    from terminal.services.roster import import_roster as run_import
    from terminal.services.roster import parse_period

    parse_period(period)
    if not file.is_file():
        raise click.ClickException(f"cannot read {file}: no such file")
    with (
        _session() as session,
        click.progressbar(length=1000, label="Importing", file=sys.stderr, show_eta=True) as bar,
    ):
        done = [0]

        def advance(fraction: float) -> None:
            step = int(fraction * 1000) - done[0]
            if step > 0:
                bar.update(step)
                done[0] += step

        report = run_import(
            session, file, period=period, actor="cli", dry_run=dry_run, progress=advance
        )
    print_report(report)


def print_report(report: Any) -> None:
    """Print an import report: counts, then every rejection and data error."""
    mode = "dry run, nothing written" if report.dry_run else "committed"
    click.echo(f"Roster {report.filename} for period {report.period} ({mode})")
    for name, count in report.counts().items():
        click.echo(f"  {name:<10} {count:>8,}")
    click.echo(
        f"Entitlements: {report.entitlements_created:,} created, "
        f"{report.entitlements_updated:,} updated, {report.entitlements_cancelled:,} cancelled"
    )
    if report.new_communes:
        click.echo("New communes: " + ", ".join(report.new_communes))
    if report.ignored_columns:
        click.echo("Ignored columns: " + ", ".join(report.ignored_columns))
    if report.rejections:
        click.echo(f"Rejected rows ({report.rejected:,}):")
        for problem in report.rejections:
            click.echo(f"  {problem.line()}")
    if report.flags:
        click.echo(f"Data errors to follow up ({len(report.flags):,}):")
        for problem in report.flags:
            click.echo(f"  {problem.line()}")
    if report.changes:
        click.echo("Changed:")
        for code, fields in report.changes:
            click.echo(f"  {code}: {', '.join(fields)}")
    if report.missing_codes:
        shown = ", ".join(report.missing_codes[:50])
        more = f" and {report.missing - 50:,} more" if report.missing > 50 else ""
        click.echo(f"Missing from the list: {shown}{more}")


@click.command("generate")
@click.option("--beneficiaries", type=click.IntRange(1, 3_000_000), required=True)
@click.option("--periods", type=click.IntRange(1, 36), default=1, show_default=True)
@click.option("--seed", type=int, default=2021, show_default=True)
@service_command
def generate(beneficiaries: int, periods: int, seed: int) -> None:
    """Write synthetic data at province or country scale, for benchmarks."""
    from terminal.synthetic import generate as run_generate

    with (
        _session() as session,
        click.progressbar(length=beneficiaries, label="Generating", file=sys.stderr) as bar,
    ):
        done = [0]

        def advance(count: int) -> None:
            bar.update(count - done[0])
            done[0] = count

        report = run_generate(
            session, beneficiaries=beneficiaries, periods=periods, seed=seed, progress=advance
        )
    click.echo(
        f"generated {report.beneficiaries:,} beneficiaries, {report.proxies:,} proxies, "
        f"{report.entitlements:,} entitlements, {report.payouts:,} payouts "
        f"in {report.seconds:.1f} s"
    )


@click.command("verify-receipt")
@click.argument("token", required=False)
@click.option(
    "--public-key",
    "key_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Check offline with this PEM public key (signature only, no database).",
)
@click.option("--print-public-key", is_flag=True, help="Print the public key and exit.")
@service_command
def verify_receipt(token: str | None, key_file: Path | None, print_public_key: bool) -> None:
    """Check a receipt token (what its QR code carries after /r/)."""
    from flask import current_app

    from terminal.formatting import format_datetime
    from terminal.money import format_vnd
    from terminal.services import receipts
    from terminal.services.receipt_tokens import load_public_key, read_token

    if print_public_key:
        click.echo(receipts.public_key(current_app), nl=False)
        return
    if not token:
        raise click.UsageError("give a TOKEN (or --print-public-key)")
    token = token.rsplit("/r/", 1)[-1].strip()
    if key_file is not None:
        try:
            key = load_public_key(key_file.read_text())
        except ValueError:
            raise click.ClickException(f"{key_file} is not an Ed25519 public key") from None
        claim = read_token(token, key)
        if claim is None:
            click.echo("NOT GENUINE: the signature does not match")
            sys.exit(1)
        click.echo(
            f"signature good: {claim.receipt_no}, {format_vnd(claim.amount_vnd)}, "
            f"paid {format_datetime(claim.paid_at)} (payout {claim.payout_id})"
        )
        return
    with _session() as session:
        check = receipts.check_token(session, current_app, token)
    if not check.valid:
        click.echo("NOT GENUINE: this receipt was not issued by this terminal or was altered")
        sys.exit(1)
    assert check.amount_vnd is not None and check.paid_at is not None
    line = (
        f"{check.receipt_no}, {format_vnd(check.amount_vnd)}, paid {format_datetime(check.paid_at)}"
    )
    if check.status == "reversed":
        click.echo(f"REVERSED: {line}")
        sys.exit(1)
    click.echo(f"GENUINE: {line}")


@click.command("audit-verify")
@click.option(
    "--checkpoint",
    "checkpoint_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A kept checkpoint (GET /api/v1/audit/checkpoint): prove the log still extends it.",
)
@service_command
def audit_verify(checkpoint_file: Path | None) -> None:
    """Check the audit chain; exit 0 if intact, 1 and the first bad sequence number if not."""
    from flask import current_app

    from terminal.services import receipts
    from terminal.services.audit import read_checkpoint, verify_against, verify_chain
    from terminal.services.receipt_tokens import load_public_key

    if checkpoint_file is None:
        with _session() as session:
            report = verify_chain(session)
        if report.ok:
            click.echo(f"audit chain intact: {report.events} events")
            return
        click.echo(f"audit chain broken at sequence {report.first_bad_seq}", err=True)
        sys.exit(1)
    try:
        checkpoint = read_checkpoint(json.loads(checkpoint_file.read_text(encoding="utf-8")))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        reason = "not JSON" if isinstance(exc, json.JSONDecodeError) else str(exc)
        raise click.ClickException(f"{checkpoint_file} is not a checkpoint: {reason}") from None
    key = load_public_key(receipts.public_key(current_app))
    with _session() as session:
        result = verify_against(session, checkpoint, key)
    if result.ok:
        click.echo(f"audit chain {result.reason}")
        return
    click.echo(f"audit check failed: {result.reason}", err=True)
    sys.exit(1)


@click.command("audit-checkpoint")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), default=None)
@service_command
def audit_checkpoint(output: Path | None) -> None:
    """Print (or write) a signed checkpoint of the audit chain's head, to keep elsewhere."""
    from flask import current_app

    from terminal.services.audit import BrokenChain, make_checkpoint

    with _session() as session:
        try:
            checkpoint = make_checkpoint(session, current_app.config["SECRET_KEY"])
        except BrokenChain as exc:
            raise click.ClickException(str(exc)) from None
    text = json.dumps(checkpoint.as_dict(), ensure_ascii=False)
    if output is None:
        click.echo(text)
        return
    output.write_text(text + "\n", encoding="utf-8")
    click.echo(f"checkpoint at sequence {checkpoint.seq} written to {output}")


@click.command("cash-float")
@click.argument("point")
@click.option("--advance", required=True, help="The day's cash advance in đồng, e.g. 50000000.")
@click.option("--date", "day", default=None, help="YYYY-MM-DD; today in Vietnam if left out.")
@service_command
def cash_float(point: str, advance: str, day: str | None) -> None:
    """Record a point's cash advance for a day (audited with the actor "cli")."""
    from terminal.clock import parse_iso_date
    from terminal.money import InvalidAmount, format_vnd, parse_vnd
    from terminal.services.cash import cash_position, set_point_cash_float
    from terminal.services.places import normalize_point_code

    try:
        amount = parse_vnd(advance, allow_zero=True)
    except InvalidAmount as exc:
        raise click.BadParameter(str(exc), param_hint="'--advance'") from None
    try:
        business_date = parse_iso_date(day) if day is not None else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--date'") from None
    with _session() as session:
        row = set_point_cash_float(
            session, point, advance_vnd=amount, day=business_date, actor="cli"
        )
        position = cash_position(session, row.point_id, row.business_date)
    code = normalize_point_code(point)
    count = f"{position.payouts} payout{'' if position.payouts == 1 else 's'}"
    click.echo(
        f"cash float {code} {position.day.isoformat()}: advance {format_vnd(amount)}, "
        f"paid in cash {format_vnd(position.paid_vnd)} ({count}), "
        f"remaining {format_vnd(position.remaining_vnd)}"
    )


@click.command("followup-summary")
@click.option("--date", "day", default=None, help="YYYY-MM-DD; today in Vietnam if left out.")
@service_command
def followup_summary(day: str | None) -> None:
    """Print the day's follow-up summary as plain text, ready to paste into a message."""
    from terminal.clock import check_day, parse_iso_date
    from terminal.services.followup import daily_summary, summary_text

    try:
        business_date = check_day(parse_iso_date(day)) if day is not None else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="'--date'") from None
    with _session() as session:
        click.echo(summary_text(daily_summary(session, None, business_date)))


def _export_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The options every export command takes: --format csv|xlsx and -o FILE."""
    func = click.option(
        "-o", "--output", required=True, type=click.Path(dir_okay=False, writable=True)
    )(func)
    return click.option(
        "--format", "fmt", type=click.Choice(["csv", "xlsx"]), default="csv", show_default=True
    )(func)


def _write_export(output: str, body: bytes, count: int, noun: str) -> None:
    """Write an export and say how many rows it holds."""
    Path(output).write_bytes(body)
    click.echo(f"{count} {noun}{'' if count == 1 else 's'} written to {output}")


@contextmanager
def _export_file(output: str) -> Iterator[BinaryIO]:
    """Open ``FILE.part`` for an export, and give it its name only if all went well.

    Opened before anything is read or recorded, so an unwritable path is refused
    (one line, exit 1) before the export's audit event; a failed run leaves no
    half-written file behind.
    """
    partial = Path(f"{output}.part")
    try:
        with partial.open("wb") as out:
            yield out
        partial.replace(output)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise click.ClickException(f"cannot write {output}: {exc.strerror}") from None
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


@click.command("export-corrections")
@_export_options
@service_command
def export_corrections(fmt: str, output: str) -> None:
    """Write the open data errors, one row per field, for whoever keeps the roster."""
    from terminal.services.followup import corrections, corrections_export

    with _session() as session:
        rows = corrections(session, None)  # the command line reads every point
        body = corrections_export(rows, fmt)
    _write_export(output, body, len(rows), "correction")


@click.command("export-failures")
@_export_options
@service_command
def export_failures(fmt: str, output: str) -> None:
    """Write every failure and case, oldest first, as CSV or Excel (API.md, auditors)."""
    from terminal.services.followup import failures_export

    with _export_file(output) as out, _session() as session:
        body, count = failures_export(session, None, fmt)
        out.write(body)
    click.echo(f"{count} failure{'' if count == 1 else 's'} written to {output}")


@click.command("export-period")
@click.argument("period")
@_export_options
@service_command
def export_period(period: str, fmt: str, output: str) -> None:
    """Write a period's return file for the ministry: one row per entitlement (API.md)."""
    from terminal.services.reports import return_file, write_return_file

    with _export_file(output) as out, _session() as session:
        spec = return_file(session, None, actor="cli", period=period, fmt=fmt)
        count = write_return_file(session, spec, fmt, out)
    click.echo(f"{count} entitlement{'' if count == 1 else 's'} written to {output}")


@click.command("export-payouts")
@click.option("--from", "date_from", required=True, help="First day, YYYY-MM-DD.")
@click.option("--to", "date_to", required=True, help="Last day, YYYY-MM-DD.")
@_export_options
@click.option("--point", default=None, help="Only this payout point.")
@click.option("--district", default=None, help="Only beneficiaries of this district.")
@click.option("--commune", default=None, help="Only beneficiaries of this commune.")
@click.option("--period", default=None, help="Only payouts of this period, YYYY-MM.")
@click.option("--staff", default=None, help="Only payouts made by this username.")
@click.option("--channel", type=click.Choice(["cash", "account"]), default=None)
@click.option("--collector", type=click.Choice(["beneficiary", "proxy"]), default=None)
@click.option("--status", type=click.Choice(["completed", "reversed", "pending"]), default=None)
@service_command
def export_payouts(fmt: str, output: str, **options: str | None) -> None:
    """Write the payout log of a date range (and filters) as CSV or Excel (audited)."""
    from terminal.services.payout_log import export_to_path, filters_from

    values = {k: v for k, v in options.items() if v is not None}
    values["from"] = values.pop("date_from")
    values["to"] = values.pop("date_to")
    filters = filters_from(values)
    with _session() as session:
        try:
            count = export_to_path(session, None, filters, fmt, output, actor="cli")
        except OSError as exc:
            raise click.ClickException(f"cannot write {output}: {exc.strerror}") from None
    click.echo(f"{count} payout{'' if count == 1 else 's'} written to {output}")


@click.command("provider-sandbox")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=5099, show_default=True)
@click.option("--otp-loss", type=click.FloatRange(0, 1), default=0.0, show_default=True)
@click.option("--timeout-rate", type=click.FloatRange(0, 1), default=0.0, show_default=True)
@click.option("--not-withdrawable", type=click.FloatRange(0, 1), default=0.0, show_default=True)
@click.option(
    "--slow-seconds",
    type=click.FloatRange(0, 600),
    default=15.0,
    show_default=True,
    help="How late a 'timed out' answer comes (longer than the terminal waits).",
)
@click.option("--seed", type=int, default=None, help="Repeat a run's faults exactly.")
def provider_sandbox(
    host: str,
    port: int,
    otp_loss: float,
    timeout_rate: float,
    not_withdrawable: float,
    slow_seconds: float,
    seed: int | None,
) -> None:
    """Run a stand-in provider (OTP, faults, ledger) for demos and tests."""
    from terminal.sandbox import Faults, create_sandbox_app, serve_sandbox

    faults = Faults(otp_loss, timeout_rate, not_withdrawable, slow_seconds)
    app = create_sandbox_app(faults, seed)
    click.echo(
        f"Provider sandbox at http://{host}:{port}/ (seed {app.extensions['sandbox'].seed}; "
        f"OTP loss {otp_loss:.0%}, timeouts {timeout_rate:.0%}, "
        f"not withdrawable {not_withdrawable:.0%}); Ctrl+C to stop"
    )
    serve_sandbox(app, host, port)


@click.command("reconcile")
@click.option("--point", "point_code", default=None, help="Only this payout point.")
@service_command
def reconcile(point_code: str | None) -> None:
    """Ask the provider about every pending withdrawal; complete or release each."""
    from flask import current_app

    from terminal.services.places import get_point
    from terminal.services.withdrawals import ProviderSettings
    from terminal.services.withdrawals import reconcile as run_reconcile

    with _session() as session:
        points = [get_point(session, point_code).id] if point_code else None
        report = run_reconcile(
            session,
            actor="cli",
            settings=ProviderSettings.from_config(current_app.config),
            point_ids=points,
        )
    click.echo(
        f"reconciled: {report.completed} completed, {report.released} released, "
        f"{report.still_pending} still pending"
    )


@click.command("import-settlement")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--point", "point_code", required=True, help="The payout point the file is for.")
@service_command
def import_settlement(file: Path, point_code: str) -> None:
    """Match a provider's settlement file (client_ref, amount, status, time); all or nothing."""
    from terminal.services.places import get_point
    from terminal.services.settlement import import_settlement as run_import

    with _session() as session:
        point = get_point(session, point_code)
        report = run_import(session, point, file, actor="cli")
    counts = report.counts()
    click.echo(
        f"settlement {file.name} for {point_code.upper()} ({', '.join(report.months)}): "
        f"{counts['rows']} rows, {counts['matched']} matched, "
        f"{counts['missing_at_terminal']} missing at the terminal, "
        f"{counts['missing_at_provider']} missing at the provider, "
        f"{counts['amount_differences']} amount differences; {report.cases} follow-up cases"
    )
    for title, rows in (
        ("missing at the terminal", report.missing_at_terminal),
        ("missing at the provider", report.missing_at_provider),
        ("amount difference", report.amount_differences),
    ):
        for row in rows[:50]:
            facts = ", ".join(f"{k}={v}" for k, v in row.items() if k != "client_ref")
            click.echo(f"  {title}: {row['client_ref']} ({facts})")


@click.command("serve")
@click.option(
    "--host", default=lambda: os.environ.get("HOST", "127.0.0.1"), show_default="$HOST or 127.0.0.1"
)
@click.option(
    "--port", default=lambda: os.environ.get("PORT", "5000"), show_default="$PORT or 5000"
)
@click.option("--workers", default=2, type=click.IntRange(1, 64), show_default=True)
@click.pass_context
def serve(ctx: click.Context, host: str, port: str, workers: int) -> None:
    """Serve the terminal with gunicorn (sync workers: SQLite writes queue cleanly)."""
    from terminal.db import get_engine
    from terminal.schema import upgrade
    from terminal.server import run_gunicorn

    try:
        port_number = int(str(port))
    except ValueError:
        raise click.BadParameter("must be a number from 1 to 65535", param_hint="PORT") from None
    if not 1 <= port_number <= 65535:
        raise click.BadParameter("must be a number from 1 to 65535", param_hint="PORT")
    # No app context stays pushed here: forked workers would share one `g` between
    # all their requests (and with it the signed-in user).
    app = ctx.ensure_object(ScriptInfo).load_app()
    engine = get_engine(app)
    # Migrate before the workers start: two workers migrating a new file collide.
    upgrade(engine)
    # Workers are forked from this process: they must not share its connections.
    engine.dispose()
    click.echo(f"Serving the payout terminal at http://{host}:{port_number}/ (Ctrl+C to stop)")
    run_gunicorn(app, host=host, port=port_number, workers=workers)


@click.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite FILE if it exists.")
@service_command
def backup(file: Path, force: bool) -> None:
    """Write a consistent copy of the database to FILE while the terminal keeps paying."""
    from flask import current_app

    from terminal.services.backup import backup as run_backup

    click.echo(run_backup(current_app, file, force=force, actor="cli").line())


@click.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace a database that already holds data.")
@service_command
def restore(file: Path, force: bool) -> None:
    """Load a backup into the configured database, migrate it and verify its audit chain."""
    from flask import current_app

    from terminal.services.backup import restore as run_restore

    summary = run_restore(current_app, file, force=force)
    if not summary.chain_ok:
        click.echo(f"Error: {summary.line()}", err=True)
        sys.exit(1)
    click.echo(summary.line())


commands = [
    init_db,
    create_point,
    set_adapter,
    create_user,
    import_roster,
    seed_demo,
    generate,
    verify_receipt,
    audit_verify,
    audit_checkpoint,
    cash_float,
    followup_summary,
    export_corrections,
    export_failures,
    export_payouts,
    export_period,
    provider_sandbox,
    reconcile,
    import_settlement,
    backup,
    restore,
    serve,
]


def run(args: list[str] | None = None, app_factory: Callable[[], Flask] | None = None) -> int:
    """Run one command line and return its exit code (the console script's body).

    Errors are one line on stderr. ``app_factory`` lets a caller (the tests) build
    the app itself; it defaults to ``create_app`` with bad settings as one line.
    """
    group = FlaskGroup(
        name="payout-terminal",
        create_app=app_factory or _app_for_cli,
        add_version_option=False,
        load_dotenv=False,
        set_debug_flag=False,
        help="Payout-point terminal: commands of API.md.",
    )
    for command in commands:
        group.add_command(command)
    try:
        result = group.main(args=args, prog_name="payout-terminal", standalone_mode=False)
    except click.ClickException as exc:
        # One line, never click's usage block: scripts and people read the reason.
        reason = " ".join(exc.format_message().split())
        click.echo(f"Error: {reason}", err=True)
        return exc.exit_code
    except click.exceptions.Abort:
        click.echo("Error: aborted", err=True)
        return 1
    except SystemExit as exc:  # a command's own exit (audit-verify, verify-receipt)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except Exception as exc:  # a bug or an outage: one line, details in the log
        import logging

        logging.getLogger("terminal").debug("command failed", exc_info=True)
        click.echo(f"Error: unexpected {type(exc).__name__}; nothing was changed", err=True)
        return 3
    return result if isinstance(result, int) else 0


def main() -> None:
    """Entry point of the payout-terminal console script."""
    sys.exit(run())
