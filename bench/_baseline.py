"""Another version of the code beside this one, for a bench that measures both in one run."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
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
