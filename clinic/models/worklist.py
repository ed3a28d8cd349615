"""A worklist read from its indexes, so a list costs the same over ten rows or a million.

A list is cut into segments whose rows its order keeps together (what is overdue, the open rows
by priority and age, the closed rows newest first), each on one side of the list (what an
organisation received, sent, or owns). Each segment's rows come in the order of one index
(`order`), so the database walks that index and stops at the page end; a segment that can only
follow another (`after`) is not read at all when that one already fills the page. One statement
merges the segments, puts the at most a few hundred rows in the list's order and joins what the
rows show.
"""

import functools
import hashlib
import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from peewee import OP, SQL, Case, Expression, Select, fn

from clinic.db import compiled_rows


@dataclass(frozen=True)
class Segment:
    """Rows matching `where`, in the index order `order`; read only while the segments
    numbered `after` (those before it on the same side) do not fill the page together."""

    where: Expression
    order: tuple
    after: tuple[int, ...] = ()


@dataclass(frozen=True)
class Worklist:
    """Segments of `model`'s rows; `ordered(query)` puts a query in the list's order and
    `joined(query)` adds what a row shows; `changed(row)` is what a row contributes to the
    list's version (its id, last change, whatever else of it the page shows changing with
    time), read from the `version_columns` alone."""

    model: type
    segments: tuple[Segment, ...]
    ordered: Callable
    joined: Callable
    version_columns: tuple
    changed: Callable

    def rows(self, count: int | None):
        """The first `count` rows (None: all), in the list's order, joined."""
        query = self.ordered(self.joined(self._matching(self.model.select(), count)))
        return query if count is None else query.limit(count)

    def page(self, number: int, size: int, key: tuple | None = None) -> tuple[list, str]:
        """Page `number` of `size` rows and one more (is there a next page?), and the version
        of what that page shows. `key`: all the list is built from (`clinic.db.compiled`), its
        statement then compiled once."""

        def query():
            return self.rows(number * size + 1).limit(size + 1).offset((number - 1) * size)

        rows = compiled_rows((*key, "page", number, size), query) if key else list(query())
        return rows, self._version(rows)

    def version(self, number: int, size: int, key: tuple | None = None) -> str:
        """What `page` would return as the version, without joining or loading the rows: a
        poll answers "nothing changed" from it."""

        def query():
            matching = self._matching(self.model.select(*self.version_columns), number * size + 1)
            return self.ordered(matching).limit(size + 1).offset((number - 1) * size)

        rows = compiled_rows((*key, "version", number, size), query) if key else list(query())
        return self._version(rows)

    def __iter__(self) -> Iterator:
        return iter(self.rows(None))

    def _version(self, rows: list) -> str:
        seen = repr([self.changed(row) for row in rows]).encode()
        return f"{len(rows)}-{hashlib.blake2b(seen, digest_size=8).hexdigest()}"

    def _matching(self, query, count: int | None):
        """The query narrowed to the first `count` rows of every segment (None: all)."""
        segments = self.segments_for(count)
        ids = [self.model.select(segment.c.id).from_(segment) for segment in segments]
        ids = self.model.id.in_(functools.reduce(operator.or_, ids))
        return query.where(ids).with_cte(*segments)

    def segments_for(self, count: int | None) -> list:
        """Each segment's first `count` rows (their ids), as the statement's CTEs `w0`, `w1` …:
        a segment's guard counts the rows of those it follows without reading them again."""
        model, segments = self.model, []
        for number, segment in enumerate(self.segments):
            query = model.select(model.id).where(segment.where).order_by(*segment.order)
            if count is not None:
                query = query.limit(self._limit(count, [segments[i] for i in segment.after]))
            segments.append(query.cte(f"w{number}"))
        return segments

    @staticmethod
    def _limit(count: int, before: list):
        """`count`, or 0 once the segments `before` fill the page: the database then reads
        no row of this one (a condition in WHERE would still be tested on every index row)."""
        if not before:
            return count
        counts = [Select([segment], [fn.COUNT(SQL("*"))]) for segment in before]
        filled = functools.reduce(lambda a, b: Expression(a, OP.ADD, b), counts)
        return Case(None, [(Expression(filled, OP.LT, count), count)], 0)
