"""Attune's vocabulary and contracts: imports neither Django nor torch (a test enforces it).

Both sides import it: the web side (``apps/``, ``platform/``) and the torch side (``workers/``).

- ``core.world``: the offline style world (sources, styles, phrases, detectors, renderer,
  simulated users).
- ``core.dimensions``: the preference-vector dimensions (one style attribute, two poles each).
- ``core.prompting``: the one prompt format of the built-in style model and of instruct models.
- ``core.text``: word-level edit distance and diff.
- ``core.errors``: every error a service raises, mapped to HTTP once (``apps.common.api``).
- ``core.serving``: the web ↔ serving-process contract (request, plan, weights references).
- ``core.coldstart``: CoPL's optimization-free adaptation of a new user (NumPy).
- ``core.config``: process-wide settings read from the environment (var dir, base model).
"""
