"""Patient search latency (p50/p95) at 100k and 1M patients, on SQLite and PostgreSQL.

Run by `make bench`. For each engine and size it builds a throw-away database with the app's own
schema (init_schema), bulk-loads synthetic patients with the app's own search keys (in
transactions; COPY on PostgreSQL), checks the query plans use the indexes (no full table scan),
times `Patient.search()` for a mix of typed queries scoped to one clinic, and writes the figures
to the "Patient search" section of docs/benchmarks.md.

Sizes: 100k = one clinic of 100,000 patients; 1M = ten clinics of 100,000 (the searched clinic
is one of them; the other nine are server-side copies of its register under other clinic ids).
PostgreSQL: BENCH_PG_URL (default postgresql://postgres@127.0.0.1:5432/test); a database
`clinic_bench` is created and dropped there. BENCH_SIZES=100000 runs one size only.
"""

import datetime as dt
import functools
import io
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg2
from peewee import fn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from report import machine, write_section

from clinic import create_app
from clinic.db import db, init_schema, is_sqlite
from clinic.models import IdentityDocument, Organisation, Patient, PatientSearchKey, search_tokens
from clinic.models import patients as patient_models
from clinic.patients.identity import hkid_check_digit

# Names repeat in a register: fold each distinct name once (OpenCC is the slow part of a row).
patient_models.fold_chinese = functools.lru_cache(maxsize=None)(patient_models.fold_chinese)

PG_SERVER = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
PG_DATABASE = "clinic_bench"
SIZES = [int(n) for n in os.environ.get("BENCH_SIZES", "100000,1000000").split(",")]
PER_CLINIC = 100_000
REPEATS = int(os.environ.get("BENCH_REPEATS", "40"))
CHUNK = 20_000

SURNAMES = [
    ("陳", "CHAN"), ("李", "LEE"), ("張", "CHEUNG"), ("黃", "WONG"), ("何", "HO"), ("林", "LAM"),
    ("梁", "LEUNG"), ("劉", "LAU"), ("吳", "NG"), ("鄭", "CHENG"), ("蔡", "CHOI"), ("周", "CHOW"),
    ("馮", "FUNG"), ("許", "HUI"), ("羅", "LAW"), ("葉", "YIP"), ("麥", "MAK"), ("區", "AU"),
    ("鍾", "CHUNG"), ("譚", "TAM"), ("曾", "TSANG"), ("蕭", "SIU"), ("盧", "LO"), ("郭", "KWOK"),
]  # fmt: skip
GIVEN = [
    ("大", "Tai"), ("文", "Man"), ("志", "Chi"), ("明", "Ming"), ("美", "Mei"), ("玲", "Ling"),
    ("嘉", "Ka"), ("欣", "Yan"), ("偉", "Wai"), ("華", "Wah"), ("國", "Kwok"), ("強", "Keung"),
    ("秀", "Sau"), ("英", "Ying"), ("家", "Ka"), ("輝", "Fai"), ("詠", "Wing"), ("詩", "Sze"),
    ("浩", "Ho"), ("然", "Yin"), ("曉", "Hiu"), ("彤", "Tung"), ("振", "Chun"), ("邦", "Bong"),
    ("麗", "Lai"), ("珍", "Chun"), ("建", "Kin"), ("業", "Yip"), ("少", "Siu"), ("龍", "Lung"),
]  # fmt: skip


class Document:
    def __init__(self, number: str):
        self.number = self.identity_key = number


