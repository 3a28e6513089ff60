"""Publishing documents to the accounting software: one job per document, at most once upstream."""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select, update
from sqlalchemy.orm import joinedload, lazyload

from webapp import metrics
from webapp.connectors.base import Attachment, ConnectorError, DailyBudgetSpent, IntegrationExpired
from webapp.connectors.catalogue import get_connector
from webapp.connectors.limits import when_words
from webapp.extensions import db
from webapp.models import (
    Direction,
    Document,
    DocumentStatus,
    Dossier,
    Integration,
    IntegrationStatus,
    JobRun,
    JobStatus,
    ListKind,
    User,
)
from webapp.models.base import utcnow
from webapp.services.documents import attachment_name
from webapp.services.events import record_event
from webapp.services.integrations import LiveTokens, mark_expired
from webapp.services.jobs import CRASHED_MESSAGE, JobDeferred, launch_job
from webapp.services.parties import PartyIdentity, best_match, match_in_list, upsert_list_item

log = logging.getLogger(__name__)

# Stored as the documents' failure reason, in the language of the moment (French in the workers);
# 'Republier les factures en échec' finds those failed for an expiry by it.
EXPIRED_REASON = _l("Intégration expirée")
DISCONNECTED_REASON = _l("Intégration déconnectée : connectez un logiciel comptable pour publier")
PARTY_LIST = {Direction.PURCHASE: ListKind.SUPPLIERS, Direction.SALE: ListKind.CUSTOMERS}
PUBLISHABLE = (DocumentStatus.READY, DocumentStatus.FAILED)


def request_publication(documents: list[Document], user: User | None) -> list[JobRun]:
    """Queue one job per publishable document; a document already on its way is not queued again."""
    runs = []
    for document in documents:
        integration = db.session.get(Integration, document.integration_id)
        if integration is None or integration.status is not IntegrationStatus.CONNECTED:
            # Fails at once, without calling the software.
            reason = str(
                DISCONNECTED_REASON
                if integration is None or integration.status is IntegrationStatus.DISCONNECTED
                else EXPIRED_REASON
            )
            _fail(document.id, reason, "", user_id=user.id if user else None)
            continue
        claimed = db.session.execute(
            update(Document)
            .where(
                Document.id == document.id,
                Document.status.in_(PUBLISHABLE),
                Document.account_id.is_not(None),
                Document.tax_rate_id.is_not(None),
            )
            .values(status=DocumentStatus.IN_PROGRESS, failure_reason="", failure_detail="")
        ).rowcount
        db.session.commit()
        if not claimed:
            continue
        run = launch_job(
            "jobs.publishing.publish_document",
            document.id,
            kind="publish",
            description=_("Publication de la facture %(number)s", number=document.number),
            owner=user,
            dossier=integration.dossier,
        )
        remember_job(document.id, run)
        runs.append(run)
    return runs


def invoice_payload(document: Document) -> dict:
    return {
        "type": document.direction.value,
        "number": document.number,
        "date": document.issue_date.isoformat(),
        "due_date": document.due_date.isoformat() if document.due_date else None,
        "contact_id": document.party.external_id if document.party else None,
        "currency": document.currency,
        "amount_net": str(document.amount_ht),
        "amount_tax": str(document.amount_tva),
        "amount_total": str(document.amount_ttc),
        "account_id": document.account.external_id if document.account else None,
        "account_code": document.account.code if document.account else None,
        "tax_rate_id": document.tax_rate.external_id if document.tax_rate else None,
        "payment_method_id": document.payment_method.external_id if document.payment_method else None,
        "tracking_id": document.tracking.external_id if document.tracking else None,
        "tracking": dict(document.tracking.extras or {}) if document.tracking else {},
        "paid": document.paid,
        "description": document.description,
        "has_pdf": bool(document.pdf_name),
    }


def prepare_retry(document_id: int) -> Callable[[JobRun], None]:
    """Before 'Relancer' on a failed publication: the document is put back 'En cours', unless it
    was published or changed since."""
    from webapp.services.jobs import NotRetryable

    claimed = db.session.execute(
        update(Document)
        .where(
            Document.id == document_id,
            Document.status.in_([DocumentStatus.FAILED, DocumentStatus.IN_PROGRESS, DocumentStatus.READY]),
        )
        .values(status=DocumentStatus.IN_PROGRESS, failure_reason="", failure_detail="")
    ).rowcount
    db.session.commit()
    if not claimed:
        raise NotRetryable(
            _("La facture a été publiée ou modifiée depuis cet échec : publiez-la depuis la page Documents.")
        )
    return lambda run: remember_job(document_id, run)


def remember_job(document_id: int, run: JobRun) -> None:
    """The document's publication job, for release_if_crashed to look at."""
    db.session.execute(update(Document).where(Document.id == document_id).values(job_run_id=run.id))
    db.session.commit()


