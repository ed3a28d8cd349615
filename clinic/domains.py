"""Where a domain plugs into the core.

Today, the navigation, the audit log's labels and what hub staff may see of a patient are
assembled from what each domain registers here in its `init_app(app)`; the core imports no
domain. A new domain registers one `Domain` and adds nothing to `today`, `admin` or `Patient`.
"""

import functools
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Flask, current_app, g
from flask_login import current_user
from peewee import SQL, Select, fn

from clinic.db import compiled, db

EXTENSION = "clinic.domains"


@dataclass(frozen=True)
class AuditDetail:
    """A detail the audit log shows in the reader's language.

    `pattern` matches the whole stored text (written in English at the time) with named groups;
    `template` is how it reads, the groups as `%(name)s`; `codes` gives {group: {code: label}}
    for groups that hold a code (a state, a move, a role): a code not listed there means the
    pattern does not apply. A group named `detail` is itself translated (`cli: …`).
    `object_type`: only for events about that type of record.
    """

    pattern: str
    template: object
    codes: dict = field(default_factory=dict)
    object_type: str | None = None

    def read(self, text: str, object_type: str | None, core=()) -> str | None:
        if self.object_type not in (None, object_type):
            return None
        match = re.fullmatch(self.pattern, text, re.DOTALL)
        if match is None:
            return None
        values = {}
        for name, value in match.groupdict().items():
            labels = self.codes.get(name)
            if labels is not None:
                if value not in labels:
                    return None
                value = str(labels[value])
            elif name == "detail":
                value = audit_detail(value, object_type, core)
            values[name] = value
        return str(self.template) % values


@dataclass(frozen=True)
class Domain:
    """What one domain adds to the shared pages.

    - `nav_template`: its link in the navigation; it gets its count as `count`.
    - `nav_count(user)`: a query of what waits on the user (counted for the badge), or None.
    - `today(user)`: its worklist for Today as template context ({} when nothing waits), shown
      by `today_template`; `today_patients(context)`: the ids of the patients it shows there
      (Today writes them in its one audit row).
    - `hub_patient_ids(user)`: a query of patient ids a hub user may see through this domain's
      records (need to know), or None.
    - `patient_template`: its section on the patient page (given `patient`); a section that
      lists records loads them as a fragment of its own, so the page's cost stays fixed.
    - `record_types`: {object type: label} of the records its audit rows name;
      `audit_labels`: {(object type or None, action code): label} for the audit log;
      `audit_details`: the `AuditDetail`s that translate the details its audit rows carry.
    - `consent_withdrawn(user, consent)`: stops this domain's records that relied on the
      consent; returns them.
    - `patient_records(patient)`: {object type: query of ids} of this domain's records about
      the patient, so the patient's access report finds their audit events.
    - `organisation_section(organisation)`: what it administers for an organisation, as
      template context for `organisation_template` on the organisation's administration page
      ({}: nothing there); `organisation_summary(organisation)`: the same as a line of text, for
      `list-orgs` (None: nothing).
    """

    name: str
    nav_template: str | None = None
    nav_count: Callable | None = None
    today: Callable | None = None
    today_template: str | None = None
    today_patients: Callable | None = None
    hub_patient_ids: Callable | None = None
    patient_template: str | None = None
    record_types: dict = field(default_factory=dict)
    audit_labels: dict = field(default_factory=dict)
    audit_details: tuple = ()
    consent_withdrawn: Callable | None = None
    patient_records: Callable | None = None
    organisation_section: Callable | None = None
    organisation_template: str | None = None
    organisation_summary: Callable | None = None


def register(app: Flask, domain: Domain) -> None:
    app.extensions.setdefault(EXTENSION, []).append(domain)


def registered() -> list[Domain]:
    return current_app.extensions.get(EXTENSION, [])


NAV_COUNT_MAX = 99  # a badge shows "99+" beyond: counting stops there


