"""A bare DRF create endpoint for ratings, beside Attune's own, for the scale benchmark.

``POST /bench/ratings`` is a plain ``CreateAPIView`` with a ``ModelSerializer``: no service, no
ownership check of the interaction, no replacement of an earlier rating; the floor a DRF create
costs on the same database, server and settings (authentication and throttles included). It is
mounted by this module's URLconf (Attune's URLs plus that one path), which the benchmark's
settings (:mod:`bench._scale_settings`) name; left out of the OpenAPI schema.
"""

from __future__ import annotations

from django.urls import include, path
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers

from apps.feedback.models import Rating


class BareRatingSerializer(serializers.ModelSerializer):
    class Meta:
        model = Rating
        fields = ["id", "interaction", "thumbs_up", "stars", "comment", "created_at"]


@extend_schema(exclude=True)
class BareRatingCreate(generics.CreateAPIView):
    serializer_class = BareRatingSerializer
    queryset = Rating.objects.all()

    def perform_create(self, serializer: BareRatingSerializer) -> None:
        serializer.save(user=self.request.user)


urlpatterns = [
    path("bench/ratings", BareRatingCreate.as_view(), name="bench-bare-ratings"),
    path("", include("attune.urls")),
]
