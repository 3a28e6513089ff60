"""Job functions the tests enqueue by dotted name, to exercise the job machinery itself."""

from __future__ import annotations

import os

from webapp.services.jobs import UserFacingJobError, report_progress, tracked_job


@tracked_job
def count_to(n: int) -> str:
    for i in range(1, n + 1):
        report_progress(int(100 * i / n), f"Étape {i} sur {n}")
    return f"Compté jusqu'à {n}."


@tracked_job
def refuse_politely() -> None:
    raise UserFacingJobError("Le logiciel comptable a refusé la demande : compte 401000 archivé.")


@tracked_job
def break_unexpectedly() -> None:
    raise KeyError("secret internal detail")


@tracked_job
def die_hard() -> None:
    # As a worker killed mid-job: no Python cleanup runs, no `finally`.
    report_progress(40, "À mi-chemin")
    os._exit(1)


@tracked_job
def die_once(marker: str) -> str:
    """Killed with its worker the first time (as by SIGKILL), done the second: a retry completes."""
    if not os.path.exists(marker):
        with open(marker, "w") as handle:
            handle.write("1")
        os._exit(1)
    return "Terminé à la seconde tentative."


def refresh_together(integration_id: int, barrier: str, parties: int = 2) -> str:
    """Read the tokens, wait for the other workers at a barrier in Redis, then all renew them at once
    (as workers whose access token the software has just refused)."""
    import time

    from webapp.extensions import db
    from webapp.models import Integration
    from webapp.services.integrations import fresh_tokens, load_tokens
    from webapp.services.jobs import get_redis

    refused = load_tokens(db.session.get(Integration, integration_id)).access_token
    db.session.rollback()  # no transaction held open while waiting
    connection = get_redis()
    connection.incr(barrier)
    connection.expire(barrier, 120)
    deadline = time.monotonic() + 30
    while int(connection.get(barrier) or 0) < parties:
        if time.monotonic() > deadline:
            raise RuntimeError("the other worker never came")
        time.sleep(0.001)
    import hashlib

    token = fresh_tokens(integration_id, rejected=refused).access_token
    return hashlib.sha256(token.encode()).hexdigest()[:12]
