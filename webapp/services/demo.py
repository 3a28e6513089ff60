"""The local demo data, and the guard that keeps its logins out of production."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from flask import Flask, current_app
from flask_babel import gettext as _
from flask_babel import ngettext
from sqlalchemy import func, insert, inspect, select

from webapp.extensions import db
from webapp.models import Dossier, Organisation, Role, User, dossier_access

DEMO_MEMBER = ("demo@raccord.test", "demo")  # the cabinet's admin (« Équipe »)
#: A member of the demo cabinet who sees only DEMO_RESTRICTED_TO (the admin set them so on « Équipe »).
DEMO_RESTRICTED = ("lea@raccord.test", "lea")
DEMO_RESTRICTED_TO = "Boulangerie Martin"
DEMO_STAFF = ("support@raccord.test", "support")
DEMO_EMAIL_DOMAIN = "@raccord.test"

DEMO_DOSSIERS = [
    ("Boulangerie Martin", "732829320"),
    ("Atelier Dupont & Fils", "552100554"),
    ("Cabinet Médical Rousseau", "443061841"),
]


class DemoRefused(RuntimeError):
    pass


def database_is_empty() -> bool:
    return not db.session.scalar(select(func.count()).select_from(Organisation))


DEMO_ORGANISATION = "Cabinet Démo"


def demo_organisation_id() -> int | None:
    return db.session.scalar(select(Organisation.id).where(Organisation.name == DEMO_ORGANISATION))


def seed_demo() -> bool:
    """Create the demo organisation, logins and dossiers. Returns False if already there."""
    if db.session.scalar(select(User).where(User.email == DEMO_MEMBER[0])) is not None:
        return False
    cabinet = Organisation(name=DEMO_ORGANISATION)
    support_team = Organisation(name="Équipe Raccord")
    db.session.add_all([cabinet, support_team])

    admin = User(organisation=cabinet, email=DEMO_MEMBER[0], full_name="Camille Demo", role=Role.ADMIN)
    admin.set_password(DEMO_MEMBER[1])
    restricted = User(
        organisation=cabinet,
        email=DEMO_RESTRICTED[0],
        full_name="Léa Collaboratrice",
        role=Role.MEMBER,
        dossiers_restricted=True,
    )
    restricted.set_password(DEMO_RESTRICTED[1])
    staff = User(organisation=support_team, email=DEMO_STAFF[0], full_name="Support Raccord", role=Role.STAFF)
    staff.set_password(DEMO_STAFF[1])
    db.session.add_all([admin, restricted, staff])

    for name, siren in DEMO_DOSSIERS:
        dossier = Dossier(organisation=cabinet, name=name, siren=siren)
        db.session.add(dossier)
        if name == DEMO_RESTRICTED_TO:
            db.session.flush()
            db.session.execute(insert(dossier_access).values(user_id=restricted.id, dossier_id=dossier.id))
    db.session.commit()
    if current_app.config.get("SANDBOX_ENABLED"):
        from webapp.sandbox_host import seed_sandbox_for

        seed_sandbox_for(cabinet.id)  # the demo companies of 'Compta Démo' belong to the demo cabinet
    return True


def refuse_demo_accounts(app: Flask) -> None:
    """In production, refuse to start while any demo login exists."""
    with app.app_context():
        try:
            if not inspect(db.engine).has_table(User.__tablename__):
                return
            found = db.session.scalar(
                select(User.email).where(User.email.like(f"%{DEMO_EMAIL_DOMAIN}")).limit(1)
            )
        finally:
            db.session.remove()
    if found:
        raise DemoRefused(
            _(
                "Le compte de démonstration %(email)s existe dans cette base : Raccord refuse de démarrer en "
                "production. Supprimez les comptes @raccord.test.",
                email=found,
            )
        )


# --- The demo of `make run`: one dossier already connected, with rules and invoices to publish ---

#: 'Boulangerie Martin' is connected to its company in 'Compta Démo' at the first start; 'Atelier
#: Dupont & Fils' and 'Cabinet Médical Rousseau' are left for the user to connect.
DEMO_CONNECTED = ("Boulangerie Martin", "cmp-boulangerie-martin")
#: Supplier rules: (supplier, account, tax rate, description).
DEMO_RULES = [
    ("EDF Entreprises", "606100", "tax-TVA20", "Électricité du magasin"),
    ("Moulins Soufflet", "601000", "tax-TVA55", "Farine"),
]
#: Purchase invoices, ready to publish, each with its PDF: (supplier, number, days ago, HT, TVA).
DEMO_INVOICES = [
    ("EDF Entreprises", "EDF-2026-118734", 12, "182.50", "36.50"),
    ("Moulins Soufflet", "MS-26-04127", 8, "640.00", "35.20"),
    ("Moulins Soufflet", "MS-26-04219", 3, "512.00", "28.16"),
]


def connect_demo_dossier(app: Flask) -> bool:
    """At the first start of `make run`: 'Boulangerie Martin' connected to 'Compta Démo' as if its
    bookkeeper had just given the consent. Its lists load in jobs, then one more job adds the demo's
    supplier rules and invoices (jobs.demo.finish_demo). Returns False if there is nothing to do."""
    import time

    from sandbox.models import SandboxCompany
    from sandbox.oauth import DEFAULT_ACCESS_TTL, DEFAULT_REFRESH_TTL
    from webapp.connectors.base import Company, TokenSet
    from webapp.sandbox_host import grant_tokens
    from webapp.services.integrations import create_integration
    from webapp.services.jobs import launch_job
    from webapp.services.lists import start_refresh_all

    name, company_id = DEMO_CONNECTED
    organisation_id = demo_organisation_id()
    dossier = db.session.scalar(
        select(Dossier).where(Dossier.organisation_id == organisation_id, Dossier.name == name)
    )
    member = db.session.scalar(select(User).where(User.email == DEMO_MEMBER[0]))
    if dossier is None or member is None or dossier.integrations:
        return False
    scope = "lists invoices"
    with app.extensions["raccord.sandbox"].app_context():
        company = db.session.get(SandboxCompany, company_id)
        company_name = company.name if company is not None else None
    if company_name is None:
        return False
    access, refresh = grant_tokens(
        app,
        company_id=company_id,
        scope=scope,
        access_ttl=DEFAULT_ACCESS_TTL,
        refresh_ttl=DEFAULT_REFRESH_TTL,
    )
    tokens = TokenSet(
        access_token=access,
        refresh_token=refresh,
        expires_at=time.time() + DEFAULT_ACCESS_TTL,
        scope=scope,
        extra={"lifetime": DEFAULT_ACCESS_TTL},
    )
    integration = create_integration(dossier, "sandbox", Company(company_id, company_name), tokens, member)
    start_refresh_all(integration, member)
    launch_job(
        "jobs.demo.finish_demo",
        integration.id,
        kind="demo",
        description=_("Démonstration : règles et factures de « %(name)s »", name=dossier.name),
        owner=member,
        dossier=dossier,
    )
    return True


def demo_invoice_pdf(
    supplier: str, customer: str, number: str, issued: date, ht: Decimal, tva: Decimal
) -> bytes:
    """A one-page invoice, as a supplier would send it (fpdf2)."""
    from fpdf import FPDF

    from webapp.templating import money_fr

    pdf = FPDF(format="A4")
    pdf.core_fonts_encoding = "windows-1252"  # the euro sign and French letters in the core fonts
    pdf.set_title(f"Facture {number}")
    pdf.set_creator("Raccord (démonstration)")
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(0, 12, supplier, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 11)
    pdf.cell(0, 8, f"Facture n° {number} du {issued.strftime('%d/%m/%Y')}", new_x="LMARGIN", new_y="NEXT")
    pdf.cell(0, 8, f"Client : {customer}", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    for label, value in (("Total HT", ht), ("TVA", tva), ("Total TTC", ht + tva)):
        pdf.cell(60, 8, label)
        amount = money_fr(value, "EUR").replace("\u202f", " ").replace("\xa0", " ")
        pdf.cell(0, 8, amount, align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(8)
    pdf.set_font("Helvetica", "I", 9)
    pdf.multi_cell(0, 5, "Document de démonstration : aucune somme n'est due.")
    return bytes(pdf.output())


def finish_demo(integration_id: int) -> str:
    """The demo's rules and invoices, coded on the lists just loaded (run after their loads)."""
    from datetime import timedelta

    from webapp.models import Direction, Integration, ListItem, ListKind, PartyKind, Rule
    from webapp.models.base import utcnow
    from webapp.services.documents import DocumentInput, create_document
    from webapp.services.jobs import UserFacingJobError
    from webapp.services.rules import RuleInput, save_rule

    integration = db.session.get(Integration, integration_id)
    member = db.session.scalar(select(User).where(User.email == DEMO_MEMBER[0]))
    if integration is None or member is None:
        raise UserFacingJobError(_("L'intégration de démonstration n'existe plus."))
    if db.session.scalar(select(func.count()).select_from(Rule).where(Rule.integration_id == integration_id)):
        return _("La démonstration est déjà prête.")

    def item(kind: ListKind, **where) -> ListItem:
        found = db.session.scalar(
            select(ListItem).filter_by(integration_id=integration_id, kind=kind, **where).limit(1)
        )
        if found is None:
            raise UserFacingJobError(
                _(
                    "Les listes de démonstration ne sont pas chargées : cliquez sur « Actualiser les données "
                    "de l'intégration », puis créez les règles à la main."
                )
            )
        return found

    parties = {}
    for supplier, account, tax, description in DEMO_RULES:
        party = parties[supplier] = item(ListKind.SUPPLIERS, name=supplier)
        save_rule(
            integration,
            PartyKind.SUPPLIER,
            RuleInput(
                party_id=party.id,
                account_id=item(ListKind.ACCOUNTS, code=account).id,
                tax_rate_id=item(ListKind.TAX_RATES, external_id=tax).id,
                due_days=30,
                description=description,
            ),
            member,
        )
    today = utcnow().date()
    customer = integration.company_name
    for supplier, number, days_ago, ht, tva in DEMO_INVOICES:
        issued = today - timedelta(days=days_ago)
        amount_ht, amount_tva = Decimal(ht), Decimal(tva)
        create_document(
            integration,
            Direction.PURCHASE,
            DocumentInput(
                party_id=parties[supplier].id,
                number=number,
                issue_date=issued,
                amount_ht=ht.replace(".", ","),
                amount_tva=tva.replace(".", ","),
                amount_ttc=str(amount_ht + amount_tva).replace(".", ","),
                currency="EUR",
                pdf_name=f"{number}.pdf",
                pdf_data=demo_invoice_pdf(supplier, customer, number, issued, amount_ht, amount_tva),
            ),
            member,
            today=today,
        )
    rules = ngettext("%(num)d règle fournisseur", "%(num)d règles fournisseurs", len(DEMO_RULES))
    invoices = ngettext(
        "%(num)d facture prête à publier", "%(num)d factures prêtes à publier", len(DEMO_INVOICES)
    )
    return _("%(rules)s et %(invoices)s.", rules=rules, invoices=invoices)
