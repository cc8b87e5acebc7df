"""The serving process: the base model loaded once, per-user weights, batched generation.

Run as ``python -m workers.serving`` (``./attune run`` starts it beside the web server and the
worker). Torch is imported by its modules, never by the web process: the web side talks to it
over HTTP (``apps.generation.client``).
"""