def person(rng: random.Random, patient_id: int) -> tuple:
    surname, given1, given2 = rng.choice(SURNAMES), rng.choice(GIVEN), rng.choice(GIVEN)
    # Unique per patient: 7919 is prime to 10**6, so the digits are a permutation of the ids.
    letter = "ACDEGHKPRVYZ"[patient_id // 10**6]
    digits = f"{patient_id * 7919 % 10**6:06d}"
    return (
        surname[0] + given1[0] + given2[0],
        f"{surname[1]}, {given1[1]} {given2[1]}",
        letter + digits + hkid_check_digit(letter, digits),
        f"+852{rng.choice('5679')}{rng.randrange(10**7):07d}",
        dt.date(rng.randint(1930, 2020), rng.randint(1, 12), rng.randint(1, 28)),
    )


BULK_TABLES = (Patient, IdentityDocument, PatientSearchKey)


def drop_indexes() -> None:
    """Bulk loading: indexes are dropped first and built once at the end (as pg_restore does)."""
    for model in BULK_TABLES:
        for index in db.get_indexes(model._meta.table_name):
            if not index.name.endswith("_pkey"):
                db.execute_sql(f'DROP INDEX "{index.name}"')


def load(clinics: list[int], rng: random.Random) -> tuple[list[tuple], float]:
    """Bulk-load PER_CLINIC patients per clinic; returns some loaded people and the seconds."""
    started = time.perf_counter()
    base = Patient.select(fn.MAX(Patient.id)).scalar() or 0  # after the rows already there
    drop_indexes()
    samples = []
    first = clinics[0]
    for start in range(base, base + PER_CLINIC, CHUNK):
        patients, keys, documents = [], [], []
        for patient_id in range(start + 1, min(start + CHUNK, base + PER_CLINIC) + 1):
            chinese, english, hkid, phone, born = person(rng, patient_id)
            record = Patient(id=patient_id, clinic=first, chinese_name=chinese,
                             english_name=english, phone=phone, date_of_birth=born)  # fmt: skip
            record._fold_names()
            patients.append(
                (patient_id, first, chinese, english, "M", born, phone, "zh_Hant_HK",
                 "hk", False, record.chinese_name_folded, record.english_name_key)
            )  # fmt: skip
            documents.append((patient_id, first, "hkid", hkid, hkid))
            keys.extend((patient_id, first, k) for k in record.search_keys([Document(hkid)]))
            if patient_id % 997 == 0:
                samples.append((chinese, english, hkid, phone))
        write_rows(patients, documents, keys)
    # The other clinics: copies of the first register made by the server (same documents are
    # allowed in another clinic), so 1M differs from 100k only by the rows of other clinics.
    for number, clinic in enumerate(clinics[1:], start=1):
        offset = number * PER_CLINIC
        with db.atomic():
            db.execute_sql(
                f"INSERT INTO patient ({PATIENT_COLUMNS}, created_at, updated_at) "  # noqa: S608
                f"SELECT id + {offset}, {clinic}, {PATIENT_COLUMNS.split(', ', 2)[2]}, "
                f"created_at, updated_at FROM patient WHERE clinic_id = {first}"
            )
            db.execute_sql(
                "INSERT INTO identity_document (patient_id, clinic_id, kind, number, "  # noqa: S608
                f"identity_key) SELECT patient_id + {offset}, {clinic}, kind, number, "
                f"identity_key FROM identity_document WHERE clinic_id = {first}"
            )
            db.execute_sql(
                "INSERT INTO patient_search_key (patient_id, clinic_id, key) "  # noqa: S608
                f"SELECT patient_id + {offset}, {clinic}, key FROM patient_search_key "
                f"WHERE clinic_id = {first}"
            )
    for model in BULK_TABLES:
        model._schema.create_indexes(safe=True)
    if not is_sqlite():  # patients were given their ids: the next one must come after them
        db.execute_sql(
            "SELECT setval(pg_get_serial_sequence('patient', 'id'), MAX(id)) FROM patient"
        )
    # The steady state autovacuum / the planner would reach: statistics, visibility map.
    db.execute_sql("ANALYZE" if is_sqlite() else "VACUUM ANALYZE")
    return samples, time.perf_counter() - started


PATIENT_COLUMNS = (
    "id, clinic_id, chinese_name, english_name, sex, date_of_birth, phone, preferred_language, "
    "residency, direct_billing, chinese_name_folded, english_name_key"
)


def write_rows(patients, documents, keys) -> None:
    now = dt.datetime(2026, 1, 1)
    if is_sqlite():
        with db.atomic():
            cursor = db.connection().cursor()
            cursor.executemany(
                f"INSERT INTO patient ({PATIENT_COLUMNS}, created_at, updated_at) "  # noqa: S608
                "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                [(*row, now, now) for row in patients],
            )
            cursor.executemany(
                "INSERT INTO identity_document (patient_id, clinic_id, kind, number, "
                "identity_key) VALUES (?,?,?,?,?)",
                documents,
            )
            cursor.executemany(
                "INSERT INTO patient_search_key (patient_id, clinic_id, key) VALUES (?,?,?)", keys
            )
        return
    with db.atomic():
        cursor = db.connection().cursor()
        copy(cursor, "patient", f"{PATIENT_COLUMNS}, created_at, updated_at",
             [(*row, now, now) for row in patients])  # fmt: skip
        copy(cursor, "identity_document", "patient_id, clinic_id, kind, number, identity_key",
             documents)  # fmt: skip
        copy(cursor, "patient_search_key", "patient_id, clinic_id, key", keys)


def copy(cursor, table: str, columns: str, rows) -> None:
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join(str(value) for value in row) + "\n")
    buffer.seek(0)
    cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN", buffer)


