"""'Reproduire dans le bac à sable': a dossier's configuration copied into a support dossier, connected
to the sandbox software seeded with the same lists and put in the same state.

What is copied: the dossier's settings; every integration (the one in use becomes a connection to a
new company of the sandbox software, the past ones stay as history, disconnected); the lists as last
loaded, with their last loads; supplier, customer and payment-method rules, the 'Codage par défaut'
and the answers given in transfer reviews; the documents and their coding, without their PDFs.
The sandbox company holds the same items under the same ids, so refreshing the copy changes
nothing; its grant is live, expired or absent as the original's integration is connected, expired
or disconnected, so staff replay the user's steps ('Se reconnecter'…) on the same screens.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from typing import Any

from flask import current_app
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import insert, select

from webapp.connectors.base import TokenSet
from webapp.extensions import db
from webapp.models import (
    CodingDefault,
    Document,
    DocumentStatus,
    Dossier,
    Integration,
    IntegrationStatus,
    ItemChoice,
    ListItem,
    ListSync,
    PaymentRule,
    Rule,
    SyncStatus,
    User,
)
from webapp.models.base import utcnow
from webapp.models.coding import CODING_ITEMS
from webapp.services.events import record_event
from webapp.services.integrations import store_tokens
from webapp.services.jobs import UserFacingJobError, report_progress
from webapp.templating import datetime_fr

SANDBOX = "sandbox"
_ITEM_FIELDS = [f"{field}_id" for field in CODING_ITEMS]


@dataclass
class Reproduction:
    copy: Dossier
    sandbox_company_id: str | None
    items: int
    rules: int
    documents: int
    state: str


def _columns(model: type, row: Any, skip: tuple[str, ...] = ("id",)) -> dict[str, Any]:
    return {c.key: getattr(row, c.key) for c in model.__mapper__.column_attrs if c.key not in skip}


def reproduce(dossier_id: int, staff_id: int, *, job_run_id: int | None = None) -> Reproduction:
    """Make the copy; committed as a whole, or not at all."""
    app = current_app
    if not app.config.get("SANDBOX_ENABLED"):
        raise UserFacingJobError(
            _(
                "Le logiciel de démonstration est désactivé sur cette installation : "
                "la reproduction est impossible."
            )
        )
    original = db.session.get(Dossier, dossier_id)
    staff = db.session.get(User, staff_id)
    if original is None or staff is None or not staff.is_staff:
        raise UserFacingJobError(_("Dossier ou membre du support introuvable."))

    from sandbox.models import SandboxClient, SandboxCompany
    from webapp.sandbox_host import owner_key

    client_id = app.config["SANDBOX_CLIENT_ID"]
    if db.session.get(SandboxClient, client_id) is None:
        raise UserFacingJobError(
            _("Le logiciel de démonstration n'est pas initialisé (flask --app wsgi sandbox-seed).")
        )

    now = utcnow()
    copy = Dossier(
        organisation_id=staff.organisation_id,
        # The hour of Paris, as every time the pages show (the same as « Expirée depuis le … à … »).
        name=_("%(name)s — reproduction du %(when)s", name=original.name, when=datetime_fr(now)),
        siren=original.siren,
        warn_before_creating_supplier=original.warn_before_creating_supplier,
        reproduced_from_id=original.id,
    )
    db.session.add(copy)
    db.session.flush()

    integrations = sorted(original.integrations, key=lambda i: (i.created_at, i.id))
    current = original.current_integration
    seed_from = current or (integrations[-1] if integrations else None)
    company = None
    if seed_from is not None:
        company = SandboxCompany(
            id=f"rep-{copy.id}-{uuid.uuid4().hex[:8]}",
            name=_(
                "%(company)s (reproduction n° %(number)d)", company=seed_from.company_name, number=copy.id
            ),
            siren=original.siren,
            owner=owner_key(staff.organisation_id),  # offered to the support team only
        )
        db.session.add(company)
        db.session.flush()

    item_map: dict[int, int] = {}
    integration_map: dict[int, int] = {}
    item_total = 0
    for index, old in enumerate(integrations):
        report_progress(5 + 60 * index // max(1, len(integrations)), _("Copie des listes"))
        new = Integration(
            dossier_id=copy.id,
            software=SANDBOX if old is current else old.software,
            company_id=company.id if (old is current and company) else old.company_id,
            company_name=company.name if (old is current and company) else old.company_name,
            status=old.status,
            status_since=old.status_since,
            status_reason=old.status_reason,
            connected_by_id=old.connected_by_id,
            created_at=old.created_at,
        )
        db.session.add(new)
        db.session.flush()
        integration_map[old.id] = new.id
        item_total += _copy_lists(old, new, item_map, company.id if old is seed_from and company else None)

    report_progress(70, _("Copie des règles et des documents"))
    maps = _copy_rules(original, copy, integration_map, item_map)
    rule_total = maps.count
    document_total = _copy_documents(original, copy, integration_map, item_map, maps)

    state = _("aucune intégration")
    if current is not None:
        new_current = db.session.get(Integration, integration_map[current.id])
        state = _put_in_state(new_current, company, client_id)

    record_event(
        dossier_id=copy.id,
        integration_id=integration_map.get(current.id) if current else None,
        actor_id=staff.id,
        job_run_id=job_run_id,
        kind="support.reproduction_created",
        message=_(
            "Reproduction du dossier « %(name)s » (n° %(number)d) par le support (%(staff)s) : "
            "%(contents)s ; intégration %(state)s.",
            name=original.name,
            number=original.id,
            staff=staff.display_name,
            contents=copied_contents(item_total, rule_total, document_total),
            state=state,
        ),
        details={
            "original_dossier_id": original.id,
            "sandbox_company_id": company.id if company else None,
            "original_software": current.software if current else None,
        },
    )
    record_event(
        dossier_id=original.id,
        actor_id=staff.id,
        job_run_id=job_run_id,
        kind="support.reproduced",
        message=_(
            "Le support (%(staff)s) a reproduit ce dossier dans le bac à sable (copie n° %(number)d).",
            staff=staff.display_name,
            number=copy.id,
        ),
        details={"copy_dossier_id": copy.id, "staff_email": staff.email},
    )
    db.session.commit()
    report_progress(100, _("Copie terminée"))
    return Reproduction(copy, company.id if company else None, item_total, rule_total, document_total, state)


def copied_contents(items: int, rules: int, documents: int) -> str:
    """'1 200 éléments de listes, 2 règles, aucun document': what a reproduction copied."""
    return ", ".join(
        (
            _("aucun élément de liste")
            if items == 0
            else ngettext("%(num)d élément de liste", "%(num)d éléments de listes", items),
            _("aucune règle") if rules == 0 else ngettext("%(num)d règle", "%(num)d règles", rules),
            _("aucun document")
            if documents == 0
            else ngettext("%(num)d document", "%(num)d documents", documents),
        )
    )


def _copy_lists(old: Integration, new: Integration, item_map: dict[int, int], company_id: str | None) -> int:
    rows = db.session.scalars(
        select(ListItem).where(ListItem.integration_id == old.id).order_by(ListItem.id)
    ).all()
    if rows:
        db.session.execute(
            insert(ListItem),
            [{**_columns(ListItem, r), "integration_id": new.id} for r in rows],
        )
        new_ids = dict(
            ((kind, external_id), item_id)
            for item_id, kind, external_id in db.session.execute(
                select(ListItem.id, ListItem.kind, ListItem.external_id).where(
                    ListItem.integration_id == new.id
                )
            )
        )
        for r in rows:
            item_map[r.id] = new_ids[(r.kind, r.external_id)]
    for sync in db.session.scalars(select(ListSync).where(ListSync.integration_id == old.id)):
        status = sync.status
        if status in (SyncStatus.RUNNING, SyncStatus.DEFERRED):  # its job belongs to the original
            status = SyncStatus.SUCCEEDED if sync.last_loaded_at else SyncStatus.NEVER
        db.session.add(
            ListSync(
                **_columns(ListSync, sync, skip=("id", "job_run_id", "integration_id", "status")),
                integration_id=new.id,
                status=status,
            )
        )
    if company_id is not None and rows:
        _seed_sandbox(company_id, rows)
    return len(rows)


def _seed_sandbox(company_id: str, rows: list[ListItem]) -> None:
    """The sandbox company gets the items as the original's software last gave them."""
    from sandbox.models import SandboxItem

    now = utcnow()
    db.session.execute(
        insert(SandboxItem),
        [
            {
                "company_id": company_id,
                "kind": r.kind.value,
                "external_id": r.external_id,
                "code": r.code,
                "name": r.name,
                "vat_number": r.vat_number,
                "siren": r.siren,
                "rate": r.rate,
                "active": r.active,
                "extras": r.extras or {},
                "guid": str(uuid.uuid4()),
                "updated_at": now,
            }
            for r in rows
        ],
    )


