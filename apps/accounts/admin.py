from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin
from django.http import HttpRequest

from apps.accounts import services
from apps.accounts.lockout import AdminLoginForm
from apps.accounts.models import ClientApp, PersonalToken, User

admin.site.login_form = AdminLoginForm  # says so when too many failures locked the login


@admin.register(User)
class AttuneUserAdmin(UserAdmin):
    list_display = ("username", "email", "is_staff", "client_app", "external_id", "date_joined")
    list_filter = ("is_staff", "is_active", "client_app")
    fieldsets = (*UserAdmin.fieldsets, ("Client app", {"fields": ("client_app", "external_id")}))


@admin.action(description="Revoke selected keys")
def revoke_keys(modeladmin: admin.ModelAdmin, request: HttpRequest, queryset) -> None:  # noqa: ANN001
    for record in queryset:
        services.revoke(record)
    messages.success(request, f"Revoked {queryset.count()} key(s).")


class ApiKeyAdmin(admin.ModelAdmin):
    readonly_fields = ("key_prefix", "created_at", "last_used_at", "revoked_at")
    actions = [revoke_keys]

    def save_model(self, request: HttpRequest, obj, form, change: bool) -> None:  # noqa: ANN001
        if change:
            super().save_model(request, obj, form, change)
            return
        issue = services.issue_personal_token if isinstance(obj, PersonalToken) else None
        if issue is not None:
            issued = issue(obj.user, obj.name)
        else:
            issued = services.create_client_app(obj.owner, obj.name)
        obj.pk = issued.record.pk
        messages.warning(request, f"New key (shown once, copy it now): {issued.key}")


@admin.register(PersonalToken)
class PersonalTokenAdmin(ApiKeyAdmin):
    list_display = ("name", "user", "key_prefix", "created_at", "last_used_at", "revoked_at")
    fields = ("user", "name", *ApiKeyAdmin.readonly_fields)


@admin.register(ClientApp)
class ClientAppAdmin(ApiKeyAdmin):
    list_display = ("name", "owner", "key_prefix", "created_at", "last_used_at", "revoked_at")
    fields = ("owner", "name", *ApiKeyAdmin.readonly_fields)
