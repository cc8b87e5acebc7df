from django.urls import include, path
from rest_framework import serializers, viewsets
from rest_framework.routers import SimpleRouter

from apps.common.api import OwnedViewSetMixin
from attune.urls import urlpatterns as attune_urlpatterns
from tests.support.testapp.models import Note


class NoteSerializer(serializers.ModelSerializer):
    class Meta:
        model = Note
        fields = ["id", "text"]


class NoteViewSet(OwnedViewSetMixin, viewsets.ModelViewSet):
    queryset = Note.objects.order_by("id")
    serializer_class = NoteSerializer


router = SimpleRouter(trailing_slash=False)
router.register("notes", NoteViewSet, basename="note")
urlpatterns = [*attune_urlpatterns, path("test-api/", include(router.urls))]
