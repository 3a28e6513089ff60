"""Every call a connector makes to a vendor's sandbox dialect, checked against the vendor's published
description (../shared/specs or SPECS_DIR): the request as sent, the answer as returned.

The check sits in front of the live server, so it sees the calls of the web process and of the
forking RQ workers alike. Each call is rewritten to the vendor's real host before validation.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from werkzeug.wrappers import Request, Response

ROOT = Path(__file__).resolve().parent.parent
SPECS_DIR = Path(os.environ.get("SPECS_DIR") or ROOT.parent / "shared" / "specs")


@cache
def openapi(name: str):
    from openapi_core import Config, OpenAPI

    path = SPECS_DIR / name
    if not path.exists():
        raise FileNotFoundError(f"The vendor's description {path} is missing (set SPECS_DIR)")
    # Xero's own file does not pass openapi-spec-validator (string defaults such as 'false' on
    # booleans): it is used as published, without validating the description itself.
    return OpenAPI.from_file_path(str(path), config=Config(spec_validator_cls=None))


@cache
def swagger(name: str) -> dict:
    import json

    path = SPECS_DIR / name
    if not path.exists():
        raise FileNotFoundError(f"The vendor's description {path} is missing (set SPECS_DIR)")
    return json.loads(path.read_text(encoding="utf-8"))


@dataclass
class Route:
    prefix: str  # under the live server, e.g. /sandbox/xero/api.xro/2.0
    host: str  # the vendor's, e.g. https://api.xero.com
    server_path: str  # the path of the description's server URL, e.g. /api.xro/2.0
    spec: str  # file name in SPECS_DIR
    renamed: str = ""  # what the prefix stands for below the server path (Xero's /Connections)

    def spec_path(self, path: str) -> str:
        return self.renamed + path[len(self.prefix) :]


@dataclass
class Exchange:
    method: str
    path: str
    environ: dict
    body: bytes
    status: int
    headers: list
    answer: bytes
    route: Route


class SpecRecorder:
    """WSGI middleware: records the calls under the routes' prefixes, then validates them."""

    def __init__(self, app, routes: list[Route]):
        self.app = app
        self.routes = routes
        self.exchanges: list[Exchange] = []

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        route = next((r for r in self.routes if path.startswith(r.prefix)), None)
        if route is None:
            return self.app(environ, start_response)
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)
        captured: dict = {}

        def recording_start(status, headers, exc_info=None):
            captured["status"], captured["headers"] = int(status.split()[0]), headers
            return start_response(status, headers, exc_info)

        chunks = list(self.app(environ, recording_start))
        self.exchanges.append(
            Exchange(
                method=environ["REQUEST_METHOD"],
                path=path,
                environ=dict(environ),
                body=body,
                status=captured["status"],
                headers=captured["headers"],
                answer=b"".join(chunks),
                route=route,
            )
        )
        return chunks

    def problems(self) -> list[str]:
        """Each call that does not follow the description, with why (an empty list: all do)."""
        found = []
        for exchange in self.exchanges:
            if exchange.route.spec.endswith(".json"):
                found += swagger_problems(exchange)
            else:
                found += self._openapi_problems(exchange)
        return found

    def _openapi_problems(self, exchange: Exchange) -> list[str]:
        from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
        from openapi_core.validation.request.validators import (
            V30RequestBodyValidator,
            V30RequestParametersValidator,
        )

        found: list[str] = []
        route = exchange.route
        vendor_path = route.server_path + route.spec_path(exchange.path)
        environ = dict(exchange.environ)
        environ.update(
            {
                "PATH_INFO": vendor_path,
                "SCRIPT_NAME": "",
                "HTTP_HOST": route.host.split("://")[1],
                "SERVER_NAME": route.host.split("://")[1],
                "SERVER_PORT": "443",
                "wsgi.url_scheme": "https",
                "wsgi.input": io.BytesIO(exchange.body),
            }
        )
        request = WerkzeugOpenAPIRequest(Request(environ))
        spec = openapi(route.spec)
        what = f"{exchange.method} {vendor_path} → {exchange.status}"
        # Parameters and body against the description; openapi-core does not check OAuth 2
        # schemes, so the bearer token's presence is checked here.
        if not environ.get("HTTP_AUTHORIZATION", "").startswith("Bearer "):
            found.append(f"request {what}: no bearer token")
        validators = [V30RequestParametersValidator, V30RequestBodyValidator]
        if environ.get("CONTENT_TYPE", "").startswith("application/octet-stream"):
            # Xero's description types raw uploads as `format: byte` (base64) while its
            # documentation and API take the raw file
            # (https://developer.xero.com/documentation/api/accounting/attachments): the body is
            # only required to be there.
            validators = [V30RequestParametersValidator]
            if not exchange.body:
                found.append(f"request {what}: empty upload")
        for validator in validators:
            try:
                validator(spec.spec).validate(request)
            except Exception as exc:  # noqa: BLE001 - every kind of mismatch is reported
                found.append(f"request {what}: {_reason(exc)}")
        if exchange.status >= 400 and not _documented(
            spec, exchange.method, route.spec_path(exchange.path), exchange.status
        ):
            return found  # an error the description does not list (401, 403, 429): tested apart
        response = Response(exchange.answer, status=exchange.status, headers=exchange.headers)
        try:
            spec.validate_response(request, WerkzeugOpenAPIResponse(response))
        except Exception as exc:  # noqa: BLE001
            found.append(f"answer {what}: {_reason(exc)}")
        return found

    def calls(self, method: str, suffix: str) -> list[Exchange]:
        return [e for e in self.exchanges if e.method == method and e.path.endswith(suffix)]


