"""The live platform for the simulator's tests: the generation tests' real serving process (a
tiny style model) behind the test server."""

from tests.apps.generation.conftest import generation, serving, style_var  # noqa: F401
