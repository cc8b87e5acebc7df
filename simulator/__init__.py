"""Simulated people who use a running Attune the way a client app's end users do.

Client side only: the offline world (``core.world``) judges the answers, the official ``openai``
client asks ``/v1``, ``requests`` posts the feedback. Nothing here imports Django, the apps or
torch, so it drives any Attune it can reach, local or remote. ``./attune simulate`` runs it.
"""
