"""Attune's settings with the scale benchmark's URLconf (Attune's URLs + a bare DRF create)."""

from attune.settings import *  # noqa: F403

ROOT_URLCONF = "bench._scale_bare"
