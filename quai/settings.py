"""Quai settings. The environment is read here and nowhere else; production differs from the demo by environment only.

| variable        | default                                   |
| --------------- | ----------------------------------------- |
| DATABASE_URL    | sqlite:///var/quai.sqlite3 (WAL, IMMEDIATE) |
| REDIS_URL       | unset: embedded mode, a worker and beat on files (manage.py serve) |
| SECRET_KEY      | a development key (refused when DEBUG is off) |
| DEBUG           | true                                      |
| ALLOWED_HOSTS   | localhost,127.0.0.1                       |
| QUAI_TIME_ZONE  | Europe/Paris                              |
"""

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


DEBUG = _env_bool("DEBUG", True)
_DEV_SECRET = "quai-development-only-secret-key-change-me-in-production-0123456789"
SECRET_KEY = os.environ.get("SECRET_KEY") or _DEV_SECRET
if not DEBUG and SECRET_KEY == _DEV_SECRET:
    raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
ALLOWED_HOSTS = [h.strip() for h in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h]
CSRF_TRUSTED_ORIGINS = [f"http://{h}:8000" for h in ALLOWED_HOSTS if not h.startswith("[")]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "ninja",
    "quai.core",
    "quai.tenants",
    "quai.catalog",
    "quai.warehouse",
    "quai.inventory",
    "quai.inbound",
    "quai.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "quai.urls"
WSGI_APPLICATION = "quai.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "quai" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------------------------
DATABASE_URL = os.environ.get("DATABASE_URL") or f"sqlite:///{BASE_DIR / 'var' / 'quai.sqlite3'}"
# Seconds a web process keeps its database connection between requests (0: a new one per request).
DB_CONN_MAX_AGE = int(os.environ.get("DB_CONN_MAX_AGE", "0"))
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=DB_CONN_MAX_AGE, conn_health_checks=True)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside the writer; IMMEDIATE makes writers queue at BEGIN instead of failing
    # with "database is locked" halfway through a transaction (SQLite ignores SELECT ... FOR UPDATE).
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON;",
    }
    Path(BASE_DIR / "var").mkdir(exist_ok=True)
else:
    # One test database per test process, so several test runs on one server never drop each other's database.
    DATABASES["default"]["TEST"] = {"NAME": f"test_quai_{os.getpid()}"}
    # Bind parameters on the server; psycopg prepares a statement after its 5th run on a connection, so the hot
    # reservation statement is parsed and planned once per connection instead of on every call (about a third
    # less CPU per reservation). Behind PgBouncer in transaction mode this needs PgBouncer >= 1.21 with
    # max_prepared_statements set.
    DATABASES["default"]["OPTIONS"] = {"server_side_binding": True, "prepare_threshold": 5}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Async work -----------------------------------------------------------------------------------------------
# One task system, Celery, in both modes (the why is in quai/celery.py's docstring):
# - production (REDIS_URL set): Redis is the broker; run `celery -A quai worker` and one `celery -A quai beat`;
# - embedded default (REDIS_URL unset): kombu's filesystem transport, messages are files under QUAI_EMBEDDED_DIR,
#   so `manage.py serve` (what `make run` starts) runs a worker and beat beside the web server with no server to
#   install. Either way the outbox in the database is the truth: a lost message only delays work until the sweep.
REDIS_URL = os.environ.get("REDIS_URL", "")
EMBEDDED = not REDIS_URL
QUAI_EMBEDDED_DIR = Path(os.environ.get("QUAI_EMBEDDED_DIR") or BASE_DIR / "var" / "embedded")
CELERY_TIMEZONE = "UTC"
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
if EMBEDDED:
    _queue_dir = QUAI_EMBEDDED_DIR / "queue"
    _control_dir = QUAI_EMBEDDED_DIR / "control"
    for _folder in (_queue_dir, _control_dir):
        _folder.mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    # The same folder in and out: producers (web, beat) and the worker share one queue.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "control_folder": str(_control_dir),
        # The worker looks for new message files this often: a nudge is relayed within half a second.
        "polling_interval": 0.5,
    }
    CELERY_BEAT_SCHEDULE_FILENAME = str(QUAI_EMBEDDED_DIR / "beat-schedule")
else:
    CELERY_BROKER_URL = REDIS_URL
# Tasks run in a worker, never in the web request that asked for them (the test suite alone runs them eagerly,
# see conftest.py, to stay fast and deterministic).
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_EAGER_PROPAGATES = True
# Modules the worker imports at start-up besides the apps' tasks (comma-separated in QUAI_WORKER_IMPORTS), e.g.
# a module that registers extra outbox handlers; the embedded-worker test names its test-only handler this way.
CELERY_IMPORTS = tuple(name.strip() for name in os.environ.get("QUAI_WORKER_IMPORTS", "").split(",") if name.strip())
# How often beat sweeps the outbox (retries of failed handlers are due after their backoff, see below).
QUAI_OUTBOX_SWEEP_SECONDS = float(os.environ.get("QUAI_OUTBOX_SWEEP_SECONDS", "10"))
# First retry delay of a failed outbox handler; each further failure doubles it (capped at one hour).
QUAI_OUTBOX_BACKOFF_SECONDS = float(os.environ.get("QUAI_OUTBOX_BACKOFF_SECONDS", "5"))
CELERY_BEAT_SCHEDULE = {
    "outbox-sweep": {"task": "quai.core.tasks.outbox_sweep", "schedule": QUAI_OUTBOX_SWEEP_SECONDS},
    # Temporary zones open and close with the clock: this puts their stock in or out of availability.
    "stock-counting-sweep": {"task": "quai.inventory.tasks.stock_counting_sweep", "schedule": 60.0},
}
# After each commit that recorded events, nudge the relay at once (the periodic sweep catches anything missed).
QUAI_OUTBOX_NUDGE = _env_bool("QUAI_OUTBOX_NUDGE", True)

# --- Auth -----------------------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/ops/login/"

# --- I18n and time --------------------------------------------------------------------------------------------
LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", _("French")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "quai" / "locale"]
TIME_ZONE = os.environ.get("QUAI_TIME_ZONE", "Europe/Paris")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# Assets shared by every operator screen (htmx, the scan-and-beep script, the handheld stylesheet).
STATICFILES_DIRS = [BASE_DIR / "quai" / "static"]
STATIC_ROOT = BASE_DIR / "var" / "static"

NINJA_PAGINATION_CLASS = "quai.core.pagination.Pagination"
NINJA_PAGINATION_PER_PAGE = 50
NINJA_PAGINATION_MAX_LIMIT = 500

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("QUAI_LOG_LEVEL", "WARNING")},
}