def _remap_items(values: dict[str, Any], item_map: dict[int, int], fields: list[str]) -> dict[str, Any]:
    for field in fields:
        if values.get(field) is not None:
            values[field] = item_map.get(values[field])
    return values


@dataclass
class _RuleMaps:
    count: int
    rules: dict[int, int]
    payment_rules: dict[int, int]


def _copy_rules(
    original: Dossier, copy: Dossier, integration_map: dict[int, int], item_map: dict[int, int]
) -> _RuleMaps:
    """Rules (the transferred ones pointing at their copied source), payment-method rules, the
    'Codage par défaut' and the review answers, on the copied integrations and items."""
    maps = _RuleMaps(0, {}, {})
    for rule in db.session.scalars(select(Rule).where(Rule.dossier_id == original.id).order_by(Rule.id)):
        values = _remap_items(_columns(Rule, rule), item_map, ["party_id", *_ITEM_FIELDS])
        values.update(
            dossier_id=copy.id,
            integration_id=integration_map[rule.integration_id],
            transferred_from_id=maps.rules.get(rule.transferred_from_id)
            if rule.transferred_from_id
            else None,
        )
        new = Rule(**values)
        db.session.add(new)
        db.session.flush()
        maps.rules[rule.id] = new.id
        maps.count += 1
    for payment in db.session.scalars(
        select(PaymentRule).where(PaymentRule.dossier_id == original.id).order_by(PaymentRule.id)
    ):
        values = _remap_items(_columns(PaymentRule, payment), item_map, _ITEM_FIELDS)
        values.update(
            dossier_id=copy.id,
            integration_id=integration_map[payment.integration_id],
            transferred_from_id=maps.payment_rules.get(payment.transferred_from_id),
        )
        new_payment = PaymentRule(**values)
        db.session.add(new_payment)
        db.session.flush()
        maps.payment_rules[payment.id] = new_payment.id
        maps.count += 1
    defaults: dict[int, int] = {}
    for default in db.session.scalars(
        select(CodingDefault).where(CodingDefault.dossier_id == original.id).order_by(CodingDefault.id)
    ):
        values = _remap_items(_columns(CodingDefault, default), item_map, _ITEM_FIELDS)
        values.update(
            dossier_id=copy.id,
            integration_id=integration_map[default.integration_id],
            transferred_from_id=defaults.get(default.transferred_from_id),
        )
        new_default = CodingDefault(**values)
        db.session.add(new_default)
        db.session.flush()
        defaults[default.id] = new_default.id
    for choice in db.session.scalars(select(ItemChoice).where(ItemChoice.dossier_id == original.id)):
        values = _remap_items(_columns(ItemChoice, choice), item_map, ["source_item_id", "target_item_id"])
        values.update(dossier_id=copy.id, target_integration_id=integration_map[choice.target_integration_id])
        db.session.add(ItemChoice(**values))
    db.session.flush()
    return maps


