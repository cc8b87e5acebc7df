from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.adapters.api import views

router = SimpleRouter(trailing_slash=False)
router.register("fit-jobs", views.FitJobViewSet, basename="fit-job")
router.register("adapters", views.AdapterVersionViewSet, basename="adapter-version")
router.register("preference-vectors", views.PreferenceVectorViewSet, basename="preference-vector")

urlpatterns = [
    path("preference-coefficients", views.EtasView.as_view(), name="coefficients"),
    path(
        "preference-coefficients/fit",
        views.EtasFitView.as_view(),
        name="coefficients-fit",
    ),
    *router.urls,
]
