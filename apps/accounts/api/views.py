"""Account endpoints: who am I, personal tokens and client apps (create, list, revoke)."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, permissions, status, viewsets
from rest_framework.decorators import api_view
from rest_framework.request import Request
from rest_framework.response import Response

from apps.accounts import selectors, services
from apps.accounts.api import examples as ex
from apps.accounts.api import serializers as s
from apps.accounts.authentication import AppCredential
from apps.accounts.models import ClientApp, PersonalToken
from apps.common.api import validated


class PeopleOnly(permissions.BasePermission):
    """Managing keys is for people acting with their own credentials, not for app end users."""

    message = "Keys are managed by people, not by client apps acting for an end user."

    def has_permission(self, request: Request, view: Any) -> bool:
        return not isinstance(request.auth, AppCredential) and not request.user.is_end_user


@extend_schema(responses=s.MeSerializer, tags=["accounts"])
@api_view(["GET"])
def me(request: Request) -> Response:
    """The user the request acts as (for an app key: the named end user)."""
    return Response(s.MeSerializer(request.user).data)


class _KeyViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    """List, create (the key is shown once) and revoke (DELETE keeps the record, marked revoked)."""

    permission_classes = [permissions.IsAuthenticated, PeopleOnly]
    issued_serializer_class: type
    lookup_value_regex = r"\d+"

    def issue(self, name: str) -> services.Issued:
        raise NotImplementedError

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = validated(self.get_serializer_class(), request.data)
        issued = self.issue(serializer.validated_data["name"])
        data = self.issued_serializer_class(issued.record).data | {"key": issued.key}
        return Response(data, status=status.HTTP_201_CREATED)

    def perform_destroy(self, instance: Any) -> None:
        services.revoke(instance)


@extend_schema(tags=["accounts"])
class PersonalTokenViewSet(_KeyViewSet):
    serializer_class = s.PersonalTokenSerializer
    issued_serializer_class = s.IssuedPersonalTokenSerializer
    queryset = PersonalToken.objects.none()  # the model, for the schema (built with no user)

    def get_queryset(self) -> QuerySet:
        return selectors.tokens_of(self.request.user)

    def issue(self, name: str) -> services.Issued:
        return services.issue_personal_token(self.request.user, name)

    @extend_schema(
        responses={201: s.IssuedPersonalTokenSerializer},
        examples=ex.NEW_TOKEN,
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().create(request, *args, **kwargs)


@extend_schema(tags=["accounts"])
class ClientAppViewSet(_KeyViewSet):
    serializer_class = s.ClientAppSerializer
    issued_serializer_class = s.IssuedClientAppSerializer
    queryset = ClientApp.objects.none()  # the model, for the schema (built with no user)

    def get_queryset(self) -> QuerySet:
        return selectors.apps_of(self.request.user)

    def issue(self, name: str) -> services.Issued:
        return services.create_client_app(self.request.user, name)

    @extend_schema(
        responses={201: s.IssuedClientAppSerializer},
        examples=ex.NEW_APP,
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().create(request, *args, **kwargs)
