"""The web UI's URLs (namespace ``web``)."""

from django.urls import path

from apps.web import converters  # noqa: F401  (registers the "id" converter)
from apps.web.views import ask, auth, data, interactions, learned

app_name = "web"

urlpatterns = [
    path("", auth.home, name="home"),
    path("login", auth.LoginView.as_view(), name="login"),
    path("logout", auth.LogoutView.as_view(), name="logout"),
    path("ask", ask.ask, name="ask"),
    path("compare", ask.compare, name="compare"),
    path("compare/<id:a>/<id:b>", ask.compare_pair, name="compare-pair"),
    path("compare/<id:a>/<id:b>/choose", ask.choose, name="choose"),
    path("history", interactions.history, name="history"),
    path("next", interactions.next_interaction, name="next"),
    path("i/<id:pk>", interactions.detail, name="interaction"),
    path("i/<id:pk>/rate", interactions.rate, name="rate"),
    path("i/<id:pk>/edit", interactions.edit, name="edit"),
    path("i/<id:pk>/diff", interactions.diff_preview, name="diff"),
    path("i/<id:pk>/learned", interactions.learned, name="learned-from"),
    path("me", learned.learned, name="learned"),
    path("me/preferences", learned.add_preference, name="preference-add"),
    path("me/preferences/<id:pk>", learned.edit_preference, name="preference-edit"),
    path("me/preferences/<id:pk>/delete", learned.delete_preference, name="preference-delete"),
    path("me/preferences/<id:pk>/restore", learned.restore_preference, name="preference-restore"),
    path("me/persona", learned.persona, name="persona"),
    path("me/sliders", learned.sliders, name="sliders"),
    path("me/layers", learned.layers, name="layers"),
    path("my-data", data.my_data, name="my-data"),
    path("my-data/export", data.export, name="my-data-export"),
    path("my-data/delete", data.delete_everything, name="my-data-delete"),
]
