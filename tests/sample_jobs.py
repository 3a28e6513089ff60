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
