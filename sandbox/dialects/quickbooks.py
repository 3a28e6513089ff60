"""The sandbox speaking QuickBooks Online (Accounting API v3): realmId, the query language, Fault bodies.

URLs mirror Intuit's: /sandbox/quickbooks/connect/oauth2 for appcenter.intuit.com (the callback
gets realmId), /sandbox/quickbooks/oauth2/v1/tokens/bearer for oauth.platform.intuit.com,
/sandbox/quickbooks/oauth2/tokens/revoke for developer.api.intuit.com,
/sandbox/quickbooks/.well-known/openid_configuration/ for Intuit's discovery document (intuit-oauth
reads its endpoints there), and /sandbox/quickbooks/v3/company/<realmId>/... for
quickbooks.api.intuit.com. QuickBooks publishes no machine-readable description; this follows its
documentation (https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/account …)
and is checked with Intuit's own libraries (intuit-oauth, python-quickbooks: tests/test_quickbooks_python.py).

How the sandbox's lists read in QuickBooks:
- accounts → Account (AcctNum is the PCG number; AccountType Expense, Income, Other Current
  Liability or Other Current Asset), payment methods → Account of type Bank or Credit Card;
- suppliers / customers → Vendor / Customer (DisplayName; TaxIdentifier is write-only, as in
  QuickBooks, which masks it on read);
- tax rates → TaxRate (RateValue) with one TaxCode each, the code lines refer to;
- tracking → Class, named Axis:Name as QuickBooks shows sub-classes;
- Department (locations): Compta Démo has none, so the list is empty and a read is Object Not Found.
Archived items are Active = false and, as in QuickBooks, left out of a query unless it asks
`Active IN (true, false)` (or names Active itself).

What a request sends is read as Intuit's parser reads it, before anything is stored: a body that is
not a JSON object, a property of the wrong type, a number that is not a finite decimal within
QuickBooks' precision (NaN, Infinity, 1e400, twelve decimals) or a text longer than QuickBooks keeps
is answered with a ValidationFault, and nothing of the request is kept.
"""

from __future__ import annotations

import binascii
import hashlib
import json
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from flask import Blueprint, Response, g, jsonify, request, url_for
from sqlalchemy import false, func, select
from sqlalchemy.exc import IntegrityError
from werkzeug.sansio.multipart import Data, Epilogue, Field, File, MultipartDecoder, NeedData

from sandbox import oauth
from sandbox.columns import utcnow
from sandbox.csrf import sandbox_csrf
from sandbox.dialects import check_bearer, tenant_guid
from sandbox.faults import apply_faults, get_setting
from sandbox.inputs import MAX_ID, MAX_STORED, json_object, to_id, to_moment
from sandbox.models import (
    SandboxAttachment,
    SandboxClient,
    SandboxCompany,
    SandboxGrant,
    SandboxInvoice,
    SandboxItem,
    SandboxSetting,
    SandboxToken,
)
from sandbox.webhooks import announce
from webapp.extensions import db

bp = Blueprint("sandbox_quickbooks", __name__, url_prefix="/quickbooks")
# Token lifetimes as the vendor's (https://developer.intuit.com/app/developer/qbo/docs/develop/authentication-and-authorization/faq).
ACCESS_TTL, REFRESH_TTL = 60 * 60, 100 * 86400
MAX_RESULTS = 1000  # https://developer.intuit.com/app/developer/qbo/docs/learn/explore-the-quickbooks-online-api/data-queries
DEFAULT_RESULTS = 100
ENTITY_KINDS = {
    "Account": ("accounts", "payment_methods"),
    "Vendor": ("suppliers",),
    "Customer": ("customers",),
    "TaxRate": ("tax_rates",),
    "TaxCode": ("tax_rates",),
    "Class": ("tracking_categories",),
    "Department": (),  # no locations in Compta Démo
    "Item": ("qbo_items",),  # products and services, kept by the dialect for sales invoice lines
}
TRANSACTIONS = ("Bill", "Invoice")
#: Amounts as QuickBooks keeps them: at most 10 digits before the point and 5 after ("max 15 digits
#: in 10.5 format", https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/invoice).
AMOUNT_DIGITS, AMOUNT_DECIMALS = 10, 5
#: The lengths QuickBooks keeps (the entity pages: DocNumber 21, DisplayName 500, Name 100 …).
MAX_LENGTHS = {
    "DocNumber": 21,
    "DisplayName": 300,  # QuickBooks keeps 500; the sandbox's names hold 300
    "CompanyName": 100,
    "TaxIdentifier": 20,
    "PrivateNote": 4000,
    "Description": 4000,
    "Name": 100,
    "FileName": 200,
    "ContentType": 80,
    "Address": 100,
    "value": 50,
}


def realm_of(company_id: str) -> str:
    """A company's realmId: a number, as QuickBooks gives them, stable across runs."""
    return str(int(hashlib.sha256(company_id.encode()).hexdigest(), 16) % 10**16 + 9 * 10**15)


@bp.route("/connect/oauth2", methods=["GET", "POST"])
def authorize():
    """The consent page; QuickBooks adds the chosen company's realmId to the callback."""
    response = oauth.authorize()
    location = response.headers.get("Location") if hasattr(response, "headers") else None
    company = db.session.get(SandboxCompany, request.form.get("company_id") or "")
    if location and company is not None and "code=" in location:
        parts = urlsplit(location)
        query = parse_qsl(parts.query) + [("realmId", realm_of(company.id))]
        response.headers["Location"] = urlunsplit(parts._replace(query=urlencode(query)))
    return response


@bp.post("/oauth2/v1/tokens/bearer")
@sandbox_csrf.exempt
def token():
    """Intuit's token answer says how long the refresh token has left, at every exchange and refresh
    (x_refresh_token_expires_in, https://developer.intuit.com/app/developer/qbo/docs/develop/authentication-and-authorization/oauth-2.0)."""
    answer = oauth.issue_token_as(ACCESS_TTL, REFRESH_TTL)
    if not isinstance(answer, Response) or answer.status_code != 200:
        return answer
    body = answer.get_json(silent=True)
    if not isinstance(body, dict) or "x_refresh_token_expires_in" in body or not body.get("refresh_token"):
        return answer
    issued = SandboxToken.by_refresh_token(str(body["refresh_token"]))
    if issued is None or issued.refresh_expires_at is None:
        return answer
    body["x_refresh_token_expires_in"] = max(0, int(issued.refresh_expires_at - time.time()))
    answer.set_data(json.dumps(body))
    return answer


