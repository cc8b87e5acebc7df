from django.urls import path

from apps.privacy.api import views

urlpatterns = [path("my-data", views.MyDataView.as_view(), name="my-data")]
