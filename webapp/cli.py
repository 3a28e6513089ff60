"""`flask --app wsgi …` commands: seed-demo, serve-local, worker, purge-jobs, create-user, support …"""

from __future__ import annotations

import os
import signal

import click
from flask import Flask, current_app
from flask.cli import with_appcontext


def init_app(app: Flask) -> None:
    app.cli.add_command(seed_demo_command)
    app.cli.add_command(serve_local_command)
    app.cli.add_command(worker_command)
    app.cli.add_command(purge_jobs_command)
    app.cli.add_command(scheduler_command)
    app.cli.add_command(create_user_command)
    app.cli.add_command(deactivate_user_command)
    app.cli.add_command(sandbox_seed_command)

    from webapp.support.cli import support_cli

    app.cli.add_command(support_cli)


def _refuse_in_production(what: str) -> None:
    if current_app.config["RACCORD_ENV"] == "production":
        raise click.ClickException(f"{what} est réservé au poste local, pas à la production.")


@click.command("seed-demo")
@with_appcontext
def seed_demo_command() -> None:
    """Crée les données de démonstration (cabinet, identifiants, dossiers)."""
    from webapp.services.demo import seed_demo

    _refuse_in_production("seed-demo")
    if seed_demo():
        click.echo("Données de démonstration créées.")
    else:
        click.echo("Les données de démonstration existent déjà ; rien n'a été modifié.")


def _stop_on_sigterm(_signum, _frame) -> None:
    raise KeyboardInterrupt


@click.command("serve-local")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=lambda: int(os.environ.get("PORT", "5000")), type=int)
@with_appcontext
def serve_local_command(host: str, port: int) -> None:
    """Met la base à jour, crée la démo au premier lancement, démarre le worker et sert l'application."""
    from flask_migrate import upgrade
    from werkzeug.serving import run_simple

    from webapp.extensions import db
    from webapp.services.demo import DEMO_MEMBER, DEMO_RESTRICTED, DEMO_STAFF, database_is_empty, seed_demo
    from webapp.worker import start_embedded_worker

    _refuse_in_production("serve-local")
    # Ctrl-C stops it whoever started it: a shell's background job or a script inherits SIGINT
    # ignored, and the server then never stopped. SIGTERM (kill, docker stop) stops it the same way.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    upgrade(revision="heads")
    first_start = database_is_empty()
    if first_start:
        seed_demo()
        click.echo("Données de démonstration créées.")
    if app.config["SANDBOX_ENABLED"]:
        from webapp.sandbox_host import seed_sandbox_for
        from webapp.services.demo import DEMO_CONNECTED, connect_demo_dossier, demo_organisation_id

        app.config["SANDBOX_BASE_URL"] = app.config["SANDBOX_BASE_URL"] or f"http://{host}:{port}/sandbox"
        seed_sandbox_for(demo_organisation_id())  # the demo companies belong to the demo cabinet
        if first_start and connect_demo_dossier(app):
            click.echo(
                f"« {DEMO_CONNECTED[0]} » est relié à « Compta Démo » : ses listes se chargent, "
                "puis deux règles et trois factures à publier s'ajoutent."
            )
    db.session.remove()
    if not (os.environ.get("PUBLIC_BASE_URL") or "").strip():
        app.config["PUBLIC_BASE_URL"] = f"http://{host}:{port}"  # the links of the e-mails

    worker, _thread = start_embedded_worker(app)
    from webapp.scheduler import start_embedded_scheduler

    start_embedded_scheduler(app)
    backend = app.config["REDIS_URL"] or "Redis embarqué (en mémoire, dans ce processus)"
    click.echo("")
    click.echo(f"  Raccord est prêt : http://{host}:{port}/")
    click.echo(f"  Tâches : worker RQ démarré sur {backend}")
    click.echo(f"  E-mails : {_mail_destination(app)}")
    click.echo(f"  Identifiants de démonstration : {DEMO_MEMBER[0]} / {DEMO_MEMBER[1]} (administrateur)")
    click.echo(
        f"                                  {DEMO_RESTRICTED[0]} / {DEMO_RESTRICTED[1]} (un seul dossier)"
    )
    click.echo(f"                                  {DEMO_STAFF[0]} / {DEMO_STAFF[1]} (support)")
    if app.config["SANDBOX_ENABLED"]:
        click.echo(f"  Logiciel de démonstration « Compta Démo » : {app.config['SANDBOX_BASE_URL']}/controls")
    click.echo("  Ctrl-C pour tout arrêter.")
    click.echo("")
    try:
        run_simple(host, port, app, threaded=True, use_reloader=False, use_debugger=False)
    except KeyboardInterrupt:
        pass
    finally:
        worker.stop()
        click.echo("Raccord arrêté.")


def _mail_destination(app: Flask) -> str:
    config = app.config
    backend = config["MAIL_BACKEND"]
    if backend == "smtp":
        return f"envoyés par le serveur SMTP {config['MAIL_SERVER']}:{config['MAIL_PORT']}"
    if backend == "console":
        return "affichés dans cette console, rien n'est envoyé"
    if backend == "locmem":
        return "gardés en mémoire, rien n'est envoyé"
    return (
        f"écrits en fichiers .eml dans {config['MAIL_FILE_PATH']}/, rien n'est envoyé "
        "(MAIL_SERVER pour les envoyer)"
    )


@click.command("worker")
@click.option("--burst", is_flag=True, help="S'arrête quand la file est vide.")
@with_appcontext
def worker_command(burst: bool) -> None:
    """Lance un worker RQ sur REDIS_URL (autant de processus et de machines que voulu)."""
    import redis

    from webapp.worker import AppWorker

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    url = app.config["REDIS_URL"]
    if not url:
        raise click.ClickException(
            "REDIS_URL n'est pas défini : sans Redis, `make run` exécute les tâches dans son propre worker."
        )
    connection = redis.Redis.from_url(url)
    worker = AppWorker([app.config["JOB_QUEUE"]], connection=connection, app=app)
    worker.work(burst=burst, with_scheduler=not burst)


