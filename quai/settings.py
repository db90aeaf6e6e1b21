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
from celery.schedules import crontab
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
# Same-origin requests pass Django's CSRF origin check on their own (behind a TLS proxy too, once
# QUAI_TRUST_X_FORWARDED_PROTO is set); list here only other origins that post forms, e.g. https://admin.example.
_trusted_origins = os.environ.get("CSRF_TRUSTED_ORIGINS", "")
CSRF_TRUSTED_ORIGINS = [o.strip() for o in _trusted_origins.split(",") if o.strip()] or [
    f"http://{h}:8000" for h in ALLOWED_HOSTS if not h.startswith("[")
]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    # WhiteNoise serves static files in development too (before staticfiles, so runserver leaves them to it).
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "ninja",
    "quai.core",
    "quai.tenants",
    "quai.catalog",
    "quai.warehouse",
    "quai.inventory",
    "quai.inbound",
    "quai.orders",
    "quai.labor",
    "quai.promise",
    "quai.fulfillment",
    "quai.shipping",
    "quai.packing",
    "quai.integrations",
    "quai.service",
    "quai.campaigns",
    "quai.analytics",
    "quai.demo",
]

# The quai.security ones are Django's (and WhiteNoise's) own, passed through by an API request that carries no
# cookie (a shop's Bearer key): sessions, users and messages are a browser's (quai/security.py says why).
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files are answered here, by the application server itself, before sessions or the database.
    "quai.security.StaticFilesMiddleware",
    "quai.security.ContentSecurityPolicyMiddleware",
    "quai.security.SessionMiddleware",
    "quai.security.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Django's own, always: `check --deploy` (security.W003) looks for this very name, and its request step is cheap.
    "django.middleware.csrf.CsrfViewMiddleware",
    "quai.security.AuthenticationMiddleware",
    "quai.security.MessageMiddleware",
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
# SQLite's page cache per connection (its default, 2 MB, holds a small day's hot pages; a 100,000-order day's file
# is about 2.4 GB and each index's upper pages then fell out of it, read again from the kernel at every statement:
# 238 s of the 988 s day were system time) and the file mapped into memory (pages read from the kernel's cache
# without a read call, shared by every connection). The page cache fills only as pages are read.
SQLITE_CACHE_MB = int(os.environ.get("QUAI_SQLITE_CACHE_MB", "64"))
SQLITE_MMAP_MB = int(os.environ.get("QUAI_SQLITE_MMAP_MB", "2048"))
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside the writer; IMMEDIATE makes writers queue at BEGIN instead of failing
    # with "database is locked" halfway through a transaction (SQLite ignores SELECT ... FOR UPDATE).
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": (
            "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; "
            f"PRAGMA cache_size=-{SQLITE_CACHE_MB * 1024}; PRAGMA mmap_size={SQLITE_MMAP_MB * 1024 * 1024};"
        ),
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
# Every task that may call a shop runs on the shop_push queue (quai/celery.py declares it beside the default one):
# a slow or rate-limited shop then holds a worker of that queue, never the outbox relay's. Outbound webhooks too (a
# merchant's endpoint): behind the relay's own tasks (one per commit, thousands deep in a sale) they waited a minute.
CELERY_TASK_ROUTES = {
    f"quai.integrations.tasks.{name}": {"queue": "shop_push"}
    for name in (
        "webhook_deliveries_send",
        "webhook_deliveries_sweep",
        "connection_stock_push",
        "connector_call_run",
        "inbound_delivery_process",
        "connections_poll",
        "connections_reconcile",
        "connection_health_check",
        "connection_reconcile",
    )
}
# Modules the worker imports at start-up besides the apps' tasks (comma-separated in QUAI_WORKER_IMPORTS), e.g.
# a module that registers extra outbox handlers; the embedded-worker test names its test-only handler this way.
CELERY_IMPORTS = tuple(name.strip() for name in os.environ.get("QUAI_WORKER_IMPORTS", "").split(",") if name.strip())
# How often beat sweeps the outbox (retries of failed handlers are due after their backoff, see below).
QUAI_OUTBOX_SWEEP_SECONDS = float(os.environ.get("QUAI_OUTBOX_SWEEP_SECONDS", "10"))
# First retry delay of a failed outbox handler; each further failure doubles it (capped at one hour).
QUAI_OUTBOX_BACKOFF_SECONDS = float(os.environ.get("QUAI_OUTBOX_BACKOFF_SECONDS", "5"))
# Relayed outbox events (and their handled rows) are deleted once this many days old (0: kept forever). 90 days: the
# service desk's order story reads them (quai/service/warehouse.py), past a merchant's 30-day return window
# after delivery; the order's status history is core's StateTransition, never purged (docs/OUTBOX.md, "Retention").
QUAI_OUTBOX_RETENTION_DAYS = int(os.environ.get("QUAI_OUTBOX_RETENTION_DAYS", "90"))
# Finished outbound webhook deliveries (and their attempts) are deleted once this many days old (0: kept forever). 30
# days: a merchant can list and replay them (back office, API) for a month, as Stripe keeps its events and PayPal
# its webhook events; deliveries still pending or waiting for a retry are never deleted (docs/CONNECTORS.md).
QUAI_WEBHOOK_LOG_RETENTION_DAYS = int(os.environ.get("QUAI_WEBHOOK_LOG_RETENTION_DAYS", "30"))
# The same for the shops' processed or failed inbound deliveries (never less than the 7 days of their dedupe) and
# the finished calls to shops; held and pending ones stay, and ShopOrder (a shop order's link to Quai's) is kept.
QUAI_SHOP_LOG_RETENTION_DAYS = int(os.environ.get("QUAI_SHOP_LOG_RETENTION_DAYS", "30"))
CELERY_BEAT_SCHEDULE = {
    "outbox-sweep": {"task": "quai.core.tasks.outbox_sweep", "schedule": QUAI_OUTBOX_SWEEP_SECONDS},
    # Once a day at a quiet hour (UTC): a time of day, not an interval, so a beat restarted more often than daily
    # (a deploy, `make run` in the evenings) still runs it; `manage.py serve` runs this beat in the embedded default.
    "outbox-purge": {"task": "quai.core.tasks.outbox_purge", "schedule": crontab(hour=2, minute=30)},
    # The integrations' logs (webhook deliveries and attempts, shop deliveries and calls), after the outbox's purge.
    "integration-logs-purge": {
        "task": "quai.integrations.tasks.integration_logs_purge",
        "schedule": crontab(hour=2, minute=45),
    },
    # Temporary zones open and close with the clock: this puts their stock in or out of availability.
    "stock-counting-sweep": {"task": "quai.inventory.tasks.stock_counting_sweep", "schedule": 60.0},
    # Idempotency-Key records are kept 24 h; the expired ones are deleted every hour, in batches.
    "idempotency-records-purge": {"task": "quai.tenants.tasks.idempotency_records_purge", "schedule": 3600.0},
    # Allocated orders go to the warehouse once their release buffer (per merchant, 15 min by default) is over.
    "orders-release-sweep": {"task": "quai.orders.tasks.orders_release_sweep", "schedule": 30.0},
    # Waves on a schedule (off unless QUAI_FULFILMENT_SCHEDULED_WAVE_SIZE > 0): the next N waiting orders per site.
    "fulfilment-waves": {"task": "quai.fulfillment.tasks.waves_release_sweep", "schedule": 300.0},
    # Outbound webhooks due for a retry (or missed by a nudge, or left by a dead worker) are sent from here.
    "webhook-deliveries-sweep": {
        "task": "quai.integrations.tasks.webhook_deliveries_sweep",
        "schedule": QUAI_OUTBOX_SWEEP_SECONDS,
    },
    # Shop connections: due retries (deliveries held or failed, stock pushes, calls to shops) and the order poll,
    # a safety net under the shops' webhooks; the stock reconcile compares each shop's levels with Quai's.
    "shop-connections-sweep": {
        "task": "quai.integrations.tasks.connections_sweep",
        "schedule": QUAI_OUTBOX_SWEEP_SECONDS,
    },
    "shop-orders-poll": {"task": "quai.integrations.tasks.connections_poll", "schedule": 300.0},
    "shop-stock-reconcile": {"task": "quai.integrations.tasks.connections_reconcile", "schedule": 3600.0},
    # Carriers without push are asked for the parcels still travelling (delivered closes the order's promise).
    "shipping-tracking-poll": {"task": "quai.shipping.tasks.tracking_poll", "schedule": 900.0},
}
# The address shops call Quai at: each shop connection's inbound URL is built on it (docs/CONNECTORS.md).
QUAI_PUBLIC_URL = os.environ.get("QUAI_PUBLIC_URL", "http://localhost:8000")
# Secrets at rest (shop and carrier credentials, webhook secrets): comma-separated Fernet keys, the first encrypts,
# all decrypt (quai/core/crypto.py). Unset: a key derived from SECRET_KEY, and only while DEBUG is on; unset with
# DEBUG off, the first use of a secret raises ImproperlyConfigured.
QUAI_ENCRYPTION_KEYS = [k.strip() for k in os.environ.get("QUAI_ENCRYPTION_KEYS", "").split(",") if k.strip()]
if not QUAI_ENCRYPTION_KEYS and DEBUG:
    import base64
    import hashlib

    QUAI_ENCRYPTION_KEYS = [
        base64.urlsafe_b64encode(hashlib.sha256(b"quai-encryption-at-rest:" + SECRET_KEY.encode()).digest()).decode()
    ]
