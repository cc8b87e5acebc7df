"""Test settings: Attune's own, plus a small app that exercises the shared patterns."""

from attune.settings import *  # noqa: F403
from attune.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.support.testapp"]
ROOT_URLCONF = "tests.support.testapp.urls"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast in tests only
