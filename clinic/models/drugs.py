"""The hub's drug catalogue (drug consultations).

A drug is found by any of its names in either script: its names are folded into search keys
the way patient names are (`clinic.models.patients`), so 阿司匹林 finds 阿士匹靈's entry and
"pana" finds Panadol.
"""

from peewee import (
    SQL,
    BooleanField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    TextField,
    fn,
)

from clinic.db import db, utcnow, write_transaction
from clinic.models.core import (
    ADMIN,
    PHARMACIST,
    AuditEvent,
    BaseModel,
    ClinicHub,
    Organisation,
    User,
)
from clinic.models.patients import (
    CJK,
    NOT_WORD,
    SearchKeyField,
    english_key,
    english_words,
    fold_chinese,
    prefix_range,
)
from clinic.translation import lazy_gettext as _l
from clinic.workflow import Conflict

KEEPERS = (PHARMACIST, ADMIN)  # of a hub: they keep its drug catalogue

__all__ = ["DRUG_MODELS", "KEEPERS", "Drug", "DrugSearchKey", "catalogue_hubs"]

DRUG_SEARCH_LIMIT = 10
KEY_LENGTH = 100

# Field limits, shared with the forms (over-long text is refused with the limit).
GENERIC_MAX, BRANDS_MAX, CHINESE_MAX, REG_NO_MAX, NOTES_MAX = 200, 400, 200, 40, 2000


def drug_search_tokens(query: str) -> list[str]:
    """What the user typed as folded key prefixes (at most four words): Chinese folded to
    Simplified without spaces, English upper case, digits kept ("B12", "500")."""
    query = (query or "").strip()[:KEY_LENGTH]
    tokens = []
    for word in NOT_WORD.split(query):
        if word:
            tokens.append(fold_chinese(word) if CJK.search(word) else word.upper())
    return tokens[:4]


def catalogue_hubs(user: User):
    """The hubs whose catalogue this user reads: their own hub; a clinic's, the hubs it
    refers to (as a query of ids)."""
    if user.organisation.is_hub:
        return [user.organisation_id]
    return ClinicHub.select(ClinicHub.hub).where(ClinicHub.clinic == user.organisation_id)


def _in_hubs(field, hubs):
    return field == hubs[0] if isinstance(hubs, list) and len(hubs) == 1 else field.in_(hubs)


