from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.personas.api import views

router = SimpleRouter(trailing_slash=False)
router.register("personas", views.PersonaViewSet, basename="persona")

urlpatterns = [path("persona", views.MyPersonaView.as_view(), name="my-persona"), *router.urls]
