"""The database models, one module per aggregate."""

from webapp.models.dossier import Dossier
from webapp.models.integration import Integration, IntegrationStatus
from webapp.models.jobs import JobRun, JobStatus
from webapp.models.people import Organisation, Role, User

__all__ = [
    "Dossier",
    "Integration",
    "IntegrationStatus",
    "JobRun",
    "JobStatus",
    "Organisation",
    "Role",
    "User",
]