def queries(samples: list[tuple], rng: random.Random) -> list[tuple[str, str]]:
    """(kind, text) pairs: what a receptionist types, drawn from patients that exist."""
    typed = []
    for chinese, english, hkid, phone in rng.sample(samples, min(REPEATS, len(samples))):
        simplified = "".join(search_tokens(chinese))
        surname, given = english.split(", ")
        typed += [
            ("Chinese name, other script", simplified),
            ("Chinese given name (2 chars)", simplified[1:]),
            ("Chinese surname (1 char)", chinese[0]),
            ("English name, any order", f"{given.lower()} {surname.lower()}"),
            ("English surname", surname.title()),
            ("HKID as printed", f"{hkid[:-1]}({hkid[-1]})"),
            ("HKID first 5", hkid[:5]),
            ("Phone, local 8 digits", f"{phone[4:8]} {phone[8:]}"),
        ]
    return typed


def plan_has_full_scan(clinic_id: int, text: str) -> tuple[bool, str]:
    """EXPLAIN the queries Patient.search runs for a two-word text: whole-name range, each word
    (the fallback), then the patients by id."""
    tokens = search_tokens(text)
    phrase = Patient.matching_ids(clinic_id, [" ".join(tokens)]).limit(40)
    ids = Patient.matching_ids(clinic_id, tokens).limit(40)
    fetch = Patient.select().where(Patient.id.in_([1, 2, 3]), Patient.clinic == clinic_id)
    lines = []
    for query in (phrase, ids, fetch):
        sql, params = query.sql()
        if is_sqlite():
            rows = db.execute_sql(f"EXPLAIN QUERY PLAN {sql}", params).fetchall()
            lines += [row[-1] for row in rows]
        else:
            rows = db.execute_sql(f"EXPLAIN {sql}", params).fetchall()
            lines += [row[0] for row in rows]
    scans = [
        line
        for line in lines
        if (line.startswith("SCAN ") and "USING" not in line and "SUBQUERY" not in line)
        or "Seq Scan" in line
    ]
    # SQLite's "SCAN (subquery-n)" / "USE TEMP B-TREE" are over the bounded id list, not a table.
    return bool(scans), " / ".join(line.strip() for line in lines)


