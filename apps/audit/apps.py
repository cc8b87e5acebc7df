from django.apps import AppConfig


class AuditConfig(AppConfig):
    """Who on the staff changed what of whose data, and when (shown in the console)."""

    name = "apps.audit"
    label = "audit"
    verbose_name = "Audit log"