@click.command("scheduler")
@with_appcontext
def scheduler_command() -> None:
    """Lance le planificateur RQ : actualisation des listes la nuit, jetons entretenus, fins d'accès
    annoncées, anciennes tâches effacées (il met les tâches en file ; les workers les exécutent)."""
    from webapp.scheduler import build_scheduler

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    if not app.config["REDIS_URL"]:
        raise click.ClickException(
            "REDIS_URL n'est pas défini : sans Redis, `make run` fait tourner le planificateur lui-même."
        )
    build_scheduler(app).start()


@click.command("purge-jobs")
@click.option("--days", default=30, show_default=True, type=click.IntRange(min=1))
@with_appcontext
def purge_jobs_command(days: int) -> None:
    """Supprime les traces de tâches terminées plus anciennes que --days jours."""
    from webapp.services.jobs import purge_job_runs

    count = purge_job_runs(days)
    click.echo(f"{count} trace(s) de tâches supprimée(s).")


@click.command("create-user")
@click.argument("email")
@click.option("--organisation", required=True, help="Nom du cabinet (créé s'il n'existe pas).")
@click.option(
    "--staff", is_flag=True, help="Rôle support (espace Support : trouve, lit, reproduit les dossiers)."
)
@click.option(
    "--role",
    type=click.Choice(["admin", "member"]),
    default=None,
    help="Rôle dans le cabinet : admin (gère l'équipe) ou member. Défaut : admin pour le premier "
    "utilisateur d'un cabinet, member ensuite.",
)
@click.password_option(prompt="Mot de passe")
@with_appcontext
def create_user_command(email: str, organisation: str, staff: bool, role: str | None, password: str) -> None:
    """Crée un utilisateur (production comprise)."""
    from sqlalchemy import select

    from webapp.extensions import db
    from webapp.models import Organisation, Role, User

    email = User.normalise_email(email)
    if "@" not in email:
        raise click.ClickException("Adresse e-mail invalide.")
    if len(password) < 12:
        raise click.ClickException("Le mot de passe doit faire au moins 12 caractères.")
    if db.session.scalar(select(User).where(User.email == email)):
        raise click.ClickException(f"Un utilisateur {email} existe déjà.")
    if staff and role:
        raise click.ClickException(
            "--staff et --role s'excluent : le support n'a pas de rôle dans un cabinet."
        )
    org = db.session.scalar(select(Organisation).where(Organisation.name == organisation))
    if org is None:
        org = Organisation(name=organisation)
        db.session.add(org)
        first = True
    else:
        first = not db.session.scalar(
            select(User.id).where(User.organisation_id == org.id, User.role != Role.STAFF).limit(1)
        )
    if staff:
        chosen = Role.STAFF
    elif role:
        chosen = Role(role)
    else:
        chosen = Role.ADMIN if first else Role.MEMBER
    user = User(organisation=org, email=email, role=chosen)
    user.set_password(password)
    db.session.add(user)
    db.session.commit()
    label = {Role.ADMIN: "administrateur", Role.MEMBER: "membre", Role.STAFF: "support"}[chosen]
    click.echo(f"Utilisateur {email} créé dans « {org.name} ».")
    click.echo(f"Rôle : {label}.")


@click.command("deactivate-user")
@click.argument("email")
@click.option("--reactivate", is_flag=True, help="Rend l'accès à un compte désactivé.")
@with_appcontext
def deactivate_user_command(email: str, reactivate: bool) -> None:
    """Désactive un compte : il ne peut plus se connecter et toutes ses sessions sont fermées."""
    from sqlalchemy import select

    from webapp.extensions import db
    from webapp.models import User
    from webapp.services.sessions import EndReason, end_user_sessions

    user = db.session.scalar(select(User).where(User.email == User.normalise_email(email)))
    if user is None:
        raise click.ClickException(f"Aucun utilisateur {User.normalise_email(email)}.")
    if reactivate:
        user.is_active_account = True
        db.session.commit()
        click.echo(f"Le compte {user.email} est de nouveau actif.")
        return
    user.is_active_account = False
    ended = end_user_sessions(user.id, EndReason.DEACTIVATED)
    db.session.commit()
    click.echo(f"Le compte {user.email} est désactivé ; sessions fermées : {ended}.")


@click.command("sandbox-seed")
@click.option(
    "--organisation",
    default=None,
    help="Cabinet à qui donner les sociétés qui ne sont encore à personne (défaut : le cabinet de démo).",
)
@with_appcontext
def sandbox_seed_command(organisation: str | None) -> None:
    """Crée les sociétés et les listes du logiciel de démonstration « Compta Démo »."""
    from sqlalchemy import select

    from webapp.extensions import db
    from webapp.models import Organisation
    from webapp.sandbox_host import seed_sandbox_for
    from webapp.services.demo import demo_organisation_id

    if not current_app.config["SANDBOX_ENABLED"]:
        raise click.ClickException("Le logiciel de démonstration est désactivé (SANDBOX_ENABLED=false).")
    if organisation is None:
        owner = demo_organisation_id()
    else:
        owner = db.session.scalar(select(Organisation.id).where(Organisation.name == organisation))
        if owner is None:
            raise click.ClickException(f"Aucun cabinet « {organisation} ».")
    created = seed_sandbox_for(owner)
    click.echo(
        "Sociétés de démonstration créées." if created else "Les sociétés de démonstration existent déjà."
    )
