"""What each refusal code means to a person, in the page's language.

Services raise errors with a machine code and an English message for logs and
scripts; this catalogue gives people the translated sentence. A code missing
here falls back to the service's own message.
"""

from __future__ import annotations

from typing import Any

from flask_babel import lazy_gettext as _l

from terminal.services.errors import ServiceError

MESSAGES = {
    "invalid_credentials": _l("Wrong username or password."),
    "too_many_attempts": _l("Too many failed attempts. This account is locked for 15 minutes."),
    "unauthorized": _l("Sign in first: a valid token is required."),
    "forbidden": _l("Your role may not do this."),
    "not_found": _l("Not found."),
    "invalid_request": _l("The request could not be understood."),
    "username_invalid": _l(
        "The username must be 3 to 32 characters: letters, digits, dot, dash or underscore."
    ),
    "username_taken": _l("This username is already taken."),
    "password_invalid": _l("The password must be 10 to 128 characters long."),
    "password_common": _l(
        "This password is too common: it appears in lists of leaked passwords. Choose "
        "another, for example a few unrelated words."
    ),
    "password_contains_username": _l("The password must not contain the username."),
    "role_invalid": _l("Choose a valid role."),
    "point_required": _l("Staff at a counter, agent point or delivery team need a payout point."),
    "point_not_allowed": _l("Auditors and administrators do not belong to a payout point."),
    "point_not_found": _l("There is no payout point with this code."),
    "point_code_invalid": _l("The point code must be 2 to 12 letters or digits, e.g. HTBD."),
    "point_code_taken": _l("A payout point with this code already exists."),
    "point_name_invalid": _l("Give the payout point a name."),
    "point_kind_invalid": _l("Choose post office, agent point or delivery team."),
    "receipt_format_invalid": _l("Choose the 80 mm roll or A5 paper."),
    "communes_required": _l("A payout point serves at least one commune."),
    "communes_invalid": _l("Too many communes."),
    "district_invalid": _l("Give the district's name."),
    "commune_invalid": _l("A commune name is empty or too long."),
    "full_name_invalid": _l(
        "The full name may contain only letters, spaces, dots, dashes and apostrophes."
    ),
    "period_invalid": _l("The period must be written YYYY-MM, e.g. 2021-10."),
    "period_closed": _l("This payment period is closed."),
    "period_not_found": _l("There is no such payment period."),
    "roster_file_type": _l("Choose a .csv or .xlsx file exported from the ministry's system."),
    "roster_file_empty": _l("The file is empty."),
    "roster_file_encoding": _l('The file is not UTF-8 text. In Excel, save it as "CSV UTF-8".'),
    "roster_file_too_big": _l("The file has too many rows."),
    "roster_file_columns": _l("These required columns are missing: %(detail)s."),
    "roster_file_duplicate_column": _l("The column %(detail)s appears twice."),
    "roster_file_unreadable": _l(
        "This file cannot be read as a roster. Export the list again as .xlsx or CSV UTF-8."
    ),
    "verification_failed.id_mismatch": _l(
        "The ID number does not match the record. Check the card and try again."
    ),
    "verification_failed.qr_invalid": _l(
        "This is not a CCCD QR code. Scan the card again or type the ID number."
    ),
    "verification_failed.proxy_not_authorized": _l(
        "This person is not authorised to collect for the beneficiary (a child is paid "
        "only through the guardian)."
    ),
    "verification_failed.proxy_expired": _l(
        "The authorisation to collect is not valid today (expired or not yet started)."
    ),
    "verification_failed.beneficiary_inactive": _l(
        "This beneficiary is suspended, deceased or moved away: do not pay."
    ),
    "verification_expired": _l(
        "The verification has expired (10 minutes). Verify the collector again."
    ),
    "verification_not_found": _l("This verification does not exist or was made by someone else."),
    "beneficiary_not_found": _l("No beneficiary with this code in your communes."),
    "entitlement_not_found": _l("A chosen period does not belong to this beneficiary."),
    "entitlement_not_due": _l("A chosen period was cancelled and cannot be paid."),
    "entitlements_required": _l("Choose at least one period to pay."),
    "entitlements_invalid": _l("Choose periods from the list, at most 60 at once."),
    "already_paid": _l("Already paid (receipt %(receipt_no)s). Nothing was paid again."),
    "insufficient_cash": _l(
        "Not enough cash left in today's float (%(remaining)s đồng left). The supervisor "
        "must record more cash; the attempt was recorded."
    ),
    "channel_invalid": _l("Choose cash or account withdrawal."),
    "provider_ref_required": _l(
        "Enter the provider's transaction reference for an account withdrawal."
    ),
    "provider_ref_invalid": _l(
        "The transaction reference may contain only letters, digits and . _ / : -"
    ),
    "export_forbidden": _l("Exports of personal data are for auditors only."),
    "payout_not_found": _l("No such payout at your point."),
    "failure_not_found": _l("No such case at your point."),
    "assignee_invalid": _l("The owner must be an active user of the case's payout point."),
    "note_invalid": _l("Write a note of 1 to 2000 characters."),
    "receipt_not_found": _l("No such receipt."),
    "reason_required": _l("Give the reason for the reversal (5 to 500 characters)."),
    "already_reversed": _l("This payout is already reversed."),
    "advance_below_paid": _l("The advance cannot be less than the cash already paid today."),
    "day_closed": _l(
        "This day is closed: its cash advance can no longer be changed. Only reversals and "
        "new payouts still change a closed day."
    ),
    "already_closed": _l("This day is already closed."),
    "day_in_future": _l("A day can be closed only once it has begun."),
    "date_invalid": _l("Write the date as YYYY-MM-DD."),
    "point_missing": _l("Choose a payout point."),
    "commune_required": _l("Choose a commune."),
    "closing_note_invalid": _l("The note can be at most 500 characters long."),
    "amount_invalid": _l("Enter the amount in đồng, e.g. 50.000.000."),
    "date_out_of_range": _l("The date must be between %(earliest)s and %(latest)s."),
    "idempotency_key_missing": _l("The Idempotency-Key header is required."),
    "idempotency_key_invalid": _l("The Idempotency-Key must be 1 to 255 visible ASCII characters."),
    "idempotency_key_reused": _l("This Idempotency-Key was already used for another request."),
    "request_in_progress": _l("The first request with this key is still being processed."),
    "channel_not_allowed": _l(
        "This beneficiary is paid by %(method)s on the roster. Only the supervisor can pay an "
        "account holder in cash, with the reason the account cannot pay out."
    ),
    "override_reason_invalid": _l("Give the reason for paying cash (5 to 500 characters)."),
    "provider_not_connected": _l(
        "This point is not connected to a provider: withdraw in the provider's app and type "
        "its transaction reference."
    ),
    "provider_connected": _l(
        "This point withdraws from accounts through its provider: send the code (OTP) "
        "instead of typing a reference."
    ),
    "provider_url_invalid": _l("The provider address must start with http:// or https://."),
    "adapter_invalid": _l("Choose manual or http."),
    "account_missing": _l("The roster gives no account number for this beneficiary."),
    "withdrawal_open": _l(
        "A withdrawal through the provider is already open for this period: finish it or "
        "wait for the reconciliation. Nothing was paid."
    ),
    "withdrawal_not_found": _l("No such withdrawal at your point."),
    "withdrawal_ended": _l("This withdrawal has ended (%(status)s)."),
    "provider_refused": _l("The provider refused the withdrawal: %(provider_message)s"),
    "provider_refused.provider_timeout": _l(
        "The provider did not answer in time. Nothing was withdrawn; the attempt was "
        "recorded. Try again later."
    ),
    "provider_refused.credited_not_withdrawable": _l(
        "The account was credited but the money cannot be withdrawn (%(provider_code)s). "
        "The case was recorded for follow-up."
    ),
    "otp_malformed": _l("The code is 4 to 8 digits."),
    "otp_invalid": _l("The code is not right. %(attempts_left)s tries left."),
    "otp_expired": _l("The code has expired. Send a new code."),
    "otp_cooldown": _l("Wait a little before sending a new code."),
    "otp_not_received": _l(
        "No code arrived after three sends. The case was recorded for follow-up; the "
        "period can be paid another way."
    ),
    "settlement_invalid": _l("The settlement file cannot be read."),
    "settlement_columns": _l("The file needs the columns client_ref, amount, status and time."),
    "settlement_rows": _l("Rows %(rows)s are wrong; nothing was imported."),
    "settlement_empty": _l("The settlement file has no rows."),
    "settlement_already_imported": _l(
        "This file was already matched (import #%(import_id)s): nothing was done."
    ),
    # Payment verification by sampling (services/sampling.py).
    "sample_scope_required": _l("Choose a payout point or a commune, not both."),
    "sample_size_required": _l("Give either a number of payouts or a percentage, not both."),
    "sample_size_invalid": _l("The number of payouts must be a whole number from 1 to %(max)s."),
    "sample_percent_invalid": _l("The percentage must be a whole number from 1 to 100."),
    "sample_seed_invalid": _l("The seed is 1 to 64 letters, digits or . _ : -"),
    "sample_too_large": _l(
        "That sample would have %(size)s payouts; at most %(max)s. Take a smaller percentage."
    ),
    "sample_population_empty": _l(
        "No completed payout of this period to sample here: nothing was drawn."
    ),
    "commune_not_found": _l("There is no such commune."),
    "commune_ambiguous": _l("Two communes have this name: choose one from the list."),
    "sample_not_found": _l("No such sample."),
    "sample_item_not_found": _l("No such payout in this sample."),
    "already_answered": _l(
        "This payout already has its answer. Corrections go through its follow-up case."
    ),
    "sample_answer_invalid": _l("Choose received in full, not received or another amount."),
    "sample_amount_required": _l("Type the amount the person says they received."),
    "sample_amount_same": _l('That is the amount paid: answer "received in full".'),
    "sample_amount_contradicts": _l(
        'An amount was typed: answer "another amount", or clear the amount.'
    ),
    "sample_note_invalid": _l("A note has at most 500 characters."),
    # Home delivery: tablets, routes, reservations (services/delivery.py).
    "reserved_for_delivery": _l(
        "This period is reserved for home delivery by %(delivery_name)s. Nothing was paid: "
        "the supervisor must first return the person to the counter."
    ),
    "route_people_invalid": _l(
        "Some people cannot go on this route; nothing was changed. The reason is shown for each."
    ),
    "route_people_invalid.not_found": _l("not found in the communes of this point"),
    "route_people_invalid.paid_by_account": _l("paid through an account, not in cash"),
    "route_people_invalid.inactive": _l("not receiving (suspended, deceased or moved away)"),
    "route_people_invalid.nothing_due": _l("nothing is due up to this period"),
    "route_people_invalid.withdrawal_open": _l("an account withdrawal is open for a period"),
    "route_people_invalid.on_another_route": _l("already on another staff member's route"),
    "route_people_required": _l("Tick at least one person."),
    "route_too_large": _l("Too many people for one route: split them into two routes."),
    "device_name_invalid": _l("Name the tablet (1 to 80 characters)."),
    "not_delivery_user": _l("This user is not home-delivery staff."),
    "user_not_found": _l("There is no such user at this point."),
    "user_disabled": _l("This user is disabled."),
    "route_not_found": _l("No such route at your point."),
    "route_person_not_found": _l("This person is not on the route."),
    "device_not_found": _l("No such tablet at your point."),
    "device_token_required": _l("This is for a paired tablet: use its device token."),
    "no_route": _l("No route is assigned to this tablet's staff member."),
}

