"""Settings for surviving faults and abuse, star-imported by :mod:`attune.settings`: the beat
schedule with its reapers and sweeps, job leases, the LLM backend's degraded mode, fair use
(page sizes, throttles, generation concurrency, login lockout, the shared cache), the
Content-Security-Policy and /healthz.
Read from the environment, like the rest (see ``.env.example``)."""

from __future__ import annotations

import os

from attune.env import env_bool, env_int

# Periodic work, run by Celery beat (./attune run starts it): name -> {"task", "schedule", …}.
CELERY_BEAT_SCHEDULE: dict[str, dict] = {}

# --- Fault tolerance: job reaper, sweeps, queue round trips ---
# Long jobs (fit jobs, CoPL runs) are leases (apps/common/leases.py): a running job renews its
# heartbeat every ATTUNE_JOB_HEARTBEAT_SECONDS; the reaper (beat, every ATTUNE_JOB_REAP_SECONDS)
# re-queues one silent for ATTUNE_JOB_STALE_SECONDS (a new request supersedes it), fails it after
# ATTUNE_JOB_MAX_ATTEMPTS attempts, and re-sends a queued job no worker claimed for
# ATTUNE_JOB_RESEND_SECONDS (its message was lost with a worker).
ATTUNE_JOB_HEARTBEAT_SECONDS = float(os.environ.get("ATTUNE_JOB_HEARTBEAT_SECONDS", "5"))
ATTUNE_JOB_STALE_SECONDS = float(os.environ.get("ATTUNE_JOB_STALE_SECONDS", "60"))
ATTUNE_JOB_MAX_ATTEMPTS = env_int("ATTUNE_JOB_MAX_ATTEMPTS", 3)
ATTUNE_JOB_RESEND_SECONDS = float(os.environ.get("ATTUNE_JOB_RESEND_SECONDS", "600"))
ATTUNE_JOB_REAP_SECONDS = float(os.environ.get("ATTUNE_JOB_REAP_SECONDS", "30"))
for _name, _task in (
    ("reap-fit-jobs", "adapters.reap_jobs"),
    ("reap-copl-runs", "collab.reap_runs"),
):
    CELERY_BEAT_SCHEDULE[_name] = {
        "task": _task,
        "schedule": ATTUNE_JOB_REAP_SECONDS,
        # no backlog of reaper runs; their own queue, never behind feedback work
        "options": {"expires": 2 * ATTUNE_JOB_REAP_SECONDS + 10, "queue": "maintenance"},
    }
# Rows still without an embedding (their task was lost with a worker) are sent again this often.
CELERY_BEAT_SCHEDULE["sweep-embeddings"] = {
    "task": "common.sweep_embeddings",
    "schedule": float(os.environ.get("ATTUNE_EMBEDDING_SWEEP_SECONDS", "120")),
    "options": {"queue": "maintenance"},
}
# CoPL retraining on new feedback: collab.check_training_trigger queues a run once
# ATTUNE_COPL_TRIGGER_PAIRS new pairs arrived since the last one (0, the default, does nothing).
ATTUNE_COPL_TRIGGER_CHECK_SECONDS = float(
    os.environ.get("ATTUNE_COPL_TRIGGER_CHECK_SECONDS", "300")
)
CELERY_BEAT_SCHEDULE["copl-check-training-trigger"] = {
    "task": "collab.check_training_trigger",
    "schedule": ATTUNE_COPL_TRIGGER_CHECK_SECONDS,
    # a check missed while the workers were busy is dropped: the next one sees the same pairs
    "options": {"expires": ATTUNE_COPL_TRIGGER_CHECK_SECONDS, "queue": "maintenance"},
}
# The console's overall edit cost per round (apps.console.selectors): refreshed in the background,
# so /console/plots only reads it (a page asks for a refresh itself when it is 60 s old).
CELERY_BEAT_SCHEDULE["console-cost-per-round"] = {
    "task": "console.refresh_cost_per_round",
    "schedule": 30.0,
    "args": (500,),
    "options": {"expires": 30, "queue": "default"},
}
# A worker whose pool took no task for this long while it had tasks waiting and free pool
# processes has hung (pool processes killed: the new ones block on a semaphore); it exits with
# code 70 so that its supervisor restarts it (platform/attune/watchdog.py). 0 turns it off.
ATTUNE_WORKER_STUCK_SECONDS = float(os.environ.get("ATTUNE_WORKER_STUCK_SECONDS", "10"))
# CIPHER with an unreachable LLM backend (apps.memory): generation waits at most this long for an
# aggregation (per connect and per read), then uses the nearest entry as it is and says so
# (attune.memory_degraded); after any failure the endpoint rests this long (calls fail at once).
ATTUNE_LLM_AGGREGATE_TIMEOUT_SECONDS = float(
    os.environ.get("ATTUNE_LLM_AGGREGATE_TIMEOUT_SECONDS", "3")
)
ATTUNE_LLM_BREAKER_SECONDS = float(os.environ.get("ATTUNE_LLM_BREAKER_SECONDS", "30"))
# Edits not learned yet (memory.PendingInference) are retried by memory.sweep_inference (beat):
# one this long after it was stored (its task had its chance) or after its last failure (doubling
# per failure up to the max), oldest first, at most ATTUNE_INFERENCE_SWEEP_BATCH per run.
ATTUNE_INFERENCE_SWEEP_AFTER_SECONDS = env_int("ATTUNE_INFERENCE_SWEEP_AFTER_SECONDS", 120)
ATTUNE_INFERENCE_SWEEP_MAX_BACKOFF_SECONDS = env_int(
    "ATTUNE_INFERENCE_SWEEP_MAX_BACKOFF_SECONDS", 900
)
ATTUNE_INFERENCE_SWEEP_BATCH = env_int("ATTUNE_INFERENCE_SWEEP_BATCH", 50)
CELERY_BEAT_SCHEDULE["memory-sweep-inference"] = {
    "task": "memory.sweep_inference",
    "schedule": float(env_int("ATTUNE_INFERENCE_SWEEP_EVERY_SECONDS", 60)),
    "options": {"queue": "maintenance"},
}