def _documented(spec, method: str, path: str, status: int) -> bool:
    """Whether the description lists this status for this operation."""
    for template, item in (spec.spec / "paths").items():
        if _matches(template, path):
            operation = item.get(method.lower())
            if operation is not None:
                return str(status) in (operation / "responses").keys()  # noqa: SIM118 (a SchemaPath)
    return False


def _matches(template: str, path: str) -> bool:
    a, b = template.strip("/").split("/"), path.strip("/").split("/")
    return len(a) == len(b) and all(x == y or x.startswith("{") for x, y in zip(a, b, strict=True))


def _reason(exc: Exception) -> str:
    details = [str(exc)]
    cause = exc.__cause__ or exc.__context__
    for sub in getattr(cause, "schema_errors", None) or getattr(exc, "schema_errors", None) or []:
        details.append(f"{list(sub.path)}: {sub.message}")
    return "; ".join(details)[:800]


def swagger_problems(exchange: Exchange) -> list[str]:
    """A call checked against a Swagger 2.0 description (openapi-core reads only OpenAPI 3): query
    parameters declared and typed, the JSON body and the answer validated with jsonschema against
    the description's own definitions. Lists are checked item by item inside Sage's documented
    {$items: [...]} wrapper, where the description shows a bare array."""
    import json
    from urllib.parse import parse_qsl

    import jsonschema

    spec = swagger(exchange.route.spec)
    path = exchange.route.spec_path(exchange.path)
    what = f"{exchange.method} {path} → {exchange.status}"
    operation = None
    for template, item in spec["paths"].items():
        if _matches(template, path) and exchange.method.lower() in item:
            operation = item[exchange.method.lower()]
            break
    if operation is None:
        return [f"request {what}: no such operation in the description"]
    found = []
    if not exchange.environ.get("HTTP_AUTHORIZATION", "").startswith("Bearer "):
        found.append(f"request {what}: no bearer token")
    declared = {
        p["name"]: p
        for p in operation.get("parameters", [])
        if isinstance(p, dict) and p.get("in") == "query"
    }
    for name, value in parse_qsl(exchange.environ.get("QUERY_STRING", ""), keep_blank_values=True):
        parameter = declared.get(name)
        if parameter is None:
            found.append(f"request {what}: query parameter {name!r} is not in the description")
        elif parameter.get("type") == "integer" and not value.lstrip("-").isdigit():
            found.append(f"request {what}: {name}={value!r} is not an integer")
        elif parameter.get("type") == "boolean" and value not in ("true", "false"):
            found.append(f"request {what}: {name}={value!r} is not a boolean")

    def check(instance, schema, where: str) -> None:
        validator = jsonschema.Draft4Validator({**schema, "definitions": spec["definitions"]})
        for error in validator.iter_errors(instance):
            found.append(f"{where} {what}: {list(error.absolute_path)}: {error.message}"[:500])

    body_parameter = next(
        (p for p in operation.get("parameters", []) if isinstance(p, dict) and p.get("in") == "body"), None
    )
    if body_parameter is not None:
        try:
            check(json.loads(exchange.body or b"null"), body_parameter["schema"], "request")
        except ValueError:
            found.append(f"request {what}: the body is not JSON")
    answer = operation.get("responses", {}).get(str(exchange.status))
    if answer is None or "schema" not in answer or exchange.status >= 400:
        return found  # errors are Sage's documented array, checked by the tests themselves
    try:
        body = json.loads(exchange.answer)
    except ValueError:
        return [*found, f"answer {what}: not JSON"]
    schema = answer["schema"]
    if schema.get("type") == "array":
        if not isinstance(body, dict) or not isinstance(body.get("$items"), list):
            return [*found, f"answer {what}: a list must come as {{$total, $page, $next, $back, $items}}"]
        for index, item in enumerate(body["$items"]):
            check(item, schema["items"], f"answer[$items][{index}]")
    else:
        check(body, schema, "answer")
    return found
