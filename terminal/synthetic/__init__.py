"""Synthetic beneficiaries: realistic people, benchmark data at country scale, the pilot's demo.

Three verbs:

- ``synthetic_people`` yields people as roster rows (the keys of roster-format.md),
  deterministic for a seed, with the pilot's proportions.
- ``generate`` writes N of them (up to millions) with K months of history: entitlements,
  and for every month but the last, payouts with lines and gapless receipts.
- ``demo_roster`` writes the 2021 pilot's two districts (Hương Thủy, Phú Lộc) with one open
  period, for ``payout-terminal seed-demo``.

The package invents people, never rules: receipt numbers and channels come from
``terminal.rules``, name keys and CCCD digits from ``terminal.text``, periods, entitlements
and data-error cases from ``terminal.services.roster``, the wording of a data error and who
counts as a guardian from ``terminal.services.roster_file``, a proxy's validity from the
``Proxy`` model. Modules: ``names`` (name words and drawing a name), ``people`` (roster
rows), ``places`` (the pilot's districts; areas, points and staff), ``loading`` (bulk
inserts of people, periods, payouts and receipts) and ``build`` (the two writing verbs).
Money is whole đồng in ``int``; the floats are probabilities and shares only.
"""

from terminal.synthetic.build import GenerateReport, demo_roster, generate
from terminal.synthetic.names import RELATIONSHIPS
from terminal.synthetic.people import MONTHLY_VND, OTHER_PROVINCE_CODES, synthetic_people
from terminal.synthetic.places import PILOT_DISTRICTS, PaymentMix, PilotDistrict

__all__ = [
    "MONTHLY_VND",
    "OTHER_PROVINCE_CODES",
    "PILOT_DISTRICTS",
    "RELATIONSHIPS",
    "GenerateReport",
    "PaymentMix",
    "PilotDistrict",
    "demo_roster",
    "generate",
    "synthetic_people",
]
