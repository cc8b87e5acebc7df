from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.collab.api import views

router = SimpleRouter(trailing_slash=False)
router.register("collab/versions", views.VersionViewSet, basename="collab-version")
router.register("collab/embeddings", views.UserEmbeddingViewSet, basename="collab-embedding")

urlpatterns = [
    path("collab/me", views.MyCollabView.as_view(), name="collab-me"),
    path("collab/users/<int:user_id>", views.UserInsightView.as_view(), name="collab-user"),
    *router.urls,
]
