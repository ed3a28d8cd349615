"""Drug consultations: clinics ask, the hub's pharmacists answer with bilingual guidance.

The catalogue part (drugs and the phrase library) registers here as `catalogue_bp`; the
consultations themselves register beside it.
"""

from flask import Flask

from clinic.domains import Domain, register
from clinic.translation import lazy_gettext as _l

CATALOGUE_RECORD_TYPES = {"drug": _l("Drug"), "phrase": _l("Phrase")}
CATALOGUE_AUDIT_LABELS = {
    ("drug", "drug_add"): _l("Drug added to the catalogue"),
    ("drug", "drug_change"): _l("Drug changed in the catalogue"),
    ("phrase", "phrase_write"): _l("Phrase written"),
    ("phrase", "phrase_revise"): _l("New version of a phrase written"),
    ("phrase", "phrase_approve"): _l("Phrase approved"),
}


def init_app(app: Flask) -> None:
    from clinic.consultations.catalogue_views import catalogue_bp, nav_count

    app.register_blueprint(catalogue_bp)
    register(
        app,
        Domain(
            name="drug_catalogue",
            nav_template="consultations/drugs/_nav.html",
            nav_count=nav_count,
            record_types=CATALOGUE_RECORD_TYPES,
            audit_labels=CATALOGUE_AUDIT_LABELS,
        ),
    )
    from clinic.consultations.views import init_consultations

    init_consultations(app)