def nav_counts() -> dict[str, int]:
    """Every domain's count of what waits on the current user (up to one more than
    NAV_COUNT_MAX), in one query per request. A domain's `nav_count` is built from the user's
    id, role and organisation (its id and kind) alone: the statement is compiled once for
    those (`compiled`), and run on every request."""
    if "nav_counts" not in g:
        user = current_user
        key = ("nav_counts", *user.reader_key)
        sql, params = compiled(key, lambda: _nav_counts_statement(user))
        g.nav_counts = {}
        if sql:
            cursor = db.execute_sql(sql, params)
            names = [column[0] for column in cursor.description]
            g.nav_counts = dict(zip(names, cursor.fetchone(), strict=True))
    return g.nav_counts


def _nav_counts_statement(user) -> Select | None:
    """One row: a column named after each domain that counts something for this user."""
    columns = []
    for domain in registered():
        query = domain.nav_count(user) if domain.nav_count else None
        if query is not None:
            first = query.select(SQL("1")).order_by().limit(NAV_COUNT_MAX + 1)
            columns.append(Select([first.alias("w")], [fn.COUNT(SQL("*"))]).alias(domain.name))
    return Select(columns=columns) if columns else None


def count_label(count: int | None) -> str:
    """A count as a badge shows it: "99+" past NAV_COUNT_MAX."""
    return f"{NAV_COUNT_MAX}+" if count and count > NAV_COUNT_MAX else str(count or 0)


def nav_version() -> str:
    """Changes whenever a count in the navigation changes: the nav poll answers 204 otherwise."""
    return ".".join(f"{name}{count}" for name, count in nav_counts().items())


def today_sections(user) -> list[tuple[str, dict, list[int]]]:
    """(template, context, ids of the patients shown) of each domain with something on Today
    for this user."""
    sections = []
    for domain in registered():
        context = domain.today(user) if domain.today else {}
        if context:
            shown = list(domain.today_patients(context)) if domain.today_patients else []
            sections.append((domain.today_template, context, shown))
    return sections


def patient_sections() -> list[str]:
    """The templates the domains add to the patient page, in registration order."""
    return [d.patient_template for d in registered() if d.patient_template]


def organisation_sections(organisation) -> tuple[list[str], dict]:
    """The templates the domains add to an organisation's administration page, and their
    context."""
    templates, context = [], {}
    for domain in registered():
        if domain.organisation_section and (values := domain.organisation_section(organisation)):
            templates.append(domain.organisation_template)
            context |= values
    return templates, context


def organisation_summaries(organisation) -> list[str]:
    """What each domain holds for this organisation, a line each (`list-orgs`)."""
    lines = (d.organisation_summary(organisation) for d in registered() if d.organisation_summary)
    return [line for line in lines if line]


def patient_records(patient) -> dict:
    """{object type: query of ids} of every domain's records about this patient."""
    records = {}
    for domain in registered():
        if domain.patient_records:
            records |= domain.patient_records(patient)
    return records


def hub_visibility(patient_id_field, user):
    """The condition under which a hub user sees a patient: some domain's record allows it."""
    conditions = []
    for domain in registered():
        ids = domain.hub_patient_ids(user) if domain.hub_patient_ids else None
        if ids is not None:
            conditions.append(patient_id_field.in_(ids))
    return functools.reduce(operator.or_, conditions) if conditions else SQL("1 = 0")


def consent_withdrawn(user, consent) -> list:
    """Every domain stops what relied on a consent just withdrawn (in the same transaction)."""
    stopped = []
    for domain in registered():
        if domain.consent_withdrawn:
            stopped += domain.consent_withdrawn(user, consent)
    return stopped


def audit_label(action: str, object_type: str | None = None) -> str:
    """The action in the reader's language; an unknown code is shown as it is."""
    for domain in registered():
        label = domain.audit_labels.get((object_type, action)) or domain.audit_labels.get(
            (None, action)
        )
        if label:
            return str(label)
    return action


def record_type_label(code: str) -> str | None:
    """The label a domain gives its records' object type (None: no domain names it)."""
    for domain in registered():
        if code in domain.record_types:
            return str(domain.record_types[code])
    return None


def audit_detail(detail: str | None, object_type: str | None = None, core=()) -> str:
    """An audit row's detail in the reader's language: the first of `core` (the core's own
    `AuditDetail`s) and then of the domains' that reads it; any other detail as written."""
    if not detail:
        return ""
    for entry in (*core, *(d for domain in registered() for d in domain.audit_details)):
        if (read := entry.read(detail, object_type, core)) is not None:
            return read
    return detail
