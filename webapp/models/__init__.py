"""The database models, one module per aggregate."""

from webapp.models.coding import Direction
from webapp.models.documents import Document, DocumentStatus
from webapp.models.dossier import Dossier
from webapp.models.events import Event
from webapp.models.integration import Integration, IntegrationStatus, ListKind, PendingConsent
from webapp.models.jobs import JobRun, JobStatus
from webapp.models.lists import ListItem, ListItemStaging, ListSync, SyncStatus
from webapp.models.mail import MailStatus, Notification, OutgoingMail
from webapp.models.people import Invitation, Organisation, Role, User, UserSession, dossier_access
from webapp.models.rules import CodingDefault, ItemChoice, PartyKind, PaymentRule, Rule, RuleTransfer
from webapp.models.summary import DossierSummary
from webapp.models.webhooks import WebhookDelivery

__all__ = [
    "CodingDefault",
    "Direction",
    "Document",
    "DocumentStatus",
    "Dossier",
    "DossierSummary",
    "Event",
    "ListItem",
    "ListItemStaging",
    "ListKind",
    "ListSync",
    "MailStatus",
    "Notification",
    "OutgoingMail",
    "SyncStatus",
    "Integration",
    "ItemChoice",
    "IntegrationStatus",
    "Invitation",
    "JobRun",
    "JobStatus",
    "Organisation",
    "PartyKind",
    "PendingConsent",
    "PaymentRule",
    "Rule",
    "RuleTransfer",
    "Role",
    "User",
    "UserSession",
    "WebhookDelivery",
    "dossier_access",
]