def release_if_crashed(documents: list[Document]) -> None:
    """Documents left 'En cours' by a publication whose worker died (SIGKILL, a machine lost): the
    job says failed, so the document becomes 'Échec' with the reason, and can be published again.
    Publishing again sends the same idempotency key: the software keeps one invoice."""
    from webapp.services.jobs import job_view

    for document in documents:
        if document.status is not DocumentStatus.IN_PROGRESS or document.job_run_id is None:
            continue
        run = db.session.get(JobRun, document.job_run_id)
        if run is None or not job_view(run).finished or run.status is not JobStatus.FAILED:
            continue
        db.session.execute(
            update(Document)
            .where(
                Document.id == document.id,
                Document.status == DocumentStatus.IN_PROGRESS,
                Document.job_run_id == run.id,
            )
            .values(status=DocumentStatus.FAILED, failure_reason=run.message or str(CRASHED_MESSAGE))
        )
        db.session.commit()
        db.session.refresh(document)


def publish(document_id: int, job_run_id: int | None = None) -> str:
    """The job's work. Safe to run again: the idempotency keys make the software keep one invoice
    (and one supplier, when one had to be created)."""
    document = db.session.get(Document, document_id)
    if document is None:
        return _("Document introuvable.")
    if document.status is DocumentStatus.PUBLISHED:
        return _("La facture %(number)s est déjà publiée.", number=document.number)
    integration = db.session.get(Integration, document.integration_id)
    if integration.status is not IntegrationStatus.CONNECTED:
        reason = str(
            DISCONNECTED_REASON if integration.status is IntegrationStatus.DISCONNECTED else EXPIRED_REASON
        )
        _fail(document_id, reason, "", job_run_id=job_run_id)
        return reason
    connector = get_connector(integration.software, company_id=integration.company_id)
    try:
        tokens = LiveTokens(integration.id)
        if document.party_id is None:
            held = _resolve_party(document, integration, connector, tokens, job_run_id)
            if held:
                return held
        attachment = (
            Attachment(
                filename=document.pdf_filename or attachment_name(document.pdf_name),
                content=document.pdf_data,
            )
            if document.pdf_name and document.pdf_data
            else None
        )
        upstream_id = connector.publish_invoice(  # type: ignore[arg-type]
            tokens,
            invoice_payload(document),
            idempotency_key=document.idempotency_key,
            attachment=attachment,
        )
    except DailyBudgetSpent as exc:
        # Never a failure: the document stays 'En cours', saying when it goes, and its job is
        # scheduled again for then (services.jobs.tracked_job).
        message = _defer(document_id, integration, exc, job_run_id)
        raise JobDeferred(exc.resume_at, message) from None
    except IntegrationExpired as exc:
        mark_expired(integration.id, exc.detail)
        _fail(document_id, str(EXPIRED_REASON), exc.detail, job_run_id=job_run_id)
        return str(EXPIRED_REASON)
    except ConnectorError as exc:
        _fail(document_id, exc.message, exc.detail, job_run_id=job_run_id)
        return exc.message
    db.session.rollback()
    document = db.session.get(Document, document_id)
    document.status = DocumentStatus.PUBLISHED
    document.upstream_id = upstream_id
    document.published_at = utcnow()
    document.failure_reason = ""
    document.failure_detail = ""
    record_event(
        dossier_id=document.dossier_id,
        integration_id=document.integration_id,
        actor_id=_asked_by(job_run_id),
        job_run_id=job_run_id,
        kind="document.published",
        message=(
            _(
                "Facture %(number)s publiée dans %(software)s avec son PDF.",
                number=document.number,
                software=integration.software_name,
            )
            if attachment
            else _(
                "Facture %(number)s publiée dans %(software)s.",
                number=document.number,
                software=integration.software_name,
            )
        ),
        details={"document_id": document.id, "upstream_id": upstream_id, "pdf": bool(attachment)},
    )
    db.session.commit()
    return _("Facture %(number)s publiée.", number=document.number)


