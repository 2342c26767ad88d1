"""The tables. Import them from here: `from breastapp.orm import Analysis`."""

from breastapp.orm.analyses import (
    FINISHED_STATUSES,
    STATUS_DONE,
    STATUS_FAILED,
    STATUS_QUEUED,
    STATUS_RUNNING,
    STATUSES,
    Analysis,
    Lesion,
)
from breastapp.orm.audit import AuditEvent
from breastapp.orm.studies import Image, Study
from breastapp.orm.users import ROLE_ADMIN, ROLE_RADIOLOGIST, ROLES, User

__all__ = [
    "FINISHED_STATUSES",
    "ROLES",
    "ROLE_ADMIN",
    "ROLE_RADIOLOGIST",
    "STATUSES",
    "STATUS_DONE",
    "STATUS_FAILED",
    "STATUS_QUEUED",
    "STATUS_RUNNING",
    "Analysis",
    "AuditEvent",
    "Image",
    "Lesion",
    "Study",
    "User",
]