def _copy_documents(
    original: Dossier,
    copy: Dossier,
    integration_map: dict[int, int],
    item_map: dict[int, int],
    maps: _RuleMaps,
) -> int:
    skip = ("id", "pdf_data", "pdf_name", "pdf_filename", "idempotency_key", "upstream_id", "job_run_id")
    count = 0
    for document in db.session.scalars(
        select(Document).where(Document.dossier_id == original.id).order_by(Document.id)
    ):
        values = _remap_items(_columns(Document, document, skip=skip), item_map, ["party_id", *_ITEM_FIELDS])
        values.update(
            dossier_id=copy.id,
            integration_id=integration_map[document.integration_id],
            rule_id=maps.rules.get(document.rule_id) if document.rule_id else None,
            payment_rule_id=maps.payment_rules.get(document.payment_rule_id)
            if document.payment_rule_id
            else None,
            idempotency_key=uuid.uuid4().hex,
            moved_from_integration_id=integration_map.get(document.moved_from_integration_id),
        )
        if document.status is DocumentStatus.IN_PROGRESS:  # its job belongs to the original
            values["status"] = DocumentStatus.READY
        db.session.add(Document(**values))
        count += 1
    db.session.flush()
    return count


def _put_in_state(integration: Integration, company: Any, client_id: str) -> str:
    """The sandbox grant as the original's: live tokens for Connectée; for Expirée, tokens whose
    consent has ended, so the next refresh gets invalid_grant and 'Se reconnecter' is the way out."""
    from sandbox.faults import get_setting
    from sandbox.oauth import DEFAULT_ACCESS_TTL, DEFAULT_REFRESH_TTL, issue_tokens

    if integration.status is IntegrationStatus.DISCONNECTED:
        return _("déconnectée")
    access_ttl = int(get_setting("access_ttl", None) or DEFAULT_ACCESS_TTL)
    refresh_ttl = int(get_setting("refresh_ttl", None) or DEFAULT_REFRESH_TTL)
    expired = integration.status is IntegrationStatus.EXPIRED
    issued_at = time.time() - 10**7 if expired else time.time()
    access, refresh = issue_tokens(
        client_id=client_id,
        company_id=company.id,
        scope="lists invoices",
        access_ttl=access_ttl,
        refresh_ttl=refresh_ttl,
        issued_at=issued_at,
        refresh_expired=expired,
    )
    store_tokens(
        integration,
        TokenSet(
            access_token=access,
            refresh_token=refresh,
            expires_at=issued_at + access_ttl,
            scope="lists invoices",
            extra={"lifetime": access_ttl},
        ),
    )
    return _("expirée") if expired else _("connectée")