# --- Fair use: page sizes, throttles, generation concurrency, login lockout ---
# Every list answers at most this many items, whatever ?limit= asks (limit/offset paging).
ATTUNE_MAX_PAGE_SIZE = env_int("ATTUNE_MAX_PAGE_SIZE", 500)

# Throttles (apps.common.throttling), "N/s|min|hour|day"; empty: off. Beyond: 429 + Retry-After.
ATTUNE_THROTTLE_USER = os.environ.get("ATTUNE_THROTTLE_USER", "1200/min")  # per user, all of /api
ATTUNE_THROTTLE_APP = os.environ.get("ATTUNE_THROTTLE_APP", "6000/min")  # per app, all its users
ATTUNE_THROTTLE_ANON = os.environ.get("ATTUNE_THROTTLE_ANON", "300/min")  # per address, no login
ATTUNE_THROTTLE_GENERATION_USER = os.environ.get("ATTUNE_THROTTLE_GENERATION_USER", "120/min")
ATTUNE_THROTTLE_GENERATION_APP = os.environ.get("ATTUNE_THROTTLE_GENERATION_APP", "1200/min")
# Failed bearer keys per address; beyond, a wrong key answers 429 (a valid key still works).
ATTUNE_THROTTLE_AUTH_FAILURES = os.environ.get("ATTUNE_THROTTLE_AUTH_FAILURES", "20/min")

# Generation waits: at most this many generations of one user at once across every web process
# (PostgreSQL advisory locks), and of all users in one web process (keep it below gunicorn's
# --threads, so threads stay free for the rest of the API). Beyond: 429 (rate_limit_exceeded
# for the user's, server_busy for this process's), with Retry-After this many seconds.
ATTUNE_GENERATION_USER_CONCURRENCY = env_int("ATTUNE_GENERATION_USER_CONCURRENCY", 2)
ATTUNE_GENERATION_PROCESS_CONCURRENCY = env_int("ATTUNE_GENERATION_PROCESS_CONCURRENCY", 2)
ATTUNE_GENERATION_RETRY_AFTER = env_int("ATTUNE_GENERATION_RETRY_AFTER", 2)

# The shared cache of throttle counters: one for every web process and machine. Redis when
# ATTUNE_CACHE_URL is set (redis://host:6379/1), else a table in the database (created by
# `migrate`, accounts 0002).
ATTUNE_CACHE_URL = os.environ.get("ATTUNE_CACHE_URL", "")
if ATTUNE_CACHE_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": ATTUNE_CACHE_URL,
            "KEY_PREFIX": "attune",
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.db.DatabaseCache",
            "LOCATION": "attune_cache",
            "OPTIONS": {"MAX_ENTRIES": 100_000},
        }
    }

# Login lockout (django-axes) on /login and /admin/login/: after this many failures the
# username + address pair is locked for the cool-off; `./attune manage axes_reset` lifts every
# lock (axes_reset_username NAME, axes_reset_ip ADDRESS: one). API keys are not affected.
AXES_FAILURE_LIMIT = env_int("ATTUNE_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_int("ATTUNE_LOGIN_COOLOFF_MINUTES", 15) / 60  # hours
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False  # the page says when it ends
AXES_CLIENT_IP_CALLABLE = "apps.common.throttling.client_address"
AXES_LOCKOUT_CALLABLE = "apps.accounts.lockout.lockout_response"
AXES_VERBOSE = False

# /healthz: anyone gets {"status"}; staff sessions and `Authorization: Bearer <token>` get every
# check. A round trip through each queue waits at most PING_TIMEOUT; a queue that answered (or
# finished any task) within ROUND_TRIP_CACHE is not pinged again; an unanswered ping expires
# after PING_EXPIRES; a queue whose ping is late but finished a task within QUEUE_IDLE (or runs
# one that beats) is busy, not stuck.
ATTUNE_HEALTH_TOKEN = os.environ.get("ATTUNE_HEALTH_TOKEN", "")
ATTUNE_HEALTH_PING_TIMEOUT_SECONDS = float(
    os.environ.get("ATTUNE_HEALTH_PING_TIMEOUT_SECONDS", "3")
)
ATTUNE_HEALTH_PING_EXPIRES_SECONDS = env_int("ATTUNE_HEALTH_PING_EXPIRES_SECONDS", 60)
ATTUNE_HEALTH_ROUND_TRIP_CACHE_SECONDS = env_int("ATTUNE_HEALTH_ROUND_TRIP_CACHE_SECONDS", 5)
ATTUNE_HEALTH_QUEUE_IDLE_SECONDS = env_int("ATTUNE_HEALTH_QUEUE_IDLE_SECONDS", 60)

# Content-Security-Policy (django-csp): scripts only from Attune's own static files (no inline
# script or handler anywhere); inline style attributes are allowed (templates and the API docs
# page use them). Report-only instead with ATTUNE_CSP_REPORT_ONLY=1.
_CSP = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'", "'unsafe-inline'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
        **({"upgrade-insecure-requests": True} if env_bool("ATTUNE_PRODUCTION") else {}),
    }
}
if env_bool("ATTUNE_CSP_REPORT_ONLY"):
    CONTENT_SECURITY_POLICY_REPORT_ONLY = _CSP
else:
    CONTENT_SECURITY_POLICY = _CSP
