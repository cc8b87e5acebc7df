from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.feedback.api import export, views

router = SimpleRouter(trailing_slash=False)
router.register("interactions", views.InteractionViewSet, basename="interaction")
router.register("ratings", views.RatingViewSet, basename="rating")
router.register("edits", views.EditViewSet, basename="edit")
router.register("comparisons", views.ComparisonViewSet, basename="comparison")

urlpatterns = [
    path("export/dpo", export.DPOExportView.as_view(), name="export-dpo"),
    path("export/kto", export.KTOExportView.as_view(), name="export-kto"),
    *router.urls,
]
