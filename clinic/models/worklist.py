"""A worklist read from its indexes, so a list costs the same over ten rows or a million.

A list is cut into segments whose rows its order keeps together (what is overdue, the open rows
by priority and age, the closed rows newest first), each on one side of the list (what an
organisation received, sent, or owns). Each segment's rows come in the order of one index
(`order`), so the database walks that index and stops at the page end; a segment that can only
follow another (`after`) is not read at all when that one already fills the page. One statement
merges the segments, keeps the page's ids in the list's order (at most a few hundred rows), and
only then joins what those rows show.

What is asked of each row the walk yields (`check`: need to know, overdue or not) stays out of
the walk's WHERE: PostgreSQL multiplies the selectivities of conditions that go together (open,
owned, overdue) and of the need-to-know ORs, expects a handful of rows where there are
thousands, and then reads and sorts the whole index range instead of walking it to the page
end. Asked of each walked row by its primary key (EXISTS … OFFSET 0), the check cannot change
how the walk is planned.
"""

import functools
import hashlib
import operator
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from peewee import OP, SQL, Case, Expression, Select, fn

from clinic.db import compiled_rows, row_exists


@dataclass(frozen=True)
class Segment:
    """Rows matching `where` (what the index walk tests) and `check` (asked of each row it
    yields), in the index order `order`; read only while the segments numbered `after` (those
    before it on the same side) do not fill the page together."""

    where: Expression
    order: tuple
    after: tuple[int, ...] = ()
    check: Expression | None = None


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

    def rows(self, count: int | None, skip: int = 0):
        """`count` rows (None: all) after the first `skip`, in the list's order, joined. The
        page's ids come first (a CTE), the joins after, from those few ids: PostgreSQL plans
        them within its default join search in milliseconds (joined around the whole list, ten
        tables needed a wider search, 100 ms to a second of planning at 200,000 referrals)."""
        model = self.model
        read = None if count is None else skip + count
        segments = self.segments_for(read)
        ids = self.ordered(model.select(model.id).where(self._among(segments, read)))
        ids = (ids if count is None else ids.limit(count).offset(skip)).cte("page")
        query = model.select().join(ids, on=(model.id == ids.c.id)).switch(model)
        return self.ordered(self.joined(query)).with_cte(*segments, ids)

    def page(self, number: int, size: int, key: tuple | None = None) -> tuple[list, str]:
        """Page `number` of `size` rows and one more (is there a next page?), and the version
        of what that page shows. `key`: all the list is built from (`clinic.db.compiled`), its
        statement then compiled once."""

        def query():
            return self.rows(size + 1, skip=(number - 1) * size)

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
        return query.where(self._among(segments, count)).with_cte(*segments)

    def _among(self, segments: list, count: int | None) -> Expression:
        """SQL: the row is one of the segments' rows (each at most `count`). The LIMIT changes
        no row; it tells PostgreSQL how few there are (it guesses a tenth of an index range for
        a guarded segment), so it looks them up by id rather than hash the whole table."""
        if not segments:  # the filters rule out every part of every side
            return self.model.id.in_([])
        ids = [self.model.select(segment.c.id).from_(segment) for segment in segments]
        ids = functools.reduce(operator.or_, ids)
        return self.model.id.in_(ids if count is None else ids.limit(count * len(segments)))

    def segments_for(self, count: int | None) -> list:
        """Each segment's first `count` rows (their ids), as the statement's CTEs `w0`, `w1` …:
        a segment's guard counts the rows of those it follows without reading them again."""
        model, segments = self.model, []
        for number, segment in enumerate(self.segments):
            query = model.select(model.id).where(segment.where).order_by(*segment.order)
            if segment.check is not None:  # the walk in a subquery, the check asked of its rows
                # (a filter over the walk: the rows keep its order up to the LIMIT)
                walk = query.alias(f"s{number}")
                row = model.select(SQL("1")).where((model.id == walk.c.id) & segment.check)
                query = model.select(walk.c.id).from_(walk).where(row_exists(row))
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
