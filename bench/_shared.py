"""What several benches share: another version of the code beside this one (to measure both in one
run), and waiting for a server to answer."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
GIT = shutil.which("git") or "git"


def baseline_tree(ref: str) -> Path:
    """A temporary checkout of `ref` (git worktree), with this tree's compiled catalogues."""
    tree = Path(tempfile.mkdtemp(prefix="raccord-baseline-"))
    subprocess.run(
        [GIT, "worktree", "add", "--detach", str(tree), ref], cwd=ROOT, check=True, capture_output=True
    )
    for mo in ROOT.glob("webapp/translations/*/LC_MESSAGES/messages.mo"):
        target = tree / mo.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(mo, target)
    return tree


def remove_tree(tree: Path) -> None:
    subprocess.run([GIT, "worktree", "remove", "--force", str(tree)], cwd=ROOT, check=False)


def wait_until_served(base: str, timeout: float = 60) -> None:
    """Until `base`/robots.txt answers (a gunicorn just started), at most `timeout` seconds."""
    import requests

    deadline = time.monotonic() + timeout
    while True:
        try:
            requests.get(f"{base}/robots.txt", timeout=10)
            return
        except (requests.ConnectionError, requests.Timeout):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