class Drug(BaseModel):
    """A drug of a hub's catalogue (each hub keeps its own; its clinics search it)."""

    hub = ForeignKeyField(Organisation, backref="+")
    generic_name = CharField(max_length=GENERIC_MAX)
    brand_names = CharField(max_length=BRANDS_MAX, default="")  # English, comma separated
    name_hant = CharField(max_length=CHINESE_MAX, default="")
    name_hans = CharField(max_length=CHINESE_MAX, default="")
    hk_registered = BooleanField(default=False)
    hk_reg_no = CharField(max_length=REG_NO_MAX, null=True)
    mainland_marketed = BooleanField(default=False)
    gba_listed = BooleanField(default=False)  # 港澳藥械通
    notes = TextField(default="")
    active = BooleanField(default=True)
    # The generic name as a duplicate-check key (case, punctuation and word order ignored).
    generic_key = CharField(max_length=GENERIC_MAX, default="")
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)
    revision = IntegerField(default=1)  # the edit form sends back the one it showed

    class Meta:
        indexes = ((("hub", "generic_key"), False),)

    EDITABLE = (
        "generic_name",
        "brand_names",
        "name_hant",
        "name_hans",
        "hk_registered",
        "hk_reg_no",
        "mainland_marketed",
        "gba_listed",
        "notes",
        "active",
    )

    @property
    def brands(self) -> list[str]:
        return [b.strip() for b in (self.brand_names or "").split(",") if b.strip()]

    def names(self) -> dict:
        """The drug's name for each language of the app."""
        english = self.generic_name
        if self.brands:
            english = f"{english} ({', '.join(self.brands)})"
        return {
            "en": english,
            "zh_Hant_HK": self.name_hant or self.name_hans,
            "zh_Hans_CN": self.name_hans or self.name_hant,
        }

    def name_in(self, locale) -> str:
        """The name for a reader of `locale`; English when the catalogue has no Chinese."""
        locale = str(locale or "en")
        names = self.names()
        if locale.startswith("zh_Hans"):
            return names["zh_Hans_CN"] or self.generic_name
        if locale.startswith("zh"):
            return names["zh_Hant_HK"] or self.generic_name
        return self.generic_name

    # Search -----
    def search_keys(self) -> set[str]:
        keys = set()
        for chinese in (self.name_hant, self.name_hans):
            for part in NOT_WORD.split(chinese or ""):
                folded = fold_chinese(part)
                keys.update(folded[i:] for i in range(len(folded)))  # 阿司匹林, 司匹林 …
        for name in (self.generic_name, *self.brands):
            words = english_words(name)
            keys.update(words)
            if len(words) > 1:
                keys.add(" ".join(words))
        return {k[:KEY_LENGTH] for k in keys if k}

    def refresh_search_keys(self) -> None:
        DrugSearchKey.delete().where(DrugSearchKey.drug == self.id).execute()
        rows = [
            {"drug": self.id, "hub": self.hub_id, "key": key} for key in sorted(self.search_keys())
        ]
        if rows:
            DrugSearchKey.insert_many(rows).execute()

    def save(self, *args, **kwargs):
        """Saved with its duplicate-check key and search keys, whoever saves it."""
        self.generic_key = english_key(self.generic_name)[:GENERIC_MAX]
        with db.atomic():
            saved = super().save(*args, **kwargs)
            self.refresh_search_keys()
        return saved

    @classmethod
    def matching_ids(cls, hubs, tokens: list[str]):
        """Ids of drugs (of these hubs; None: of every hub) with a key starting with every
        token: the longest token is a range of a key index, each other one an index seek."""
        first, *others = sorted(tokens, key=len, reverse=True)
        key = DrugSearchKey.alias("k1")
        query = key.select(key.drug).where(prefix_range(key.key, first))
        if hubs is not None:
            query = query.where(_in_hubs(key.hub, hubs))
        for token in others:
            other = DrugSearchKey.alias()
            query = query.where(
                fn.EXISTS(
                    other.select(SQL("1")).where(
                        other.drug == key.drug, prefix_range(other.key, token)
                    )
                )
            )
        return query

    @classmethod
    def search(cls, query: str, limit: int = DRUG_SEARCH_LIMIT, user: User | None = None):
        """Active drugs with a name starting with every typed word, in either script (one
        query): of the user's catalogues (`catalogue_hubs`), or of every hub without a user;
        an empty query matches nothing."""
        return (
            cls.select()
            .where(cls.active, cls.id.in_(cls.search_ids(query, user)))
            .order_by(cls.generic_name, cls.id)
            .limit(limit)
        )

    @classmethod
    def search_ids(cls, query: str, user: User | None = None):
        """The ids of the drugs (active or not) a search finds, as a subquery (for filtering
        other records by drug, e.g. past answers)."""
        tokens = drug_search_tokens(query)
        if not tokens:
            return cls.select(cls.id).where(SQL("1 = 0"))
        return cls.matching_ids(catalogue_hubs(user) if user else None, tokens)

    @classmethod
    def visible_to(cls, user: User):
        """The drugs this user may open: the catalogue of their hub (keepers only)."""
        if user.organisation.is_hub and user.has_role(*KEEPERS):
            return cls.select().where(cls.hub == user.organisation_id)
        return cls.select().where(SQL("1 = 0"))

    @classmethod
    def catalogue(cls, user: User, query: str = ""):
        """The catalogue page: the hub's drugs (or the matches of `query`), by generic name."""
        tokens = drug_search_tokens(query)
        rows = cls.visible_to(user).order_by(cls.generic_name, cls.id)
        if tokens:
            rows = rows.where(cls.id.in_(cls.matching_ids([user.organisation_id], tokens)))
        return rows

    @classmethod
    def same_generic(cls, hub_id: int, generic_name: str, exclude=None) -> "Drug | None":
        key = english_key(generic_name)[:GENERIC_MAX]
        query = cls.select().where(cls.hub == hub_id, cls.generic_key == key)
        if exclude:
            query = query.where(cls.id != exclude)
        return query.first()

    # Writing -----
    @classmethod
    def add(cls, user: User, fields: dict) -> "Drug":
        with write_transaction():
            drug = cls(hub=user.organisation_id, **fields)
            drug.save()
            AuditEvent.write(user, "drug_add", "drug", drug.id, drug.generic_name)
        return drug

    def change(self, user: User, fields: dict, seen_revision: int | None = None) -> None:
        """Save the fields, if nobody saved the drug since `seen_revision` was shown
        (compare-and-set); Conflict otherwise, and this object then holds their version."""
        cls = type(self)
        seen = self.revision if seen_revision is None else seen_revision
        values = {**fields, "updated_at": utcnow(), "revision": seen + 1}
        values["generic_key"] = english_key(values.get("generic_name", self.generic_name))
        with write_transaction():
            if cls.update(**values).where(cls.id == self.id, cls.revision == seen).execute() != 1:
                self.__data__.update(cls.get_by_id(self.id).__data__)
                raise Conflict(_l("Someone else saved this drug meanwhile: check what they "
                                  "saved, then save yours again."))  # fmt: skip
            self.__data__.update(values)
            self.refresh_search_keys()
            AuditEvent.write(user, "drug_change", "drug", self.id, self.generic_name)


class DrugSearchKey(BaseModel):
    """One folded key a drug is found by: a Chinese name from any character on, a word."""

    drug = ForeignKeyField(Drug, on_delete="CASCADE", index=False)
    hub = ForeignKeyField(Organisation, index=False)
    key = SearchKeyField(max_length=KEY_LENGTH)

    class Meta:
        indexes = (
            (("hub", "key", "drug"), False),  # search: a prefix is a range of this index
            (("key", "drug"), False),  # the same across every hub (the past-answers library)
            (("drug", "key"), False),  # the other words of a query; refresh by drug
        )


DRUG_MODELS = [Drug, DrugSearchKey]
