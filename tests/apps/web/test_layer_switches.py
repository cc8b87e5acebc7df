""" "What Attune learned": the layer switches form; the console shows them read-only."""

from __future__ import annotations

import pytest
from django.test import Client

from apps.generation import services
from apps.generation.models import LayerSettings
from tests.support.factories import UserFactory

pytestmark = pytest.mark.django_db
ALL_ON = {f"layer-{name}": "on" for name in ("memory", "persona", "adapter", "vectors")}


def test_the_page_shows_every_switch_on_with_what_it_does(logged_in):
    html = logged_in.get("/me").content.decode()
    assert 'id="layers-form"' in html
    for layer in ("memory", "persona", "adapter", "vectors"):
        assert f'name="layer-{layer}"' in html and f'id="id_layer-{layer}" checked' in html
        assert LayerSettings.description(layer) in html
    assert "<script>" not in html.split('id="layers"')[1]  # no inline script (CSP)


def test_unticking_a_switch_saves_it_with_a_message(logged_in, user):
    saved = logged_in.post("/me/layers", {k: v for k, v in ALL_ON.items() if k != "layer-memory"})
    assert saved.status_code == 302 and saved["Location"].endswith("/me#layers")
    assert LayerSettings.objects.get(user=user).switches() == {
        "memory": False, "persona": True, "adapter": True, "vectors": True
    }  # fmt: skip
    page = logged_in.get("/me").content.decode()
    assert "Layer switches saved" in page and "Off: memory." in page
    assert 'id="id_layer-memory" checked' not in page and 'id="id_layer-persona" checked' in page
    logged_in.post("/me/layers", ALL_ON)  # ticked again: back on
    assert all(LayerSettings.objects.get(user=user).switches().values())


def test_the_form_needs_a_login_and_a_post(client, logged_in):
    assert logged_in.get("/me/layers").status_code == 405
    anonymous = Client().post("/me/layers", ALL_ON)
    assert anonymous.status_code == 302 and "/login" in anonymous["Location"]


def test_the_console_shows_a_users_switches_read_only(client, user):
    services.set_layers(user, adapter=False)
    operator = UserFactory(is_staff=True)
    operator.save()
    client.force_login(operator)
    html = client.get(f"/console/users/{user.pk}").content.decode()
    block = html.split('id="layer-switches"')[1].split("</div>")[0]
    assert "<form" not in block
    assert '<strong>adapter</strong> <span class="badge warn">off</span>' in block
    assert '<strong>memory</strong> <span class="badge ok">on</span>' in block