# Webhook URLs may point at private, loopback and link-local addresses only in development: in production a
# subscription could otherwise make the workers call internal services (SSRF). Tests allow loopback receivers.
QUAI_WEBHOOKS_ALLOW_PRIVATE = _env_bool("QUAI_WEBHOOKS_ALLOW_PRIVATE", DEBUG)
# After each commit that recorded events, nudge the relay at once (the periodic sweep catches anything missed).
QUAI_OUTBOX_NUDGE = _env_bool("QUAI_OUTBOX_NUDGE", True)
# Long-running processes (web, Celery workers) freeze their loaded state out of the cyclic collector's walks and
# collect less often (quai/core/runtime.py, docs/INTAKE.md); false: Python's collector as it comes.
QUAI_GC_TUNE = _env_bool("QUAI_GC_TUNE", True)
# Intake shares commits between requests (quai/core/batching.py, docs/INTAKE.md); false: one transaction each.
QUAI_GROUP_COMMIT = _env_bool("QUAI_GROUP_COMMIT", True)
# Seconds a web process trusts an API key it authenticated without reading it again; a revocation bites within it.
QUAI_API_KEY_CACHE_SECONDS = float(os.environ.get("QUAI_API_KEY_CACHE_SECONDS", "5"))
# Seconds a web process keeps what intake reads per order (a merchant's SKUs by code, its release buffer); 0: off.
QUAI_INTAKE_CACHE_SECONDS = float(os.environ.get("QUAI_INTAKE_CACHE_SECONDS", "5"))
# Waves released by the schedule: the next N waiting orders per site every 5 minutes (0: only supervisors).
QUAI_FULFILMENT_SCHEDULED_WAVE_SIZE = int(os.environ.get("QUAI_FULFILMENT_SCHEDULED_WAVE_SIZE", "0"))
# Mounts POST /api/v1/orders/bench/bare, the ceiling `make bench` compares intake with (quai/orders/bench_api.py).
QUAI_BENCH_ENDPOINTS = _env_bool("QUAI_BENCH_ENDPOINTS", False)

