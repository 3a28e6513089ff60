"""A forking RQ worker run to completion, then its peak memory and its work horses' (for bench/refresh.py)."""

import json
import resource
import sys
from pathlib import Path

# The project first: run as a script, this folder would come first and its modules could hide the
# project's packages (a bench/jobs.py once hid jobs/, and every job failed to import).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import redis  # noqa: E402

from webapp import create_app  # noqa: E402
from webapp.worker import AppWorker  # noqa: E402

app = create_app()
worker = AppWorker(
    [app.config["JOB_QUEUE"]], connection=redis.Redis.from_url(app.config["REDIS_URL"]), app=app
)
worker.work(burst=True, logging_level="WARNING")
# ru_maxrss is in kibibytes on Linux; the horses are this process's children.
print(
    json.dumps(
        {
            "worker_peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "horse_peak_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        }
    ),
    file=sys.stdout,
)
