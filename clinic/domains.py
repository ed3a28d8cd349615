"""Where a domain plugs into the core.

Today, the navigation, the audit log's labels and what hub staff may see of a patient are
assembled from what each domain registers here in its `init_app(app)`; the core imports no
domain. A new domain registers one `Domain` and adds nothing to `today`, `admin` or `Patient`.
"""

import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass, field

from flask import Flask, current_app, g
from flask_login import current_user
from peewee import SQL, Select, fn

from clinic.db import db

EXTENSION = "clinic.domains"


@dataclass(frozen=True)
class Domain:
    """What one domain adds to the shared pages.

    - `nav_template`: its link in the navigation; it gets its count as `count`.
    - `nav_count(user)`: a query of what waits on the user (counted for the badge), or None.
    - `today(user)`: its worklist for Today as template context ({} when nothing waits), shown
      by `today_template`.
    - `hub_patient_ids(user)`: a query of patient ids a hub user may see through this domain's
      records (need to know), or None.
    - `audit_labels`: {(object type or None, action code): label} for the audit log.
    """

    name: str
    nav_template: str | None = None
    nav_count: Callable | None = None
    today: Callable | None = None
    today_template: str | None = None
    hub_patient_ids: Callable | None = None
    audit_labels: dict = field(default_factory=dict)


def register(app: Flask, domain: Domain) -> None:
    app.extensions.setdefault(EXTENSION, []).append(domain)


def registered() -> list[Domain]:
    return current_app.extensions.get(EXTENSION, [])


def nav_counts() -> dict[str, int]:
    """Every domain's count of what waits on the current user, in one query per request."""
    if "nav_counts" not in g:
        queries = {}
        for domain in registered():
            query = domain.nav_count(current_user) if domain.nav_count else None
            if query is not None:
                queries[domain.name] = query.select(fn.COUNT(SQL("*"))).order_by()
        g.nav_counts = {}
        if queries:
            columns = [query.alias(f"n{i}") for i, query in enumerate(queries.values())]
            row = Select(columns=columns).bind(db).tuples().get()
            g.nav_counts = dict(zip(queries, row, strict=True))
    return g.nav_counts


def nav_version() -> str:
    """Changes whenever a count in the navigation changes: the nav poll answers 204 otherwise."""
    return ".".join(f"{name}{count}" for name, count in nav_counts().items())


def today_sections(user) -> list[tuple[str, dict]]:
    """(template, context) of each domain with something on Today for this user."""
    sections = []
    for domain in registered():
        context = domain.today(user) if domain.today else {}
        if context:
            sections.append((domain.today_template, context))
    return sections


def hub_visibility(patient_id_field, user):
    """The condition under which a hub user sees a patient: some domain's record allows it."""
    conditions = []
    for domain in registered():
        ids = domain.hub_patient_ids(user) if domain.hub_patient_ids else None
        if ids is not None:
            conditions.append(patient_id_field.in_(ids))
    return functools.reduce(operator.or_, conditions) if conditions else SQL("1 = 0")


def audit_label(action: str, object_type: str | None = None) -> str:
    """The action in the reader's language; an unknown code is shown as it is."""
    for domain in registered():
        label = domain.audit_labels.get((object_type, action)) or domain.audit_labels.get(
            (None, action)
        )
        if label:
            return str(label)
    return action