# --- Auth -----------------------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
LOGIN_URL = "/ops/login/"
LOGIN_REDIRECT_URL = "/ops/"  # after signing in: the operator menu (Django's default is a 404)
# Messages live in the session (server side), never in a cookie: the back office shows a new webhook secret once in
# a message, and a secret must not travel in the browser's cookie jar.
MESSAGE_STORAGE = "django.contrib.messages.storage.session.SessionStorage"
LOGOUT_REDIRECT_URL = "/ops/login/"  # a shared handheld goes back to the sign-in page

# --- I18n and time --------------------------------------------------------------------------------------------
LANGUAGE_CODE = "fr"
LANGUAGES = [("fr", _("French")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "quai" / "locale"]
TIME_ZONE = os.environ.get("QUAI_TIME_ZONE", "Europe/Paris")
USE_I18N = True
USE_TZ = True
# Dates in ISO 8601 on every screen and in the back office, in every language (quai/formats/).
FORMAT_MODULE_PATH = "quai.formats"

STATIC_URL = "static/"
# Assets shared by every operator screen (htmx, the scan-and-beep script, the handheld stylesheet).
STATICFILES_DIRS = [BASE_DIR / "quai" / "static"]
# `manage.py collectstatic` copies every static file here, with a content hash in its name; in production WhiteNoise
# serves them from here, compressed and cached for a year (the name changes when the content does).
STATIC_ROOT = Path(os.environ.get("QUAI_STATIC_ROOT") or BASE_DIR / "var" / "static")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
# With DEBUG on, WhiteNoise reads the apps' static folders directly (no collectstatic while developing).
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# --- Security -------------------------------------------------------------------------------------------------
# QUAI_HTTPS (default: on when DEBUG is off): the site is reached over HTTPS. It turns on the redirect to HTTPS, HSTS
# and secure cookies. Behind a proxy that terminates TLS (nginx, a load balancer), also set
# QUAI_TRUST_X_FORWARDED_PROTO=true so Django learns from the proxy's X-Forwarded-Proto header that the request came
# over HTTPS. Set it only behind a proxy that always sets (overwrites) that header, or any client could claim HTTPS.
HTTPS = _env_bool("QUAI_HTTPS", not DEBUG)
if _env_bool("QUAI_TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = int(os.environ.get("QUAI_HSTS_SECONDS") or (31_536_000 if HTTPS else 0))
SECURE_HSTS_INCLUDE_SUBDOMAINS = _env_bool("QUAI_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = _env_bool("QUAI_HSTS_PRELOAD", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Sent on every answer (quai/security.py). Scripts only from our own files: no inline script, no eval, which is what
# turns an injected <script> into a harmless string; the one inline handler the screens use, the site picker's
# onchange="this.form.submit()", is allowed by its hash. Inline styles stay allowed: htmx adds its indicator style
# and the screens and admin use style attributes. QUAI_CSP replaces the policy; an empty QUAI_CSP sends none.
QUAI_CONTENT_SECURITY_POLICY = os.environ.get(
    "QUAI_CSP",
    "default-src 'self'; script-src 'self' 'unsafe-hashes' 'sha256-osjxnKEPL/pQJbFk1dKsF7PYFmTyMWGmVSiL9inhxJY='; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'",
)
# With DEBUG on the policy is only reported (Content-Security-Policy-Report-Only): a violation shows in the
# browser's console without blocking, and browser tests can still evaluate their own JavaScript in the page.
QUAI_CSP_REPORT_ONLY = _env_bool("QUAI_CSP_REPORT_ONLY", DEBUG)

NINJA_PAGINATION_CLASS = "quai.core.pagination.Pagination"
NINJA_PAGINATION_PER_PAGE = 50
NINJA_PAGINATION_MAX_LIMIT = 500

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("QUAI_LOG_LEVEL", "WARNING")},
}
