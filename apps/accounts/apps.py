from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Users, personal API tokens and client apps (app keys acting for their own end users)."""

    name = "apps.accounts"
    label = "accounts"
