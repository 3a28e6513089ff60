"""`flask --app wsgi support …`: the support area on the command line, in French, ready to paste in a
ticket. Who runs a command that looks at a dossier says so with --staff; it goes in the timeline."""

from __future__ import annotations

import click
from flask.cli import AppGroup
from sqlalchemy import select

from webapp.extensions import db
from webapp.models import Dossier, User

support_cli = AppGroup("support", help="Outils du support : trouver, chronologie, reproduire.")

STAFF_OPTION = click.option(
    "--staff", "staff_email", required=True, help="E-mail du membre du support (écrit dans la chronologie)."
)


def _staff(email: str) -> User:
    user = db.session.scalar(select(User).where(User.email == User.normalise_email(email)))
    if user is None or not user.is_staff:
        raise click.ClickException(f"{email} n'est pas un membre du support.")
    return user


def _dossier(reference: str) -> Dossier:
    """A dossier by its number, or by a search that finds exactly one."""
    from webapp.services.support import find_dossiers

    if reference.isdigit():
        dossier = db.session.get(Dossier, int(reference))
        if dossier is None:
            raise click.ClickException(f"Aucun dossier n° {reference}.")
        return dossier
    found = find_dossiers(reference)
    if not found:
        raise click.ClickException(f"Aucun dossier ne correspond à « {reference} ».")
    if len(found) > 1:
        names = "\n".join(f"  n° {f.dossier.id} · {f.dossier.name}" for f in found[:10])
        raise click.ClickException(f"Plusieurs dossiers correspondent à « {reference} » :\n{names}")
    return found[0].dossier


def _integration_line(dossier: Dossier) -> str:
    current = dossier.current_integration
    if current is None:
        return "non connecté"
    return f"{current.software_name} · {current.status.label} (société « {current.company_name} »)"


@support_cli.command("find")
@click.argument("query")
def find_command(query: str) -> None:
    """Trouve les dossiers par nom, SIREN, cabinet ou e-mail d'un utilisateur."""
    from webapp.services.support import find_dossiers

    found = find_dossiers(query)
    if not found:
        click.echo(f"Aucun dossier ne correspond à « {query} ».")
        return
    click.echo(f"{len(found)} dossier(s) pour « {query} » :")
    for item in found:
        siren = f" · SIREN {item.dossier.siren_display}" if item.dossier.siren else ""
        click.echo(
            f"- n° {item.dossier.id} · {item.dossier.name}{siren} · cabinet « {item.organisation.name} » · "
            f"{_integration_line(item.dossier)} · {', '.join(item.emails) or 'aucun utilisateur'}"
        )


@support_cli.command("timeline")
@click.argument("dossier_ref", metavar="DOSSIER")
@STAFF_OPTION
@click.option("--limit", default=30, show_default=True, type=click.IntRange(1, 1000))
@click.option(
    "--type",
    "category",
    type=click.Choice(["connexion", "listes", "regles", "documents", "support"]),
    help="Seulement ce type d'événements.",
)
@click.option("--echecs", is_flag=True, help="Seulement les échecs.")
@click.option("--details", is_flag=True, help="Avec la réponse du logiciel (secrets masqués).")
def timeline_command(
    dossier_ref: str, staff_email: str, limit: int, category: str | None, echecs: bool, details: bool
) -> None:
    """Chronologie d'un dossier (numéro ou recherche), la plus récente en premier."""
    from webapp.models.base import utcnow
    from webapp.services.support import record_access
    from webapp.services.timeline import TimelineFilters, timeline
    from webapp.templating import datetime_fr

    staff = _staff(staff_email)
    dossier = _dossier(dossier_ref)
    filters = TimelineFilters(category=category or "", outcome="failed" if echecs else "")
    entries, more = timeline(dossier.id, filters, limit=limit)
    record_access(staff, dossier, "la chronologie du dossier (ligne de commande)")
    click.echo(f"Chronologie du dossier « {dossier.name} » (n° {dossier.id}), au {datetime_fr(utcnow())}")
    click.echo(f"Intégration : {_integration_line(dossier)}")
    if not entries:
        click.echo("Aucun événement.")
    for entry in entries:
        outcome = " · ÉCHEC" if entry.event.outcome == "failed" else ""
        job = f" · tâche n° {entry.event.job_run_id}" if entry.event.job_run_id else ""
        click.echo(f"- {datetime_fr(entry.event.created_at)} · {entry.who}{outcome}{job}")
        click.echo(f"  {entry.event.message}")
        if details and entry.event.details:
            for line in entry.details_json.splitlines():
                click.echo(f"    {line}")
    if more:
        click.echo(f"(événements plus anciens non affichés : --limit {limit * 2})")


@support_cli.command("reproduce")
@click.argument("dossier_ref", metavar="DOSSIER")
@STAFF_OPTION
def reproduce_command(dossier_ref: str, staff_email: str) -> None:
    """Reproduit un dossier dans le bac à sable (configuration, listes, règles, documents, état)."""
    from webapp.services.jobs import UserFacingJobError
    from webapp.services.reproduce import reproduce

    staff = _staff(staff_email)
    dossier = _dossier(dossier_ref)
    try:
        done = reproduce(dossier.id, staff.id)
    except UserFacingJobError as exc:
        db.session.rollback()
        raise click.ClickException(str(exc)) from None
    click.echo(f"Reproduction du dossier « {dossier.name} » (n° {dossier.id}) :")
    click.echo(f"- copie : « {done.copy.name} » (dossier n° {done.copy.id}, cabinet du support)")
    click.echo(f"- {done.items} élément(s) de listes, {done.rules} règle(s), {done.documents} document(s)")
    click.echo(f"- intégration : {done.state}")
    if done.sandbox_company_id:
        click.echo(f"- société du logiciel de démonstration : {done.sandbox_company_id}")
    click.echo(f"- écrans : /dossiers/{done.copy.id} · support : /support/dossiers/{done.copy.id}")
