from rest_framework.routers import SimpleRouter

from apps.memory.api import views

router = SimpleRouter(trailing_slash=False)
router.register("memory", views.MemoryEntryViewSet, basename="memory-entry")

urlpatterns = router.urls
