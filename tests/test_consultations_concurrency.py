"""Ten pharmacists claiming one question at the same moment: exactly one owns it.

On SQLite (one process by design) the claims race as threads, each with its own connection;
on PostgreSQL as separate processes, each its own app, as on several servers."""

import multiprocessing
import threading

from clinic.db import db
from clinic.models import Consultation, ConsultationEvent, Organisation, User

from conftest import TEST_CONFIG, user

CLAIMS = 10


def _pharmacists(app) -> list[User]:
    hub = Organisation.by_name("Nansha Hub Hospital")
    with app.app_context():
        return [
            User.create_with_password(
                "race-pass-2026",
                email=f"racer{n}@hub.demo",
                name=f"Racer {n}",
                role="pharmacist",
                organisation=hub,
            )
            for n in range(CLAIMS)
        ]


def _claim_in_process(url, consultation_id, user_id, barrier, outcomes):
    from clinic import create_app

    app = create_app({**TEST_CONFIG, "DATABASE_URL": url})
    with app.test_request_context():
        consultation = Consultation.get_by_id(consultation_id)  # loaded before the start
        person = User.get_by_id(user_id)
        barrier.wait()
        from clinic.workflow import TransitionError

        try:
            consultation.claim(person)
            outcomes.append("won")
        except TransitionError:
            outcomes.append("lost")


def _threads(app, consultation_id, people) -> list[str]:
    barrier, outcomes = threading.Barrier(len(people)), []

    def run(person):
        with app.test_request_context():
            consultation = Consultation.get_by_id(consultation_id)
            barrier.wait()
            from clinic.workflow import TransitionError

            try:
                consultation.claim(person)
                outcomes.append("won")
            except TransitionError:
                outcomes.append("lost")
            except Exception as error:
                outcomes.append(repr(error))
            finally:
                db.close()

    workers = [threading.Thread(target=run, args=(p,)) for p in people]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    return outcomes


def test_ten_simultaneous_claims_of_one_question_one_wins(app, demo_data, make_patient):
    people = _pharmacists(app)
    with app.test_request_context():
        consultation = Consultation.ask(
            user("nurse@jinzhou.demo"), Organisation.by_name("Nansha Hub Hospital"),
            make_patient(), drug_text="Warfarin", question_type="interaction",
            urgency="immediate", details="With clarithromycin?",
        )  # fmt: skip
    url = app.config["DATABASE_URL"]
    if url.startswith("sqlite"):
        outcomes = _threads(app, consultation.id, people)
    else:
        db.close()
        context = multiprocessing.get_context("spawn")
        with context.Manager() as manager:
            barrier, shared = manager.Barrier(len(people)), manager.list()
            workers = [
                context.Process(
                    target=_claim_in_process, args=(url, consultation.id, p.id, barrier, shared)
                )
                for p in people
            ]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join(timeout=180)
            outcomes = list(shared)
    assert sorted(outcomes) == ["lost"] * (CLAIMS - 1) + ["won"], outcomes
    claimed = Consultation.get_by_id(consultation.id)
    assert claimed.state == "claimed" and claimed.claimed_by_id in {p.id for p in people}
    claims = ConsultationEvent.select().where(
        ConsultationEvent.consultation == consultation.id, ConsultationEvent.action == "claim"
    )
    assert claims.count() == 1 and claims.get().user_id == claimed.claimed_by_id
