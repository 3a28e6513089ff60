"""Access logs without the OAuth callback's query string: its `code` and `state` belong to one
connection and have no place in a log (the code is useless without the PKCE verifier, but a log
travels further than the app). For Werkzeug's server (`make run`) a logging filter, for gunicorn a
logger class (gunicorn.conf.py)."""

from __future__ import annotations

import logging
import re
from typing import Any

from gunicorn.glogging import Logger

#: Paths whose query string is never written to an access log.
SECRET_QUERY_PATHS = ("/oauth/callback",)
_SECRET_QUERY = re.compile("(" + "|".join(re.escape(path) for path in SECRET_QUERY_PATHS) + r")\?[^\s\"]*")
#: Parameters whose value is masked wherever they appear (the same state is in the authorisation
#: page's address; a code, a verifier or a token in any query).
SECRET_PARAMETERS = re.compile(
    r"([?&](?:code|state|code_verifier|code_challenge|access_token|refresh_token|client_secret|token)=)[^&\s\"]*"
)


def without_secret_query(text: str) -> str:
    """`text` (a request line, a URL) with the query string of those paths cut off, and the values of
    the secret parameters masked everywhere else."""
    return SECRET_PARAMETERS.sub(r"\1…", _SECRET_QUERY.sub(r"\1", text))


class SecretQueryFilter(logging.Filter):
    """On Werkzeug's logger: its request lines come as the record's arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(without_secret_query(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = without_secret_query(record.msg)
        return True


def install_werkzeug_filter() -> None:
    logger = logging.getLogger("werkzeug")
    if not any(isinstance(each, SecretQueryFilter) for each in logger.filters):
        logger.addFilter(SecretQueryFilter())


class GunicornLogger(Logger):
    """gunicorn's logger, whose access lines leave out the query string of those paths and mask the
    secret parameters of the others."""

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> dict[str, Any]:
        atoms = super().atoms(resp, req, environ, request_time)
        callback = any((environ.get("PATH_INFO") or "").endswith(path) for path in SECRET_QUERY_PATHS)
        query = atoms.get("q") or ""
        atoms["q"] = "" if callback or not query else without_secret_query("?" + query)[1:]
        atoms["r"] = without_secret_query(atoms["r"])
        atoms["f"] = without_secret_query(atoms.get("f", ""))  # a Referer can be that URL too
        return atoms
