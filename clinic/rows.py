"""Joined rows of a kept statement made into model instances, as peewee makes them, faster.

peewee's `ModelCursorWrapper` sets each column through the field's descriptor, which also
marks the field changed, then forgets the changes again; a list row of ten joined records has
a hundred columns. Here the column-to-record mapping peewee worked out on the statement's
first run is kept, and a column of a plain field goes straight into its record's data: for a
new instance with nothing loaded yet, that is what the descriptor does. Anything else (an
alias, a property) is set through `setattr`, and the records are linked by peewee's rules.
"""

import inspect

from peewee import (
    AutoField,
    BigIntegerField,
    CharField,
    FieldAccessor,
    FieldAlias,
    ForeignKeyAccessor,
    ForeignKeyField,
    IntegerField,
    ModelCursorWrapper,
    TextField,
)

PLAIN_ACCESSORS = (FieldAccessor, ForeignKeyAccessor)
# Fields whose python_value returns a value of this type unchanged (int(n) is n, a str is
# returned as it is).
AS_DRIVER_GIVES = {
    AutoField: int, IntegerField: int, BigIntegerField: int, CharField: str, TextField: str,
}  # fmt: skip


class JoinedRows:
    """How the rows of one statement become instances (from a wrapper that has made one)."""

    def __init__(self, wrapper: ModelCursorWrapper) -> None:
        self.model = wrapper.model
        self.constructors = [
            (key, make) for key, make, is_model in wrapper._constructor_list if is_model
        ]
        classes = dict(self.constructors)
        self.columns = []
        for index, key, column, convert in wrapper._row_spec:
            plain = _plain(classes.get(key, self.model), column)
            self.columns.append((index, key, column, *_conversion(convert), plain))
        self.links = wrapper.src_to_dest
        self.reachable = wrapper._dest_reachable

    @staticmethod
    def fit(wrapper) -> bool:
        """Rows this can make: joined records, with nothing of them read into a dict (a
        joined list of ids, as a page's, gives no column and is left out)."""
        if type(wrapper) is not ModelCursorWrapper:
            return False
        dicts = {key for key, _make, is_model in wrapper._constructor_list if not is_model}
        used = {key for _index, key, _column, _convert in wrapper._row_spec}
        used |= {end for link in wrapper.src_to_dest for end in (link[0], link[2])}
        return not dicts & used

    def make(self, rows) -> list:
        return [self._instance(row) for row in rows]

    def _instance(self, row):
        objects = {key: _empty(make) for key, make in self.constructors}
        root = objects[self.model]
        loaded = set()
        for index, key, column, convert, already, plain in self.columns:
            value = row[index]
            if value is not None:
                loaded.add(key)
            if convert is not None and type(value) is not already:
                value = convert(value)
            instance = objects.get(key, root)
            if plain:
                instance.__data__[column] = value
            else:
                setattr(instance, column, value)
        self._link(objects, loaded)
        for instance in objects.values():
            instance._dirty.clear()
        return root

    def _link(self, objects: dict, loaded: set) -> None:
        """Each joined record on the attribute of the record it was joined from (peewee's
        rules: an outer join that found nothing is None; an empty inner one is left out)."""
        for source, attr, dest, _is_dict, is_outer, is_fk in self.links:
            if dest not in objects:
                continue
            joined = objects[dest]
            further = dest in self.reachable and bool(self.reachable[dest] & loaded)
            if dest not in loaded and not further:
                if not is_outer:
                    continue
                joined = None
            if source not in loaded and dest not in loaded and is_outer:
                continue
            instance = objects.get(source)
            if is_fk and joined is None:
                instance.__rel__[attr] = None  # known to be absent; the id stays
            else:
                setattr(instance, attr, joined)


def _empty(model: type):
    """A new instance with nothing loaded, as `model(__no_default__=True)` makes it."""
    instance = model.__new__(model)
    instance.__data__, instance._dirty, instance.__rel__ = {}, set(), {}
    return instance


def _conversion(convert) -> tuple:
    """(the converter, the type a value needs no converting from): a field of an aliased
    record converts as its field does, and an integer or text field's value that the driver
    gave as int or str is one already (peewee's int(value) or str(value) would return it)."""
    field = getattr(convert, "__self__", None)
    if isinstance(field, FieldAlias):
        field, convert = field.field, field.field.python_value
    if isinstance(field, ForeignKeyField):
        field = field.rel_field
    return convert, AS_DRIVER_GIVES.get(type(field))


def _plain(model: type, column: str) -> bool:
    """A column that is one of the model's own fields, set by its plain descriptor."""
    return type(inspect.getattr_static(model, column, None)) in PLAIN_ACCESSORS


def same_rows(made: list, expected: list) -> bool:
    """Instances of the same models with the same data and the same records joined to them."""
    return len(made) == len(expected) and all(map(_same, made, expected))


def _same(made, expected) -> bool:
    if made is None or expected is None:
        return made is expected
    return (
        type(made) is type(expected)
        and made.__data__ == expected.__data__
        and not made._dirty
        and made.__rel__.keys() == expected.__rel__.keys()
        and all(_same(made.__rel__[name], expected.__rel__[name]) for name in made.__rel__)
    )
