"""Web forms (Flask-WTF): field shapes and CSRF; business rules stay in services."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileAllowed, FileField, FileRequired
from wtforms import (
    BooleanField,
    HiddenField,
    PasswordField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from terminal.models import PointKind, ReceiptFormat, Role

ROLE_LABELS = {
    Role.CLERK: _l("Counter clerk"),
    Role.AGENT: _l("Agent point staff"),
    Role.DELIVERY: _l("Home-delivery staff"),
    Role.SUPERVISOR: _l("Supervisor"),
    Role.AUDITOR: _l("Auditor"),
    Role.ADMIN: _l("Administrator"),
}

KIND_LABELS = {
    PointKind.POST_OFFICE: _l("Post office"),
    PointKind.AGENT: _l("Payment agent point"),
    PointKind.DELIVERY: _l("Home-delivery team"),
}

FORMAT_LABELS = {
    ReceiptFormat.ROLL_80MM: _l("80 mm roll"),
    ReceiptFormat.A5: _l("A5 paper"),
}


class LoginForm(FlaskForm):
    """Sign in at a shared counter: no "remember me"."""

    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=64)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=128)])
    next = HiddenField()


class ActionForm(FlaskForm):
    """A button that changes something: only the CSRF token."""


class LanguageForm(FlaskForm):
    """Switch the page language."""

    lang = HiddenField(validators=[DataRequired()])
    next = HiddenField()


class RosterUploadForm(FlaskForm):
    """Upload the ministry's monthly list."""

    file = FileField(
        _l("Roster file (.csv or .xlsx)"),
        validators=[
            FileRequired(),
            FileAllowed(["csv", "xlsx"], _l("Choose a .csv or .xlsx file.")),
        ],
    )
    period = StringField(
        _l("Payment period"),
        validators=[DataRequired(), Length(max=7)],
        description=_l("Year and month, e.g. 2021-10."),
    )


class RosterCommitForm(FlaskForm):
    """Commit a previewed upload."""

    token = HiddenField(validators=[DataRequired(), Length(max=64)])
    period = HiddenField(validators=[DataRequired(), Length(max=7)])


class UserForm(FlaskForm):
    """Create or edit a user."""

    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=32)])
    full_name = StringField(_l("Full name"), validators=[DataRequired(), Length(max=200)])
    role = SelectField(
        _l("Role"), choices=[SelectChoice(r.value, label) for r, label in ROLE_LABELS.items()]
    )
    point = SelectField(_l("Payout point"), choices=[], validate_choice=False)
    password = PasswordField(
        _l("Password"),
        validators=[Optional(), Length(max=128)],
        description=_l(
            "At least 10 characters, not a common password and not containing the username."
        ),
    )
    active = BooleanField(_l("Account active"), default=True)


class PointForm(FlaskForm):
    """Create or edit a payout point."""

    code = StringField(_l("Code"), validators=[DataRequired(), Length(max=12)])
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    kind = SelectField(
        _l("Kind"), choices=[SelectChoice(k.value, label) for k, label in KIND_LABELS.items()]
    )
    district = StringField(_l("District"), validators=[DataRequired(), Length(max=120)])
    communes = TextAreaField(
        _l("Communes served"),
        validators=[DataRequired(), Length(max=5000)],
        description=_l("One per line, or separated by semicolons."),
    )
    receipt_format = SelectField(
        _l("Receipt paper"),
        choices=[SelectChoice(f.value, label) for f, label in FORMAT_LABELS.items()],
    )
    active = BooleanField(_l("Point active"), default=True)


class SearchForm(FlaskForm):
    """The counter's one search field: code, ID, phone, name or a scanned card."""

    q = StringField(
        _l("Code, ID number, phone, name — or scan the CCCD"),
        validators=[DataRequired(), Length(max=1000)],
    )


class VerifyForm(FlaskForm):
    """Who is collecting, and their ID (typed or scanned)."""

    collector = HiddenField(validators=[DataRequired(), Length(max=40)])
    identity = StringField(
        _l("Scan the CCCD QR code or type the ID number"),
        validators=[DataRequired(), Length(max=1000)],
    )


class MultiCheckboxField(SelectMultipleField):
    """Several checkboxes, one per choice."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class PayForm(FlaskForm):
    """Confirm a payout; form_key makes the form pay at most once."""

    form_key = HiddenField(validators=[DataRequired(), Length(max=64)])
    # Which periods may be paid is the payment service's decision (already paid,
    # cancelled, someone else's...), answered the same as to the API.
    entitlements = MultiCheckboxField(
        _l("Periods to pay"), choices=[], coerce=int, validate_choice=False
    )
    channel = RadioField(
        _l("How the money is paid"),
        choices=[
            SelectChoice("cash", _l("Cash")),
            SelectChoice("account", _l("Withdrawal from the account")),
        ],
        validators=[DataRequired()],
    )
    provider_ref = StringField(
        _l("Provider transaction reference"),
        validators=[Optional(), Length(max=64)],
        description=_l("Required for an account withdrawal (Viettel Pay, VietinBank...)."),
    )
    override_reason = StringField(
        _l("Why the account cannot pay out (supervisor)"),
        validators=[Optional(), Length(max=500)],
    )


class ReverseForm(FlaskForm):
    """Reverse a payout (supervisors)."""

    reason = TextAreaField(
        _l("Reason for the reversal"), validators=[DataRequired(), Length(min=5, max=500)]
    )


class FailureForm(FlaskForm):
    """Log a failed attempt for follow-up."""

    reason = SelectField(
        _l("What went wrong"), choices=[], validate_choice=False, validators=[DataRequired()]
    )
    detail = TextAreaField(_l("Details"), validators=[Optional(), Length(max=1000)])


class CashFloatForm(FlaskForm):
    """Record today's cash advance."""

    advance = StringField(
        _l("Cash advanced for today (đồng)"),
        validators=[DataRequired(), Length(max=30)],
        description=_l("For example 50.000.000"),
    )


class CaseForm(FlaskForm):
    """A supervisor's work on a follow-up case."""

    status = SelectField(_l("Status"), validate_choice=True)
    assignee = SelectField(_l("Owner"), validate_choice=True)
    note = TextAreaField(_l("Add a note"), validators=[Optional(), Length(max=2000)])


class WithdrawForm(FlaskForm):
    """Ask the provider to send the account holder a code for the chosen periods."""

    form_key = HiddenField(validators=[DataRequired(), Length(max=64)])
    entitlements = MultiCheckboxField(
        _l("Periods to pay"), choices=[], coerce=int, validate_choice=False
    )


class OtpForm(FlaskForm):
    """The code the account holder reads out."""

    otp = StringField(
        _l("Code received by the account holder (OTP)"),
        validators=[DataRequired(), Length(max=16)],
        description=_l("Ask the person for the code in the message the provider sent them."),
    )


class SettlementUploadForm(FlaskForm):
    """Upload the provider's monthly settlement file."""

    file = FileField(
        _l("Settlement file (.csv or .xlsx)"),
        validators=[
            FileRequired(),
            FileAllowed(["csv", "xlsx"], _l("Choose a .csv or .xlsx file.")),
        ],
        description=_l("Columns: client_ref, amount, status, time."),
    )


class CheckpointForm(FlaskForm):
    """Upload a kept audit checkpoint to check the log against it."""

    file = FileField(
        _l("Checkpoint file (.json)"),
        validators=[FileRequired(), FileAllowed(["json"], _l("Choose a .json file."))],
    )
