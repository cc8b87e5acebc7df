"""Test settings: Attune's own, plus a small app that exercises the shared patterns."""

from attune.settings import *  # noqa: F403
from attune.settings import INSTALLED_APPS

INSTALLED_APPS = [*INSTALLED_APPS, "tests.support.testapp"]
ROOT_URLCONF = "tests.support.testapp.urls"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast in tests only

# Fair use: the suite's own traffic never meets a throttle or a concurrency limit; the tests of
# them (tests/apps/common/test_fair_use.py) lower these with override_settings.
ATTUNE_THROTTLE_USER = ATTUNE_THROTTLE_APP = ATTUNE_THROTTLE_ANON = "1000000/min"
ATTUNE_THROTTLE_GENERATION_USER = ATTUNE_THROTTLE_GENERATION_APP = "1000000/min"
ATTUNE_THROTTLE_AUTH_FAILURES = "1000000/min"
ATTUNE_GENERATION_USER_CONCURRENCY = ATTUNE_GENERATION_PROCESS_CONCURRENCY = 64

# Tests of serving failures want the 503 at once; the wait for a restarting replica has its own
# test (tests/apps/generation/test_replicas.py).
ATTUNE_SERVING_WAIT_SECONDS = 0

# Layer arbitration's coins would make the layers of a test's answer random; its own tests
# (tests/apps/generation/test_arbitration.py) turn it on.
ATTUNE_ARBITRATION = False
