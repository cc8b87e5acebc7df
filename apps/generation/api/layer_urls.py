"""``/api/layers`` (mounted under ``api/``; the OpenAI-compatible endpoints are under ``v1/``)."""

from django.urls import path

from apps.generation.api.layers import LayersView

urlpatterns = [path("layers", LayersView.as_view(), name="my-layers")]