def _resolve_party(document: Document, integration: Integration, connector, tokens, job_run_id) -> str:
    """Give the document a party of the software: found in the list, found upstream, or created there.

    Returns the reason the document waits ('M'avertir avant de créer un fournisseur'), or "" when it
    has its party. Whatever happens later, the party found or created is committed first, so a
    re-run looks it up instead of creating it again (the creation's idempotency key covers a crash
    between the software's answer and that commit).
    """
    kind = PARTY_LIST[document.direction]
    identity = PartyIdentity(document.party_name, document.party_vat_number, document.party_siren)
    item = match_in_list(integration, kind, identity)
    how = _("trouvé dans la liste")
    if item is None:
        candidates = []
        for term in identity.search_terms():
            candidates += connector.find_parties(tokens, kind, term=term)
        found = best_match(identity, [c for c in candidates if c.active])
        if found is not None:
            item = upsert_list_item(integration, kind, found)
            how = _("trouvé dans %(software)s", software=integration.software_name)
    if item is None:
        dossier = db.session.get(Dossier, document.dossier_id)
        if (
            document.direction is Direction.PURCHASE
            and dossier.warn_before_creating_supplier
            and not document.party_creation_approved
        ):
            reason = _(
                "Fournisseur absent de %(software)s : « %(name)s » sera créé quand vous l'accepterez "
                "(paramètre « M'avertir avant de créer un fournisseur »).",
                software=integration.software_name,
                name=identity.name,
            )
            db.session.rollback()
            document = db.session.get(Document, document.id)
            document.status = DocumentStatus.TO_REVIEW
            document.hold_reason = reason
            record_event(
                dossier_id=document.dossier_id,
                integration_id=document.integration_id,
                job_run_id=job_run_id,
                kind="document.held",
                message=_(
                    "Facture %(number)s en attente : %(reason)s", number=document.number, reason=reason
                ),
                details={"document_id": document.id},
            )
            db.session.commit()
            return reason
        created = connector.create_party(
            tokens,
            kind,
            name=identity.name,
            vat_number=identity.vat or None,
            siren=identity.siren_digits or None,
            idempotency_key=f"{document.idempotency_key}-tiers",
        )
        item = upsert_list_item(integration, kind, created)
        how = _("créé dans %(software)s", software=integration.software_name)
    document.party_id = item.id
    document.hold_reason = ""
    record_event(
        dossier_id=document.dossier_id,
        integration_id=document.integration_id,
        job_run_id=job_run_id,
        kind="document.party_resolved",
        message=(
            _(
                "Fournisseur « %(name)s » %(how)s pour la facture %(number)s.",
                name=item.name,
                how=how,
                number=document.number,
            )
            if document.direction is Direction.PURCHASE
            else _(
                "Client « %(name)s » %(how)s pour la facture %(number)s.",
                name=item.name,
                how=how,
                number=document.number,
            )
        ),
        details={"document_id": document.id, "external_id": item.external_id, "how": how},
    )
    db.session.commit()
    return ""


def _defer(document_id: int, integration: Integration, exc: DailyBudgetSpent, job_run_id: int | None) -> str:
    """The document waits for the company's daily budget: still 'En cours', with the reason."""
    message = _(
        "La limite quotidienne de demandes de %(software)s pour cette société est atteinte : "
        "la publication reprendra %(when)s.",
        software=integration.software_name,
        when=when_words(exc.resume_at),
    )
    db.session.rollback()
    document = db.session.get(Document, document_id)
    document.status = DocumentStatus.IN_PROGRESS
    document.failure_reason = message  # shown beside 'En cours' while it waits (documents/_row.html)
    document.failure_detail = ""
    record_event(
        dossier_id=document.dossier_id,
        integration_id=document.integration_id,
        job_run_id=job_run_id,
        kind="document.publish_deferred",
        message=_(
            "Publication de la facture %(number)s reportée : %(reason)s",
            number=document.number,
            reason=message,
        ),
        details={"document_id": document.id, "resume_at": exc.resume_at.isoformat()},
    )
    db.session.commit()
    metrics.inc("raccord_budget_deferred", vendor=integration.software)
    return message


def _asked_by(job_run_id: int | None) -> int | None:
    """Who clicked « Publier » (the job's owner): the timeline says so, not « Raccord (automatique) »."""
    if job_run_id is None:
        return None
    run = db.session.get(JobRun, job_run_id)
    return run.owner_id if run is not None else None


def _fail(
    document_id: int, reason: str, detail: str, *, job_run_id: int | None = None, user_id: int | None = None
) -> None:
    db.session.rollback()
    document = db.session.get(Document, document_id)
    document.status = DocumentStatus.FAILED
    document.failure_reason = reason
    document.failure_detail = detail
    record_event(
        dossier_id=document.dossier_id,
        integration_id=document.integration_id,
        actor_id=user_id if user_id is not None else _asked_by(job_run_id),
        job_run_id=job_run_id,
        kind="document.publish_failed",
        outcome="failed",
        message=_(
            "Échec de la publication de la facture %(number)s : %(reason)s",
            number=document.number,
            reason=reason,
        ),
        details={"document_id": document.id, "answer": detail},
    )
    db.session.commit()


def failed_for_expiry(integration: Integration) -> list[Document]:
    return list(
        db.session.scalars(
            select(Document)
            .where(
                Document.integration_id == integration.id,
                Document.status == DocumentStatus.FAILED,
                Document.failure_reason == str(EXPIRED_REASON),
            )
            # Listed by number, party and amount: the coding items are not joined for them.
            .options(lazyload("*"), joinedload(Document.party))
        )
    )
