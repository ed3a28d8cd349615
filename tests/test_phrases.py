"""The bilingual phrase library: two-person rule, versions that are never rewritten."""

import pytest

from clinic.models import APPROVED, DRAFT, SUPERSEDED, Phrase
from clinic.workflow import Refused

from conftest import user

PHARMACIST_ONE, PHARMACIST_TWO = "pharmacist@hub.demo", "pharmacist2@hub.demo"


def test_a_phrase_is_a_draft_until_a_second_pharmacist_approves_it(app, demo_data):
    with app.test_request_context():
        writer, second = user(PHARMACIST_ONE), user(PHARMACIST_TWO)
        phrase = Phrase.write(writer, "dose", "Take 3 tablets", "每次服三粒", "每次服三片")
        assert phrase.state == DRAFT and phrase.lineage == phrase.id
        with pytest.raises(Refused):
            Phrase.usable_or_refuse(phrase.id, "dose")
        with pytest.raises(Refused, match="second pharmacist"):
            phrase.approve(writer)
        phrase.approve(second)
        assert Phrase.usable_or_refuse(phrase.id, "dose").state == APPROVED


def test_a_changed_phrase_is_a_new_version_and_the_old_one_stays_until_approved(app, demo_data):
    with app.test_request_context():
        writer, second = user(PHARMACIST_ONE), user(PHARMACIST_TWO)
        first = Phrase.write(writer, "dose", "Take 3 tablets", "每次服三粒", "每次服三片")
        first.approve(second)
        revised = first.revise(second, "Take three tablets", "每次服三粒", "每次服三片")
        assert (revised.version, revised.state, revised.lineage) == (2, DRAFT, first.id)
        assert Phrase.usable_or_refuse(first.id, "dose").text_en == "Take 3 tablets"
        revised.approve(writer)
        assert Phrase.get_by_id(first.id).state == SUPERSEDED
        assert Phrase.get_by_id(first.id).text_en == "Take 3 tablets"  # never rewritten
        with pytest.raises(Refused, match="newer approved version"):
            Phrase.usable_or_refuse(first.id, "dose")
