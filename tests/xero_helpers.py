"""Facts about the sandbox's Xero dialect that several tests compare with."""

from sandbox.dialects import tenant_guid
from tests.http_user import COMPANY

XERO_TENANT = tenant_guid(COMPANY)  # the demo company's organisation id, as Xero shows it
