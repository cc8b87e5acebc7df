from django.urls import path

from apps.generation.api.views import ChatCompletionsView, ModelsView, ModelView

urlpatterns = [
    path("chat/completions", ChatCompletionsView.as_view(), name="chat-completions"),
    path("models", ModelsView.as_view(), name="models"),
    path("models/<path:model>", ModelView.as_view(), name="model"),
]