def measure(clinic_id: int, typed: list[tuple[str, str]]) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {}
    for _ in range(2):  # warm the cache the way a morning's searches would
        for _kind, text in typed[:20]:
            Patient.search(clinic_id, text)
    for kind, text in typed:
        started = time.perf_counter()
        found = Patient.search(clinic_id, text)
        elapsed = (time.perf_counter() - started) * 1000
        assert found or kind.startswith("HKID first"), (kind, text)
        timings.setdefault(kind, []).append(elapsed)
    return timings


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(engine: str, url: str, size: int) -> dict:
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench"})
    rng = random.Random(size)
    with app.app_context():
        init_schema()
        if is_sqlite():
            db.execute_sql("PRAGMA synchronous = OFF")
        clinics = [Organisation.create(name=f"Bench clinic {n}", kind="clinic").id
                   for n in range(size // PER_CLINIC)]  # fmt: skip
        samples, load_seconds = load(clinics, rng)
        rows = PatientSearchKey.select().count()
        typed = queries(samples, rng)
        scan, plan = plan_has_full_scan(clinics[0], "chan tai")
        timings = measure(clinics[0], typed)
        everything = [t for values in timings.values() for t in values]
        db.close()
    print(f"{engine} {size:>9,}: load {load_seconds:.0f}s, p50 {percentile(everything, .5):.2f} ms,"
          f" p95 {percentile(everything, .95):.2f} ms, full scan: {scan}", flush=True)  # fmt: skip
    return {
        "engine": engine,
        "size": size,
        "keys": rows,
        "load": load_seconds,
        "timings": timings,
        "all": everything,
        "scan": scan,
        "plan": plan,
    }


def postgres_url() -> str:
    admin = psycopg2.connect(PG_SERVER)
    admin.autocommit = True
    cursor = admin.cursor()
    cursor.execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
    cursor.execute(f"CREATE DATABASE \"{PG_DATABASE}\" TEMPLATE template0 ENCODING 'UTF8'")
    admin.close()
    return urlunsplit(urlsplit(PG_SERVER)._replace(path=f"/{PG_DATABASE}"))


def drop_postgres() -> None:
    admin = psycopg2.connect(PG_SERVER)
    admin.autocommit = True
    admin.cursor().execute(f'DROP DATABASE IF EXISTS "{PG_DATABASE}" WITH (FORCE)')
    admin.close()


def report(results: list[dict], seconds: float, load_average: float) -> str:
    lines = [
        "Command: `make bench` (`bench/search.py`). Machine: " + machine() + ".",
        "What is timed: `Patient.search(clinic, text)` in-process (the folded-key prefix lookup,",
        "scoped to one clinic, plus fetching up to 20 patients), after the synthetic register is",
        f"bulk-loaded; {REPEATS} patients drawn at random, 8 typed queries each (kinds below).",
        "Sizes: 100k = one clinic of 100,000 patients; 1M = ten clinics of 100,000 each (nine",
        "are copies of the searched clinic's register under other clinic ids).",
        "SQLite: file in a temp directory, WAL. PostgreSQL 15 on 127.0.0.1, database",
        f"`{PG_DATABASE}` (created and dropped by the script). Whole run: {seconds:.0f} s;",
        f"1-minute load average when it started: {load_average:.1f} (other work shares the cores).",
        "",
        "| Engine | Patients | Search keys | Load (s) | p50 (ms) | p95 (ms) | max (ms) "
        "| Full scan in plan |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]  # fmt: skip
    for r in results:
        lines.append(
            f"| {r['engine']} | {r['size']:,} | {r['keys']:,} | {r['load']:.0f} | "
            f"{percentile(r['all'], 0.5):.2f} | {percentile(r['all'], 0.95):.2f} | "
            f"{max(r['all']):.2f} | {'YES' if r['scan'] else 'no'} |"
        )
    lines += ["", "p50 / p95 in ms by kind of query:", ""]
    kinds = list(results[0]["timings"])
    lines.append("| Query | " + " | ".join(f"{r['engine']} {r['size']:,}" for r in results) + " |")
    lines.append("|---|" + "---:|" * len(results))
    for kind in kinds:
        cells = [
            f"{percentile(t, 0.5):.2f} / {percentile(t, 0.95):.2f}"
            for t in (r["timings"][kind] for r in results)
        ]
        lines.append(f"| {kind} | " + " | ".join(cells) + " |")
    lines += [
        "",
        'Query plans for "chan tai": one range of the whole-name keys ("CHAN TAI…"); when that',
        "finds nobody, each word (the longer drives an index range scan, the other is an index",
        "seek per candidate); then the patients by primary key:",
        "",
    ]
    seen = set()
    for r in results:
        if r["engine"] not in seen:
            seen.add(r["engine"])
            lines.append(f"- {r['engine']}: `{r['plan'][:900]}`")
    return "\n".join(lines)


def main() -> None:
    started = time.perf_counter()
    load_average = os.getloadavg()[0]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for size in SIZES:
            results.append(run("SQLite", f"sqlite:///{tmp}/bench-{size}.db", size))
            Path(f"{tmp}/bench-{size}.db").unlink()
            results.append(run("PostgreSQL", postgres_url(), size))
            drop_postgres()
    results.sort(key=lambda r: (r["engine"] != "SQLite", r["size"]))
    seconds = time.perf_counter() - started
    write_section("Patient search", report(results, seconds, load_average))
    if any(r["scan"] for r in results):
        raise SystemExit("a search query plan has a full table scan")


if __name__ == "__main__":
    main()