@bp.post("/oauth2/tokens/revoke")
@sandbox_csrf.exempt
def revoke():
    """Intuit's revocation: a JSON body {"token": …} with the client's Basic credentials."""
    auth = request.authorization
    client = db.session.get(SandboxClient, auth.username) if auth and auth.username else None
    if client is None or not client.check_client_secret(auth.password or ""):
        return jsonify({"error": "invalid_client"}), 401
    value = json_object().get("token") or request.form.get("token") or ""
    found = None
    if isinstance(value, str) and value:
        found = SandboxToken.by_refresh_token(value) or SandboxToken.by_access_token(value)
    if found is not None:
        grant = db.session.get(SandboxGrant, found.grant_id)
        if grant is not None and grant.revoked_at is None:
            grant.revoked_at = utcnow()
        found.revoked = True
        db.session.commit()
    return Response(status=200)


@bp.get("/.well-known/openid_configuration/")
def discovery():
    """Intuit's OpenID discovery document, its endpoints pointing at this dialect: intuit-oauth's
    AuthClient takes its URL as `environment` and reads every endpoint from it
    (https://developer.intuit.com/app/developer/qbo/docs/develop/authentication-and-authorization/openid-connect)."""
    here = url_for(".discovery", _external=True).removesuffix("/.well-known/openid_configuration/")
    return jsonify(
        {
            "issuer": f"{here}/op/v1",
            "authorization_endpoint": f"{here}/connect/oauth2",
            "token_endpoint": f"{here}/oauth2/v1/tokens/bearer",
            "userinfo_endpoint": f"{here}/v1/openid_connect/userinfo",
            "revocation_endpoint": f"{here}/oauth2/tokens/revoke",
            "jwks_uri": f"{here}/op/v1/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile", "address", "phone"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "claims_supported": ["aud", "exp", "iat", "iss", "realmid", "sub"],
        }
    )


@bp.get("/op/v1/jwks")
def jwks():
    """The sandbox signs no ID token (it grants no `openid` scope): no key to publish."""
    return jsonify({"keys": []})


@bp.get("/v1/openid_connect/userinfo")
def userinfo():
    check = check_bearer()
    if check.problem:
        response = jsonify({"error": "invalid_token"})
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer realm="Intuit", error="invalid_token"'
        return response
    return jsonify({"sub": tenant_guid(check.company.id), "realmid": realm_of(check.company.id)})


api = Blueprint("sandbox_quickbooks_api", __name__, url_prefix="/quickbooks/v3/company/<realm>")
sandbox_csrf.exempt(api)


@api.url_value_preprocessor
def pull_realm(_endpoint, values):
    g.realm = values.pop("realm", None) if values else None


@api.before_request
def authenticate():
    faulted = _faults()
    if faulted is not None:
        return faulted
    check = check_bearer()
    if check.problem:
        detail = "Token expired" if check.problem == "expired" else "Token revoked or invalid"
        return _auth_fault(detail)
    if realm_of(check.company.id) != g.realm:
        return _fault(403, "AuthorizationFault", "ApplicationAuthorizationFailed", "003100", "")
    g.company = check.company
    return None


@api.after_request
def in_intuits_words(response: Response) -> Response:
    """What the sandbox refuses before the dialect reads the request (a NUL, a lone surrogate, a body
    nested too deep, a value no column holds) is answered as Intuit answers a bad property."""
    if response.status_code != 400 or response.mimetype != "application/json":
        return response
    body = response.get_json(silent=True)
    if not isinstance(body, dict) or body.get("error") != "invalid_request":
        return response
    element = str(body.get("field") or "")
    return _fault(
        400,
        "ValidationFault",
        "Request has invalid or unsupported property",
        "2010",
        element,
        detail=f"Property Name:{element or 'body'} specified is unsupported or invalid: "
        f"{body.get('message') or ''}",
    )


class Refused(Exception):
    """A request QuickBooks refuses: answered with its Fault, nothing of it stored."""

    def __init__(self, message: str, code: str, element: str = "", *, detail: str = "", status: int = 400):
        super().__init__(message)
        self.message, self.code, self.element, self.detail, self.status = (
            message,
            code,
            element,
            detail,
            status,
        )


@api.errorhandler(Refused)
def _refused(error: Refused) -> Response:
    db.session.rollback()
    return _fault(
        error.status, "ValidationFault", error.message, error.code, error.element, detail=error.detail
    )


@api.get("/companyinfo/<realm_id>")
def company_info(realm_id: str):
    return _ok(
        {
            "CompanyInfo": {
                "Id": "1",
                "CompanyName": g.company.name,
                "LegalName": g.company.name,
                "Country": "FR",
                "SyncToken": "0",
                "MetaData": _meta(g.company.created_at),
            }
        }
    )


# --- reading a request as Intuit's parser does ----------------------------------------------------


def _invalid(element: str, why: str = "") -> Refused:
    return Refused(
        "Request has invalid or unsupported property",
        "2010",
        element,
        detail=f"Property Name:{why or element} specified is unsupported or invalid",
    )


def _refuse_constant(name: str):
    raise ValueError(f"Unrecognized token '{name}'")