# What the system saw when an attempt failed (Failure.detail_code), in the reader's
# language; the parameters come from Failure.detail_params.
DETAILS = {
    "verification.beneficiary_inactive": _l("The beneficiary is %(roster_status)s on the roster."),
    "verification.qr_invalid": _l("The scanned text is not a CCCD QR code."),
    "verification.id_unknown": _l(
        "The ID shown is neither the beneficiary's nor an authorised person's."
    ),
    "verification.not_a_proxy": _l("Not an authorised person of this beneficiary."),
    "verification.proxy_expired": _l("The authorisation ended on %(valid_until)s."),
    "verification.proxy_not_yet_valid": _l("The authorisation starts on %(valid_from)s."),
    "verification.child_needs_guardian": _l("A child is paid only through the guardian."),
    "verification.no_id_on_record": _l("No ID number is on record for this person."),
    "verification.id_mismatch": _l("The ID number does not match the record."),
    "verification.birth_date_differs": _l("The card's date of birth differs from the record."),
    "verification.birth_year_differs": _l("The card's year of birth differs from the record."),
    "followup.two_missed_periods": _l(
        "Nothing collected in %(periods)s: reach them before a third month suspends them."
    ),
    "payment.system_error": _l(
        "The terminal failed while recording the payment (%(error)s); nothing was paid."
    ),
    "provider.refused": _l("The provider answered %(provider_code)s: %(provider_message)s"),
    "withdrawal.pending": _l(
        "The provider did not answer the code in time (reference %(client_ref)s): the "
        "withdrawal waits for reconciliation."
    ),
    "withdrawal.otp_not_received": _l(
        "No OTP code reached the account holder after %(sends)s sends (reference %(client_ref)s)."
    ),
    "withdrawal.possible_double_payment": _l(
        "The provider paid %(amount)s đồng (reference %(client_ref)s) for a period already "
        "paid another way: recover the money."
    ),
    "settlement.missing_at_terminal": _l(
        "The provider's settlement lists %(client_ref)s as paid (%(provider_amount)s đồng); "
        "the terminal has no completed payout for it (%(terminal_status)s)."
    ),
    "settlement.missing_at_provider": _l(
        "The terminal paid %(client_ref)s (%(terminal_amount)s đồng); the provider's "
        "settlement does not list it as paid."
    ),
    "settlement.amount_difference": _l(
        "%(client_ref)s: the terminal paid %(terminal_amount)s đồng, the provider settled "
        "%(provider_amount)s đồng."
    ),
    "settlement.double_debit": _l(
        "The provider's settlement lists %(client_ref)s as paid again (row %(row)s, "
        "%(provider_amount)s đồng): the account was debited twice."
    ),
    "daybook.drawer_difference": _l(
        "The cash counted back on %(day)s was %(returned_vnd)s đồng, %(expected_vnd)s đồng "
        "were expected: a difference of %(difference_vnd)s đồng."
    ),
    "withdrawal.amount_differs": _l(
        "%(client_ref)s: the provider moved %(provider_amount)s đồng, the periods owe "
        "%(terminal_amount)s đồng."
    ),
    "refusal.insufficient_cash": _l(
        "%(needed)s đồng needed, %(remaining)s đồng left in the float."
    ),
    "sampling.not_received": _l(
        "Sample #%(sample_id)s (%(period)s): receipt %(receipt_no)s paid %(amount)s đồng; "
        "the person says they received nothing."
    ),
    "sampling.other_amount": _l(
        "Sample #%(sample_id)s (%(period)s): receipt %(receipt_no)s paid %(amount)s đồng; "
        "the person says they received %(reported)s đồng."
    ),
    "delivery.possible_double_payment": _l(
        "A tablet paid %(amount)s đồng at home on %(paid_at)s (reference %(client_ref)s) for "
        "periods already paid another way (entitlements %(entitlement_ids)s): recover the money."
    ),
    "delivery.sync_rejected": _l(
        "A payout made on a tablet (reference %(client_ref)s) was refused when it synced "
        "(%(error)s): check with the staff member whether money was handed over."
    ),
    "delivery.absent_visits": _l(
        "Not at home at %(visits)s visits: tell the person to collect at the post office."
    ),
    "delivery.refused": _l("The person refused the payment at home%(note)s."),
    "delivery.deceased": _l("Reported deceased at a home visit%(note)s."),
}
# Parameters a detail may leave out: the sentence reads the same without them.
OPTIONAL_PARAMS = ("note",)


