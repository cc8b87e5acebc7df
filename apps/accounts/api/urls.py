from django.urls import path
from rest_framework.routers import SimpleRouter

from apps.accounts.api import views

router = SimpleRouter(trailing_slash=False)
router.register("tokens", views.PersonalTokenViewSet, basename="token")
router.register("apps", views.ClientAppViewSet, basename="client-app")

urlpatterns = [path("me", views.me, name="me"), *router.urls]
