"""Per-request work done once a process: aliases whose field classes peewee makes once
(`alias`)."""

import peewee


def test_a_list_page_makes_no_field_classes_once_it_ran(coordinator, monkeypatch):
    coordinator.get("/referrals/")
    made = []
    create = peewee.FieldAlias.create.__func__
    monkeypatch.setattr(
        peewee.FieldAlias,
        "create",
        classmethod(lambda cls, *a: made.append(a) or create(cls, *a)),
    )
    assert coordinator.get("/referrals/").status_code == 200
    assert made == []