def _body() -> dict[str, Any]:
    """The JSON object sent, numbers read as decimals; NaN, Infinity, a list or anything unreadable
    is refused as Intuit's parser refuses it."""
    raw = request.get_data(cache=True)
    try:
        body = json.loads(raw, parse_float=Decimal, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise _invalid("", "Can not parse the request body") from None
    if not isinstance(body, dict):
        raise _invalid("", "the request body is not an object")
    return body


def _object(value: Any, element: str, *, required: bool = False) -> dict[str, Any] | None:
    if value is None:
        if required:
            raise _missing(element)
        return None
    if not isinstance(value, dict):
        raise _invalid(element)
    return value


def _missing(element: str) -> Refused:
    return Refused(
        "Required param missing, need to supply the required value for the API",
        "2020",
        element,
        detail=f"Required parameter {element} is missing in the request",
    )


def _text(value: Any, element: str, *, required: bool = False) -> str | None:
    if value is None or value == "":
        if required:
            raise _missing(element)
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _invalid(element)
    text = str(value)
    limit = MAX_LENGTHS.get(element.rpartition(".")[2], 4000)
    if len(text) > limit:
        raise Refused(
            "String length is either shorter or longer than supported by specification",
            "2050",
            element,
            detail=f"String length specified does not match the supported length. Min:0 Max:{limit} "
            f"supported. Supplied length:{len(text)}",
        )
    return text


def _amount(value: Any, element: str, *, required: bool = False) -> Decimal | None:
    """A decimal QuickBooks keeps: a JSON number or a numeric string, finite, in its 10.5 format."""
    if value is None:
        if required:
            raise _missing(element)
        return None
    if isinstance(value, bool) or not isinstance(value, int | Decimal | str):
        raise _invalid(element)
    if isinstance(value, str) and not re.fullmatch(r"\s*-?[0-9]+(\.[0-9]+)?\s*", value):
        raise _invalid(element)
    try:
        number = Decimal(value.strip() if isinstance(value, str) else value)
    except (InvalidOperation, ValueError):
        raise _invalid(element) from None
    if not number.is_finite():
        raise _invalid(element)
    sign, digits, exponent = number.normalize().as_tuple() if number else (0, (0,), 0)
    decimals = max(0, -exponent)
    whole = max(0, len(digits) + exponent)
    if decimals > AMOUNT_DECIMALS or whole > AMOUNT_DIGITS:
        raise Refused(
            "Request has invalid or unsupported property",
            "2010",
            element,
            detail=f"Property Name:{element} specified is unsupported or invalid: at most "
            f"{AMOUNT_DIGITS} digits before the decimal point and {AMOUNT_DECIMALS} after",
        )
    return number


def _date(value: Any, element: str) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        raise _invalid(element)
    try:
        date.fromisoformat(value)
    except ValueError:
        raise _invalid(element) from None
    return value


def _ref(value: Any, element: str, *, required: bool = False) -> str | None:
    """A reference {"value": "<Id>", "name": …}: its Id, as text."""
    found = _object(value, element, required=required)
    if found is None:
        return None
    return _text(found.get("value"), f"{element}.value", required=True)


def _lines(body: dict, element: str = "Line") -> list[dict]:
    lines = body.get(element)
    if lines is None or lines == []:
        raise _missing(element)
    if not isinstance(lines, list) or not all(isinstance(line, dict) for line in lines):
        raise _invalid(element)
    if len(lines) > 1000:
        raise _invalid(element, "Line: too many lines")
    return lines


# --- the query language --------------------------------------------------------------------------

_TOKEN = re.compile(r"\s*('(?:[^'\\]|\\.)*'|<=|>=|!=|<>|[=<>(),*]|[^\s'(),=<>!*]+)", re.S)
_CLAUSES = ("where", "orderby", "order", "startposition", "maxresults")


@dataclass
class Statement:
    entity: str
    count: bool
    conditions: list[tuple[str, str, Any]]
    order: tuple[str, bool] | None
    start: int
    maximum: int


def _parse_error(detail: str) -> Refused:
    # https://developer.intuit.com/app/developer/qbo/docs/learn/explore-the-quickbooks-online-api/data-queries
    return Refused("Error parsing query", "4000", "", detail=f"QueryParserError: {detail}")


def _query_error(detail: str) -> Refused:
    return Refused("Invalid query", "4001", "", detail=f"QueryValidationError: {detail}")


def _tokens(text: str) -> list[str]:
    tokens, index = [], 0
    while index < len(text):
        found = _TOKEN.match(text, index)
        if found is None:
            if text[index:].strip() == "":
                break
            raise _parse_error(f'Encountered "{text[index : index + 10]}" at line 1, column {index + 1}.')
        tokens.append(found.group(1))
        index = found.end()
    return tokens


def _value(token: str) -> Any:
    if token.startswith("'"):
        return re.sub(r"\\(.)", r"\1", token[1:-1])
    if token.lower() in ("true", "false"):
        return token.lower() == "true"
    if re.fullmatch(r"-?[0-9]{1,19}", token):
        return int(token)
    raise _parse_error(f'Encountered "{token[:30]}".')


def _position(token: str, clause: str) -> int:
    if not re.fullmatch(r"[0-9]{1,19}", token or ""):
        raise _parse_error(f'Encountered "{(token or "<EOF>")[:30]}" after {clause.upper()}.')
    number = int(token)
    if number > MAX_STORED:
        raise _query_error(f"value {token[:30]} is too large for {clause.upper()}")
    return number


def parse_statement(text: str) -> Statement:
    """`SELECT * | COUNT(*) FROM Entity [WHERE a = 'x' AND b IN (…) AND c LIKE '%y%']
    [ORDERBY f [ASC|DESC]] [STARTPOSITION n] [MAXRESULTS n]`, as python-quickbooks and Raccord send it."""
    if "\x00" in text:
        raise _parse_error("Lexical error: NUL")
    tokens = _tokens(text)
    lowered = [t.lower() for t in tokens]
    if not tokens or lowered[0] != "select":
        raise _parse_error(f'Encountered "{tokens[0][:30] if tokens else "<EOF>"}" at line 1, column 1.')
    index, count = 1, False
    if lowered[1:5] == ["count", "(", "*", ")"]:
        count, index = True, 5
    elif lowered[1:2] == ["*"]:
        index = 2
    else:
        while index < len(tokens) and lowered[index] != "from":  # a list of fields: all are sent
            index += 1
    if index >= len(tokens) or lowered[index] != "from" or index + 1 >= len(tokens):
        raise _parse_error('Was expecting: "from" ...')
    entity = tokens[index + 1]
    if not re.fullmatch(r"[A-Za-z]+", entity):
        raise _parse_error(f'Encountered "{entity[:30]}".')
    entity = entity[:1].upper() + entity[1:]
    index += 2
    conditions: list[tuple[str, str, Any]] = []
    order, start, maximum = None, 1, DEFAULT_RESULTS
    if index < len(tokens) and lowered[index] == "where":
        index += 1
        while True:
            if index + 1 >= len(tokens):
                raise _parse_error('Encountered "<EOF>".')
            field, operator = tokens[index], lowered[index + 1]
            if not re.fullmatch(r"[A-Za-z][\w.]*", field):
                raise _parse_error(f'Encountered "{field[:30]}".')
            if operator == "in":
                if index + 2 >= len(tokens) or tokens[index + 2] != "(":
                    raise _parse_error('Was expecting: "(" ...')
                values, index = [], index + 3
                while index < len(tokens) and tokens[index] != ")":
                    values.append(_value(tokens[index]))
                    index += 1
                    if index < len(tokens) and tokens[index] == ",":
                        index += 1
                if index >= len(tokens) or not values:
                    raise _parse_error('Was expecting: ")" ...')
                conditions.append((field, "in", values))
                index += 1
            elif operator in ("=", "<", ">", "<=", ">=", "like") and index + 2 < len(tokens):
                conditions.append((field, operator, _value(tokens[index + 2])))
                index += 3
            else:
                raise _parse_error(f'Encountered "{tokens[index + 1][:30]}".')
            if index < len(tokens) and lowered[index] == "and":
                index += 1
                if index >= len(tokens):
                    raise _parse_error('Encountered "<EOF>".')
                continue
            break
    if index < len(tokens) and lowered[index] in ("orderby", "order"):
        index += 1
        if lowered[index - 1] == "order":
            if index >= len(tokens) or lowered[index] != "by":
                raise _parse_error('Was expecting: "by" ...')
            index += 1
        if index >= len(tokens) or not re.fullmatch(r"[A-Za-z][\w.]*", tokens[index]):
            raise _parse_error("Was expecting: a property ...")
        field, descending = tokens[index], False
        index += 1
        if index < len(tokens) and lowered[index] in ("asc", "desc"):
            descending = lowered[index] == "desc"
            index += 1
        order = (field, descending)
    if index < len(tokens) and lowered[index] == "startposition":
        start = _position(tokens[index + 1] if index + 1 < len(tokens) else "", "startposition")
        index += 2
    if index < len(tokens) and lowered[index] == "maxresults":
        maximum = _position(tokens[index + 1] if index + 1 < len(tokens) else "", "maxresults")
        index += 2
        if maximum > MAX_RESULTS:
            raise _query_error(f"value {maximum} is too large. Max allowed value is {MAX_RESULTS}")
    if index < len(tokens):
        raise _parse_error(f'Encountered "{tokens[index][:30]}".')
    return Statement(entity, count, conditions, order, max(1, start), maximum)


@api.route("/query", methods=["GET", "POST"])
def query():
    """GET /query?query=… or, as python-quickbooks sends it, POST /query with the statement as the
    body (Content-Type application/text)."""
    text = request.args.get("query") or ""
    if request.method == "POST" and not text:
        text = request.get_data(as_text=True)
    statement = parse_statement(text.strip())
    if statement.entity in TRANSACTIONS or statement.entity == "Attachable":
        rows = _transaction_rows(statement)
    elif statement.entity in ENTITY_KINDS:
        rows = None
    else:
        raise _query_error(f"Entity {statement.entity[:30]} is not supported")
    if rows is None:
        found = _item_statement(statement)
        if statement.count:
            total = db.session.scalar(select(func.count()).select_from(found.subquery()))
            return _ok({"QueryResponse": {"totalCount": total}})
        offset = min(statement.start - 1, MAX_STORED)
        rows = db.session.scalars(found.offset(offset).limit(statement.maximum)).all()
        shape = {
            "Account": _account_json,
            "Vendor": _party_json,
            "Customer": _party_json,
            "TaxRate": _tax_rate_json,
            "TaxCode": _tax_code_json,
            "Class": _class_json,
            "Department": _class_json,
            "Item": _item_json,
        }[statement.entity]
        shown = [shape(row) for row in rows]
    else:
        if statement.count:
            return _ok({"QueryResponse": {"totalCount": len(rows)}})
        shown = rows[statement.start - 1 : statement.start - 1 + statement.maximum]
    body: dict = {}
    if shown:
        body = {statement.entity: shown, "startPosition": statement.start, "maxResults": len(shown)}
    return _ok({"QueryResponse": body})


#: What a query may name, per kind of entity, and the column it reads.
_ITEM_FIELDS = {
    "id": SandboxItem.id,
    "name": SandboxItem.name,
    "displayname": SandboxItem.name,
    "fullyqualifiedname": SandboxItem.name,
    "companyname": SandboxItem.name,
    "active": SandboxItem.active,
    "metadata.lastupdatedtime": SandboxItem.updated_at,
    "metadata.createtime": SandboxItem.updated_at,
    "acctnum": SandboxItem.code,
}


def _item_statement(statement: Statement):
    found = select(SandboxItem).where(
        SandboxItem.company_id == g.company.id, SandboxItem.kind.in_(ENTITY_KINDS[statement.entity])
    )
    if not ENTITY_KINDS[statement.entity]:
        found = found.where(false())
    names_active = False
    for field, operator, value in statement.conditions:
        column = _ITEM_FIELDS.get(field.lower())
        if column is None:
            raise _query_error(f"property '{field[:40]}' is not queryable")
        values = value if operator == "in" else [value]
        if column is SandboxItem.id:
            numbers = [
                to_id(v) if isinstance(v, str | int) and not isinstance(v, bool) else None for v in values
            ]
            values = [n if n is not None else 0 for n in numbers]  # 0: no such Id
        elif column is SandboxItem.active:
            names_active = True
            if not all(isinstance(v, bool) for v in values) or operator not in ("=", "in"):
                raise _query_error(f"{field} takes = true, = false or IN (true, false)")
        elif column is SandboxItem.updated_at:
            moments = [to_moment(v) for v in values]
            if None in moments:
                raise _query_error(f"invalid date for {field}")
            values = moments
        else:
            if not all(isinstance(v, str) for v in values):
                raise _query_error(f"{field} takes quoted text")
        if operator == "in":
            found = found.where(column.in_(values))
        elif operator == "like":
            if column not in (SandboxItem.name, SandboxItem.code):
                raise _query_error(f"LIKE is not supported on {field}")
            pattern = values[0].replace("\\", "\\\\").replace("_", "\\_")
            found = found.where(column.ilike(pattern, escape="\\"))
        elif column in (SandboxItem.name, SandboxItem.code) and operator == "=":
            found = found.where(func.lower(column) == values[0].lower())
        else:
            found = found.where(
                {
                    "=": column == values[0],
                    "<": column < values[0],
                    ">": column > values[0],
                    "<=": column <= values[0],
                    ">=": column >= values[0],
                }[operator]
            )
    if not names_active:
        found = found.where(SandboxItem.active.is_(True))
    if statement.order is not None:
        column = _ITEM_FIELDS.get(statement.order[0].lower())
        if column is None:
            raise _query_error(f"property '{statement.order[0][:40]}' is not queryable")
        found = found.order_by(column.desc() if statement.order[1] else column)
    return found.order_by(SandboxItem.id)


def _transaction_rows(statement: Statement) -> list[dict]:
    """Bills, invoices and attachments: few per company, read and filtered here."""
    if statement.entity == "Attachable":
        rows = [
            _attachable_json(attachment, invoice)
            for invoice in _bills()
            for attachment in db.session.scalars(
                select(SandboxAttachment)
                .where(SandboxAttachment.invoice_id == invoice.id)
                .order_by(SandboxAttachment.id)
            )
        ]
        fields = {"id": "Id", "attachableref.entityref.value": "Ref"}
    else:
        rows = [_bill_json(r) for r in _bills() if r.payload.get("entity", "Bill") == statement.entity]
        fields = {"id": "Id", "docnumber": "DocNumber", "txndate": "TxnDate"}
    for field, operator, value in statement.conditions:
        key = fields.get(field.lower())
        if not key or operator not in ("=", "in"):
            raise _query_error(f"property '{field[:40]}' is not queryable with {operator}")
        wanted = {str(v) for v in (value if operator == "in" else [value])}

        def read(row: dict, key=key) -> Any:
            if key == "Ref":
                return row["AttachableRef"][0]["EntityRef"]["value"]
            return row.get(key)

        rows = [row for row in rows if str(read(row)) in wanted]
    return rows


# --- reading one entity --------------------------------------------------------------------------


@api.get("/<entity>/<key>")
def read_one(entity: str, key: str):
    """GET /vendor/12 and the like, as python-quickbooks' `.get()` reads them."""
    names = {name.lower(): name for name in [*ENTITY_KINDS, *TRANSACTIONS, "Attachable"]}
    name = names.get(entity.lower())
    if name is None:
        raise Refused(
            "Unsupported Operation",
            "500",
            "",
            detail=f"Operation Could not find resource for relative : /{entity[:40]} is not supported.",
        )
    number = to_id(key)
    found: dict | None = None
    if number is not None and name in ENTITY_KINDS:
        item = db.session.get(SandboxItem, number)
        if item is not None and item.company_id == g.company.id and item.kind in ENTITY_KINDS[name]:
            found = {
                "Account": _account_json,
                "Vendor": _party_json,
                "Customer": _party_json,
                "TaxRate": _tax_rate_json,
                "TaxCode": _tax_code_json,
                "Class": _class_json,
                "Item": _item_json,
            }[name](item)
    elif number is not None and name in TRANSACTIONS:
        invoice = _bill_by_id(number)
        if invoice is not None and invoice.payload.get("entity", "Bill") == name:
            found = _bill_json(invoice)
    elif number is not None:
        attachment = db.session.get(SandboxAttachment, number)
        invoice = _bill_by_id(attachment.invoice_id) if attachment is not None else None
        if invoice is not None:
            found = _attachable_json(attachment, invoice)
    if found is None:
        raise Refused(
            "Object Not Found",
            "610",
            "",
            detail="Object Not Found : Something you're trying to use has been made inactive. "
            "Check the fields with accounts, customers, items, vendors or employees.",
        )
    return _ok({name: found})


# --- writing -------------------------------------------------------------------------------------


@api.post("/vendor")
@api.post("/customer")
def create_party():
    entity = "Vendor" if request.path.endswith("/vendor") else "Customer"
    replay = _replay(entity)
    if replay is not None:
        return replay
    body = _body()
    display = _text(body.get("DisplayName"), "DisplayName")
    company = _text(body.get("CompanyName"), "CompanyName")
    tax_id = _text(body.get("TaxIdentifier"), "TaxIdentifier")
    email = _text(field_of(_object(body.get("PrimaryEmailAddr"), "PrimaryEmailAddr"), "Address"), "Address")
    name = (display or company or "").strip()
    if not name:
        raise _missing("DisplayName")
    if db.session.scalar(
        select(SandboxItem.id).where(
            SandboxItem.company_id == g.company.id,
            SandboxItem.kind.in_(("suppliers", "customers")),
            func.lower(SandboxItem.name) == name.lower(),
        )
    ):
        raise Refused(
            "Duplicate Name Exists Error",
            "6240",
            "DisplayName",
            detail="The name supplied already exists. : "
            "Another customer, vendor or employee is already using this name.",
        )
    item = SandboxItem(
        company_id=g.company.id,
        kind="suppliers" if entity == "Vendor" else "customers",
        external_id=f"qbo-{uuid.uuid4().hex[:12]}",
        name=name,
        vat_number=tax_id,
        extras={"email": email} if email else {},
        updated_at=utcnow(),
    )
    db.session.add(item)
    db.session.flush()
    answer = _remember(entity, {entity: _party_json(item)})
    if answer.status_code == 200:
        announce([item], "Create")  # after the commit, as Intuit: the app hears of the new party
    return answer


def field_of(value: dict | None, key: str) -> Any:
    return None if value is None else value.get(key)


def _common(body: dict, party: str) -> dict[str, Any]:
    """What a Bill and an Invoice share, checked and kept as QuickBooks reads it."""
    kept: dict[str, Any] = {party: {"value": _ref(body.get(party), party, required=True)}}
    for element, read in (
        ("DocNumber", _text),
        ("PrivateNote", _text),
        ("TxnDate", _date),
        ("DueDate", _date),
    ):
        value = read(body.get(element), element)
        if value is not None:
            kept[element] = value
    currency = _ref(body.get("CurrencyRef"), "CurrencyRef")
    if currency is not None:
        kept["CurrencyRef"] = {"value": currency}
    calculation = _text(body.get("GlobalTaxCalculation"), "GlobalTaxCalculation")
    if calculation is not None:
        if calculation not in ("TaxExcluded", "TaxInclusive", "NotApplicable"):
            raise _invalid("GlobalTaxCalculation")
        kept["GlobalTaxCalculation"] = calculation
    tax = _object(body.get("TxnTaxDetail"), "TxnTaxDetail")
    if tax is not None:
        total = _amount(tax.get("TotalTax"), "TxnTaxDetail.TotalTax")
        kept["TxnTaxDetail"] = {"TotalTax": float(total)} if total is not None else {}
    return kept


def _line_refs(detail: dict, element: str, line: dict[str, Any]) -> None:
    for ref in ("TaxCodeRef", "ClassRef"):
        value = _ref(detail.get(ref), f"{element}.{ref}")
        if value is None:
            continue
        if ref == "TaxCodeRef" and _by_id(("tax_rates",), value) is None:
            raise Refused(
                "Invalid Reference Id",
                "2500",
                "TaxCodeRef",
                detail="Invalid Reference Id : TaxCode not found",
            )
        if ref == "ClassRef" and _by_id(("tracking_categories",), value) is None:
            raise Refused(
                "Invalid Reference Id", "2500", "ClassRef", detail="Invalid Reference Id : Class not found"
            )
        line[element][ref] = {"value": value}


def _reference_refused(element: str, detail: str) -> Refused:
    return Refused("Invalid Reference Id", "2500", element, detail=f"Invalid Reference Id : {detail}")


@api.post("/bill")
def create_bill():
    replay = _replay("Bill")
    if replay is not None:
        return replay
    body = _body()
    kept = _common(body, "VendorRef")
    vendor = _by_id(("suppliers",), kept["VendorRef"]["value"])
    if vendor is None or not vendor.active:
        raise _reference_refused(
            "VendorRef", "Vendor assigned to this transaction has been deleted or is inactive."
        )
    kept["Line"] = []
    for line in _lines(body):
        if line.get("DetailType") != "AccountBasedExpenseLineDetail":
            raise _invalid("Line.DetailType", "DetailType: only AccountBasedExpenseLineDetail lines")
        element = "AccountBasedExpenseLineDetail"
        detail = _object(line.get(element), element, required=True)
        account_id = _ref(detail.get("AccountRef"), "AccountRef", required=True)
        account = _by_id(("accounts",), account_id)
        if account is None or not account.active:
            raise _reference_refused("AccountRef", f"Accounts element id {account_id} not found or inactive")
        kept_line: dict[str, Any] = {
            "DetailType": element,
            "Amount": float(_amount(line.get("Amount"), "Line.Amount", required=True)),
            element: {"AccountRef": {"value": account_id}},
        }
        description = _text(line.get("Description"), "Description")
        if description is not None:
            kept_line["Description"] = description
        _line_refs(detail, element, kept_line)
        kept["Line"].append(kept_line)
    invoice = SandboxInvoice(
        company_id=g.company.id,
        idempotency_key=f"qbo-{uuid.uuid4().hex}",
        payload={"dialect": "quickbooks", "entity": "Bill", **kept},
    )
    db.session.add(invoice)
    db.session.flush()
    return _remember("Bill", {"Bill": _bill_json(invoice)})


@api.post("/item")
def create_item():
    replay = _replay("Item")
    if replay is not None:
        return replay
    body = _body()
    name = (_text(body.get("Name"), "Name", required=True) or "").strip()
    if not name:
        raise _missing("Name")
    kind = _text(body.get("Type"), "Type") or "Service"
    if kind not in ("Service", "NonInventory", "Inventory"):
        raise _invalid("Type")
    account_id = _ref(body.get("IncomeAccountRef"), "IncomeAccountRef", required=True)
    account = _by_id(("accounts",), account_id)
    if account is None or not account.active:
        raise _reference_refused(
            "IncomeAccountRef", f"Accounts element id {account_id} not found or inactive"
        )
    if db.session.scalar(
        select(SandboxItem.id).where(
            SandboxItem.company_id == g.company.id, SandboxItem.kind == "qbo_items", SandboxItem.name == name
        )
    ):
        raise Refused("Duplicate Name Exists Error", "6240", "Name")
    item = SandboxItem(
        company_id=g.company.id,
        kind="qbo_items",
        external_id=f"qbo-item-{uuid.uuid4().hex[:10]}",
        name=name,
        extras={"type": kind, "income_account": str(account.id)},
        updated_at=utcnow(),
    )
    db.session.add(item)
    db.session.flush()
    return _remember("Item", {"Item": _item_json(item)})


@api.post("/invoice")
def create_invoice():
    replay = _replay("Invoice")
    if replay is not None:
        return replay
    body = _body()
    kept = _common(body, "CustomerRef")
    customer = _by_id(("customers",), kept["CustomerRef"]["value"])
    if customer is None or not customer.active:
        raise _reference_refused(
            "CustomerRef", "Customer assigned to this transaction is deleted or inactive."
        )
    kept["Line"] = []
    for line in _lines(body):
        element = "SalesItemLineDetail"
        if line.get("DetailType") != element:
            raise _invalid("Line.DetailType", "DetailType: only SalesItemLineDetail lines")
        detail = _object(line.get(element), element, required=True)
        item_id = _ref(detail.get("ItemRef"), "ItemRef", required=True)
        item = _by_id(("qbo_items",), item_id)
        if item is None or not item.active:
            raise _reference_refused("ItemRef", "Item element not found or inactive")
        account = _by_id(("accounts",), (item.extras or {}).get("income_account"))
        if account is None or not account.active:
            raise _reference_refused("IncomeAccountRef", "the item's income account is inactive")
        kept_line: dict[str, Any] = {
            "DetailType": element,
            "Amount": float(_amount(line.get("Amount"), "Line.Amount", required=True)),
            element: {"ItemRef": {"value": item_id}},
        }
        for number in ("Qty", "UnitPrice"):
            value = _amount(detail.get(number), f"{element}.{number}")
            if value is not None:
                kept_line[element][number] = float(value)
        description = _text(line.get("Description"), "Description")
        if description is not None:
            kept_line["Description"] = description
        _line_refs(detail, element, kept_line)
        kept["Line"].append(kept_line)
    invoice = SandboxInvoice(
        company_id=g.company.id,
        idempotency_key=f"qbo-{uuid.uuid4().hex}",
        payload={"dialect": "quickbooks", "entity": "Invoice", **kept},
    )
    db.session.add(invoice)
    db.session.flush()
    return _remember("Invoice", {"Invoice": _bill_json(invoice)})


def _multipart() -> dict[str, tuple[Any, bytes]]:
    """Each part of a multipart body with its own headers: python-quickbooks sends the file as a
    base64 part (Content-Transfer-Encoding: base64) without a file name, which a form parser would
    take for a text field and leave encoded."""
    boundary = request.mimetype_params.get("boundary", "")
    if request.mimetype != "multipart/form-data" or not boundary:
        raise _invalid("", "the upload is not multipart/form-data")
    decoder = MultipartDecoder(boundary.encode("latin-1", "replace"))
    parts: dict[str, tuple[Any, bytearray]] = {}
    try:
        decoder.receive_data(request.get_data(cache=True))
        decoder.receive_data(None)
        current = None
        while True:
            event = decoder.next_event()
            if isinstance(event, Field | File):
                current = parts.setdefault(event.name, (event.headers, bytearray()))
            elif isinstance(event, Data) and current is not None:
                current[1].extend(event.data)
            elif isinstance(event, Epilogue | NeedData):
                break
    except ValueError:
        raise _invalid("", "the multipart body cannot be read") from None
    decoded: dict[str, tuple[Any, bytes]] = {}
    for name, (headers, data) in parts.items():
        if (headers.get("Content-Transfer-Encoding") or "").strip().lower() == "base64":
            try:
                data = bytearray(binascii.a2b_base64(bytes(data)))
            except (binascii.Error, ValueError):
                raise _invalid(name, f"{name}: invalid base64") from None
        decoded[name] = (headers, bytes(data))
    return decoded


@api.post("/upload")
def upload():
    """POST /upload: file_metadata_01 (the Attachable, JSON) and file_content_01 (the file)
    (https://developer.intuit.com/app/developer/qbo/docs/api/accounting/all-entities/attachable)."""
    parts = _multipart()
    if "file_metadata_01" not in parts or "file_content_01" not in parts:
        raise _missing("file_metadata_01" if "file_metadata_01" not in parts else "file_content_01")
    _headers, metadata = parts["file_metadata_01"]
    content_headers, data = parts["file_content_01"]
    try:
        attachable = json.loads(metadata, parse_float=Decimal, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise _invalid("file_metadata_01", "file_metadata_01: Can not parse the Attachable") from None
    if not isinstance(attachable, dict):
        raise Refused("The file metadata must be of Attachable type", "6040", "file_metadata_01")
    refs = attachable.get("AttachableRef")
    if not isinstance(refs, list) or not refs or not all(isinstance(r, dict) for r in refs):
        raise _missing("AttachableRef")
    entity_ref = _object(refs[0].get("EntityRef"), "AttachableRef.EntityRef", required=True)
    kind = _text(entity_ref.get("type"), "EntityRef.type", required=True)
    value = _text(entity_ref.get("value"), "EntityRef.value", required=True)
    if kind not in TRANSACTIONS:
        raise Refused(
            "The entity reference type is unsupported for Attachable",
            "6050",
            "AttachableRef",
            detail=f"The entity reference type {kind[:30]} is unsupported for Attachable",
        )
    invoice = _bill_by_id(value)
    if invoice is None or kind != invoice.payload.get("entity", "Bill"):
        raise _reference_refused("AttachableRef", f"{kind} {value[:30]} not found")
    filename = _text(attachable.get("FileName"), "FileName")
    filename = filename or _disposition_filename(content_headers) or "piece-jointe"
    content_type = _text(attachable.get("ContentType"), "ContentType")
    content_type = content_type or content_headers.get("Content-Type") or "application/octet-stream"
    attachment = SandboxAttachment(
        invoice_id=invoice.id,
        filename=filename[:200],
        content_type=content_type[:80],
        size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        data=data,
    )
    db.session.add(attachment)
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise Refused("Duplicate file name for this transaction", "6000", "FileName") from None
    return _ok({"AttachableResponse": [{"Attachable": _attachable_json(attachment, invoice)}]})


def _disposition_filename(headers) -> str | None:
    found = re.search(r'filename="([^"]{1,200})"', headers.get("Content-Disposition") or "")
    return found.group(1) if found else None


# --- the company's transactions -------------------------------------------------------------------


def _bills() -> list[SandboxInvoice]:
    return [
        i
        for i in db.session.scalars(
            select(SandboxInvoice)
            .where(SandboxInvoice.company_id == g.company.id)
            .order_by(SandboxInvoice.id)
        )
        if (i.payload or {}).get("dialect") == "quickbooks"
        and i.payload.get("entity", "Bill") in TRANSACTIONS
    ]


def _bill_by_id(value) -> SandboxInvoice | None:
    number = to_id(value)
    if number is None:
        return None
    invoice = db.session.get(SandboxInvoice, number)
    if invoice is None or invoice.company_id != g.company.id:
        return None
    return invoice if (invoice.payload or {}).get("dialect") == "quickbooks" else None


def _by_id(kinds, value) -> SandboxItem | None:
    number = to_id(value)
    if number is None or number > MAX_ID:
        return None
    item = db.session.get(SandboxItem, number)
    return item if item is not None and item.company_id == g.company.id and item.kind in kinds else None


# --- shapes ---------------------------------------------------------------------------------


def _meta(moment: datetime) -> dict:
    stamp = _iso(moment)
    return {"CreateTime": stamp, "LastUpdatedTime": stamp}


def _account_json(item: SandboxItem) -> dict:
    extras = item.extras or {}
    if item.kind == "payment_methods":
        kind, classification = ("Credit Card", "Liability") if item.code == "CB" else ("Bank", "Asset")
    else:
        code = item.code or ""
        kind, classification = {
            "expense": ("Expense", "Expense"),
            "revenue": ("Income", "Revenue"),
        }.get(
            extras.get("type"),
            ("Other Current Liability", "Liability")
            if code.startswith("4")
            else ("Other Current Asset", "Asset"),
        )
    return {
        "Id": str(item.id),
        "Name": item.name,
        "FullyQualifiedName": item.name,
        "AcctNum": item.code,
        "AccountType": kind,
        "Classification": classification,
        "Active": item.active,
        "SyncToken": "0",
        "MetaData": _meta(item.updated_at),
    }


def _party_json(item: SandboxItem) -> dict:
    extras = item.extras or {}
    body = {
        "Id": str(item.id),
        "DisplayName": item.name,
        "CompanyName": item.name,
        "PrintOnCheckName": item.name,
        "Active": item.active,
        "SyncToken": "0",
        "MetaData": _meta(item.updated_at),
    }
    if extras.get("email"):
        body["PrimaryEmailAddr"] = {"Address": extras["email"]}
    if item.vat_number:
        body["TaxIdentifier"] = "XXXXXXXX" + item.vat_number[-4:]  # masked on read, as QuickBooks does
    return body


def _tax_rate_json(item: SandboxItem) -> dict:
    return {
        "Id": str(item.id),
        "Name": item.name,
        "RateValue": float(item.rate or 0),
        "Active": item.active,
        "SyncToken": "0",
        "MetaData": _meta(item.updated_at),
    }


def _tax_code_json(item: SandboxItem) -> dict:
    detail = {
        "TaxRateDetail": [
            {
                "TaxRateRef": {"value": str(item.id), "name": item.name},
                "TaxTypeApplicable": "TaxOnAmount",
                "TaxOrder": 0,
            }
        ]
    }
    return {
        "Id": str(item.id),
        "Name": item.code or item.name,
        "Description": item.name,
        "Active": item.active,
        "Taxable": True,
        "PurchaseTaxRateList": detail,
        "SalesTaxRateList": detail,
        "SyncToken": "0",
        "MetaData": _meta(item.updated_at),
    }


def _class_json(item: SandboxItem) -> dict:
    axis = (item.extras or {}).get("axis")
    return {
        "Id": str(item.id),
        "Name": item.name,
        "FullyQualifiedName": f"{axis}:{item.name}" if axis else item.name,
        "SubClass": bool(axis),
        "Active": item.active,
        "SyncToken": "0",
        "MetaData": _meta(item.updated_at),
    }


def _item_json(item: SandboxItem) -> dict:
    return {
        "Id": str(item.id),
        "Name": item.name,
        "Type": (item.extras or {}).get("type", "Service"),
        "IncomeAccountRef": {"value": (item.extras or {}).get("income_account")},
        "Active": item.active,
        "SyncToken": "0",
        "MetaData": _meta(item.updated_at),
    }


def _bill_json(invoice: SandboxInvoice) -> dict:
    payload = invoice.payload
    total = sum(Decimal(str(li.get("Amount") or 0)) for li in payload.get("Line") or [])
    tax = Decimal(str((payload.get("TxnTaxDetail") or {}).get("TotalTax") or 0))
    party = "CustomerRef" if payload.get("entity") == "Invoice" else "VendorRef"
    return {
        "Id": str(invoice.id),
        "SyncToken": "0",
        "DocNumber": payload.get("DocNumber"),
        "TxnDate": payload.get("TxnDate"),
        "DueDate": payload.get("DueDate"),
        party: payload.get(party),
        "TotalAmt": float(total + tax),
        "Balance": float(total + tax),
        "Line": payload.get("Line"),
        "MetaData": _meta(invoice.created_at),
    }


def _attachable_json(attachment: SandboxAttachment, invoice: SandboxInvoice) -> dict:
    return {
        "Id": str(attachment.id),
        "FileName": attachment.filename,
        "ContentType": attachment.content_type,
        "Size": attachment.size,
        "AttachableRef": [
            {"EntityRef": {"type": invoice.payload.get("entity", "Bill"), "value": str(invoice.id)}}
        ],
        "SyncToken": "0",
        "MetaData": _meta(attachment.created_at),
    }


# --- requestid: QuickBooks answers a request sent again with the same requestid only once ----


def _replay(what: str) -> Response | None:
    key = request.args.get("requestid")
    if not key:
        return None
    stored = get_setting(_key_name(what, key))
    return _ok(stored) if stored is not None else None


def _remember(what: str, answer: dict) -> Response:
    key = request.args.get("requestid")
    if key:
        db.session.add(SandboxSetting(key=_key_name(what, key), value=answer))
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        replay = _replay(what)
        return (
            replay if replay is not None else _fault(400, "ValidationFault", "Duplicate request", "6000", "")
        )
    return _ok(answer)


def _key_name(what: str, key: str) -> str:
    return "qbo-" + hashlib.sha256(f"{g.company.id}/{what}/{key}".encode()).hexdigest()[:32]


# --- faults, in QuickBooks' words -----------------------------------------------------------


def _ok(body: dict) -> Response:
    return jsonify({**body, "time": _iso(utcnow(), millis=True)})


def _fault(status: int, kind: str, message: str, code: str, element: str, *, detail: str = "") -> Response:
    error = {"Message": message, "Detail": detail or message, "code": code}
    if element:
        error["element"] = element
    response = jsonify({"Fault": {"Error": [error], "type": kind}, "time": _iso(utcnow(), millis=True)})
    response.status_code = status
    return response


def _auth_fault(detail: str) -> Response:
    # The 401 body QuickBooks sends: lower-case keys, unlike its other faults.
    response = jsonify(
        {
            "fault": {
                "error": [
                    {
                        "message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                        "detail": detail,
                        "code": "3200",
                    }
                ],
                "type": "AUTHENTICATION",
            },
            "time": _iso(utcnow(), millis=True),
        }
    )
    response.status_code = 401
    response.headers["WWW-Authenticate"] = 'Bearer realm="Intuit", error="invalid_token"'
    return response


def _faults() -> Response | None:
    """Injected faults dressed as QuickBooks': 429 ThrottleExceeded, without Retry-After."""
    faulted = apply_faults()
    if faulted is None or faulted.status_code != 429:
        return faulted
    return _fault(
        429,
        "SERVICE",
        "message=ThrottleExceeded; errorCode=003001; statusCode=429",
        "3001",
        "",
        detail="The request limit was reached.",
    )


def _iso(moment: datetime, *, millis: bool = False) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds" if millis else "seconds")