def _labelled(fields: dict[str, Any]) -> dict[str, Any]:
    """Return fields with domain codes (a payment method, a status) named in words."""
    from terminal.labels import METHOD, STATUS

    values = dict(fields)
    for name, table in (("method", METHOD), ("roster_status", STATUS)):
        label = next((v for k, v in table.items() if k.value == values.get(name)), None)
        if label is not None:
            values[name] = str(label)
    return values


def detail_text(code: str | None, params: dict[str, Any]) -> str:
    """Return what a failure's detail code says, in the reader's language."""
    message = DETAILS.get(code or "")
    if message is None:
        return ""
    values = _labelled(params)
    for name in OPTIONAL_PARAMS:
        given = values.get(name)
        values[name] = f" ({given})" if isinstance(given, str) and given.strip() else ""
    for name in ("valid_from", "valid_until"):
        if isinstance(values.get(name), str) and len(values[name]) == 10:
            year, month, day = values[name].split("-")
            values[name] = f"{day}/{month}/{year}"
    for name in ("needed", "remaining", "amount", "terminal_amount", "provider_amount", "reported"):
        if isinstance(values.get(name), int):
            values[name] = f"{values[name]:,}".replace(",", ".")
    try:
        return str(message) % values
    except (KeyError, TypeError, ValueError):
        return str(message) if "%(" not in str(message) else ""


def message_for_body(body: dict[str, Any]) -> str:
    """Return the translated message for a stored refusal body (an Idempotency-Key's)."""
    fields = {k: v for k, v in body.items() if k not in ("error", "message")}
    return message_for(ServiceError(str(body.get("message", "")), code=body.get("error"), **fields))


def message_for(error: ServiceError) -> str:
    """Return the translated message for a service error."""
    detail = error.fields.get("detail_code")
    reason = error.fields.get("reason")
    message = MESSAGES.get(f"{error.code}.{reason}") if reason else None
    if detail in DETAILS and message is not None and "%(" in str(DETAILS[detail]):
        # The reason says what to do; the detail adds the facts (dates, status).
        return f"{message} {detail_text(detail, error.fields)}"
    if message is None:
        message = MESSAGES.get(error.code)
    if message is None:
        return error.message
    text = str(message)
    if "%(" in text:
        try:
            return text % _labelled(error.fields)
        except (KeyError, TypeError, ValueError):
            return error.message
    return text
