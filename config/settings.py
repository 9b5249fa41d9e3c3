"""Settings for Lessongraph, read from the environment.

With no environment at all the site runs on embedded defaults: SQLite and a
Celery broker kept in files under ``DATA_DIR``, so ``make run`` needs no
server. ``DATABASE_URL`` and ``CELERY_BROKER_URL`` switch to PostgreSQL and
Redis (or RabbitMQ) for the scaled-out configuration.

``DJANGO_ENV=production`` turns on the production checks: the site refuses to
start with the development secret key or with ``DEBUG`` on.
"""

import os
from pathlib import Path

import dj_database_url
import django_stubs_ext
from django.core.exceptions import ImproperlyConfigured

# Lets admin and generic classes be written with their type parameters.
django_stubs_ext.monkeypatch()

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if value.lower() in {"1", "true", "yes", "on"}:
        return True
    if value.lower() in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name} must be a boolean (true/false), got {value!r}")


def env_list(name: str, default: list[str]) -> list[str]:
    value = os.environ.get(name)
    if not value:
        return default
    return [item.strip() for item in value.split(",") if item.strip()]


def env_number[Number: (int, float)](
    name: str, default: Number, kind: type[Number]
) -> Number:
    """A number from the environment; one that is not a number of that
    kind stops the site naming the variable, not with a bare ValueError."""
    value = os.environ.get(name, "").strip()
    if not value:
        return kind(default)
    try:
        return kind(value)
    except ValueError:
        raise ImproperlyConfigured(
            f"{name} must be {'a whole number' if kind is int else 'a number'}, "
            f"got {value!r}"
        ) from None


DEVELOPMENT_SECRET_KEY = "development-only-secret-key-never-use-in-production"

ENVIRONMENT = os.environ.get("DJANGO_ENV", "development")
if ENVIRONMENT not in {"development", "production"}:
    raise ImproperlyConfigured(
        f"DJANGO_ENV must be 'development' or 'production', got {ENVIRONMENT!r}"
    )
PRODUCTION = ENVIRONMENT == "production"

SECRET_KEY = os.environ.get("SECRET_KEY", DEVELOPMENT_SECRET_KEY)
DEBUG = env_bool("DEBUG", default=not PRODUCTION)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])

if PRODUCTION:
    if SECRET_KEY == DEVELOPMENT_SECRET_KEY or len(SECRET_KEY) < 32:
        raise ImproperlyConfigured(
            "Production needs its own SECRET_KEY of at least 32 characters; "
            "the development key is refused."
        )
    if DEBUG:
        raise ImproperlyConfigured("Production refuses to start with DEBUG on.")

DATA_DIR = Path(os.environ.get("DATA_DIR", BASE_DIR / "var"))

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    "accounts",
    "lessons",
    "payments",
    "deployments",
]

MIDDLEWARE = [
    # First: it answers CORS preflight requests itself.
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "config.errors.ApplicationErrorMiddleware",
    "django_ratelimit.middleware.RatelimitMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.passkeys",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{DATA_DIR / 'lessongraph.sqlite3'}",
        conn_max_age=env_number("DATABASE_CONN_MAX_AGE", 60, int),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    # Wait for a writer instead of failing at once when the web server and
    # the worker touch the file together. IMMEDIATE takes the write lock when
    # a transaction begins: a transaction that reads and then writes would
    # otherwise fail at once ("database is locked") instead of waiting.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
# Passkeys only: this backend never accepts a password.
AUTHENTICATION_BACKENDS = ["accounts.backends.PasskeyBackend"]
AUTH_PASSWORD_VALIDATORS: list[dict[str, str]] = []
LOGIN_URL = "accounts:signin"

# WebAuthn. The relying party id and the origins are pinned here; they are
# never taken from the request's Host header.
WEBAUTHN_RP_ID = os.environ.get("WEBAUTHN_RP_ID", "localhost")
WEBAUTHN_RP_NAME = os.environ.get("WEBAUTHN_RP_NAME", "Lessongraph")
WEBAUTHN_ORIGINS = env_list("WEBAUTHN_ORIGINS", ["http://localhost:8000"])
WEBAUTHN_CHALLENGE_SECONDS = env_number("WEBAUTHN_CHALLENGE_SECONDS", 180, int)
# How long a passkey assertion counts as fresh for sensitive actions.
ACCOUNTS_REAUTH_SECONDS = env_number("ACCOUNTS_REAUTH_SECONDS", 300, int)
# Passkey answers (sign-up, sign-in, re-authentication, new passkeys) and
# requests for options, each per client address (accounts/limits.py).
ACCOUNTS_CEREMONY_RATE = os.environ.get("ACCOUNTS_CEREMONY_RATE", "30/m")
ACCOUNTS_OPTIONS_RATE = os.environ.get("ACCOUNTS_OPTIONS_RATE", "120/m")
CSRF_FAILURE_VIEW = "accounts.views.csrf_failure"
RATELIMIT_VIEW = "accounts.views.rate_limited"

# The rate limits count in the cache: in memory for one process by
# default, Redis (CACHE_URL=redis://...) when several processes serve.
CACHES: dict[str, dict[str, object]]
if os.environ.get("CACHE_URL"):
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": os.environ["CACHE_URL"],
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            # Room for every lesson page of a mid-sized site (~25 KB each).
            "OPTIONS": {"MAX_ENTRIES": 2000},
        }
    }

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
# WhiteNoise serves static files whatever DEBUG says. Production collects
# them first (manage.py collectstatic); elsewhere they are found in place.
STATIC_ROOT = (
    Path(os.environ.get("STATIC_ROOT", DATA_DIR / "static")) if PRODUCTION else None
)
WHITENOISE_USE_FINDERS = not PRODUCTION

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
if PRODUCTION:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
    },
    "filters": {"payment_required": {"()": "config.logs.PaymentRequiredFilter"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        # The x402 package logs every signature it makes at INFO.
        "x402": {"level": "WARNING"},
        "django.request": {"filters": ["payment_required"]},
    },
}

# Celery. The embedded default is kombu's filesystem transport: messages are
# files in a folder shared by the web process and the worker, so a real worker
# runs without a broker server. Results go to files beside them.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {}
if CELERY_BROKER_URL == "filesystem://":
    _queue_dir = DATA_DIR / "celery" / "queue"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_queue_dir),
        "data_folder_out": str(_queue_dir),
        "processed_folder": str(DATA_DIR / "celery" / "processed"),
        "store_processed": False,
        # Without this, kombu keeps its control exchange in ./control.
        "control_folder": str(DATA_DIR / "celery" / "control"),
    }
    CELERY_RESULT_BACKEND = os.environ.get(
        "CELERY_RESULT_BACKEND", f"file://{DATA_DIR / 'celery' / 'results'}"
    )
    for _folder in ("queue", "processed", "results", "control"):
        (DATA_DIR / "celery" / _folder).mkdir(parents=True, exist_ok=True)
else:
    CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", CELERY_BROKER_URL)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = 300
CELERY_TASK_SOFT_TIME_LIMIT = 240
CELERY_RESULT_EXPIRES = 3600

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "config.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "EXCEPTION_HANDLER": "config.errors.api_exception_handler",
    "DEFAULT_PARSER_CLASSES": [
        "config.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.authentication.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Lessongraph API",
    "DESCRIPTION": "Graph-linked technical lessons, their papers and their paths.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# Lessons
LESSONS_DEFAULT_ASSET = "AIN"
LESSONS_BUNDLED_DIR = BASE_DIR / "lessons" / "content"
LESSONS_CATALOGUE_PAGE_SIZE = 12
LESSONS_NEIGHBOURHOOD_MAX_DEPTH = 3
# Lesson pages are cached per content version (see lessons/caching.py).
LESSONS_PAGE_CACHE_SECONDS = env_number("LESSONS_PAGE_CACHE_SECONDS", 600, int)
# The picture stays legible; the list under it names every neighbour.
LESSONS_NEIGHBOURHOOD_PICTURE_LIMIT = 40

# Papers: metadata of cited arXiv papers, fetched with the arxiv package
# (lessons/arxiv_client.py). Tests and operators may point ARXIV_API_URL
# at a mirror speaking the same Atom API.
ARXIV_API_URL = os.environ.get("ARXIV_API_URL", "https://export.arxiv.org/api/query")
ARXIV_TIMEOUT_SECONDS = env_number("ARXIV_TIMEOUT_SECONDS", 20, float)
# arXiv asks for at most one request every three seconds from the whole
# site: every worker takes turns under one lock in the database.
ARXIV_REQUEST_INTERVAL_SECONDS = env_number("ARXIV_REQUEST_INTERVAL_SECONDS", 3, float)
ARXIV_BATCH_SIZE = env_number("ARXIV_BATCH_SIZE", 50, int)
# Answers 429, 502, 503 and 504 and timeouts are retried this many times,
# after pauses doubling from ARXIV_BACKOFF_SECONDS (or Retry-After).
ARXIV_RETRIES = env_number("ARXIV_RETRIES", 3, int)
ARXIV_BACKOFF_SECONDS = env_number("ARXIV_BACKOFF_SECONDS", 5, float)
ARXIV_BACKOFF_MAX_SECONDS = env_number("ARXIV_BACKOFF_MAX_SECONDS", 60, float)
# Celery beat refreshes every paper this often (config/celery.py).
PAPERS_REFRESH_SECONDS = env_number("PAPERS_REFRESH_SECONDS", 86400, int)

# x402 payments. No public chain is reachable from here: the site's own
# facilitator settles on a ledger in the database, on a local EVM chain id.
X402_NETWORK = os.environ.get("X402_NETWORK", "eip155:31337")
X402_ASSET = "AIN"
X402_ASSET_ADDRESS = os.environ.get(
    "X402_ASSET_ADDRESS", "0xa1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1"
)
X402_ASSET_NAME = "Lessongraph AIN"
X402_ASSET_VERSION = "1"
X402_ASSET_DECIMALS = 18
X402_CLOCK_SKEW_SECONDS = env_number("X402_CLOCK_SKEW_SECONDS", 5, int)

# Selling gated lessons' bodies (payments/gate.py, payments/offers.py).
# Where sales are paid. The development default is a fixed address that
# nobody holds a key for (its takings show in `wallet_statement`);
# production refuses to start with it.
X402_DEVELOPMENT_PAY_TO = "0x5173000000000000000000000000000000000402"
X402_SITE_PAY_TO = os.environ.get("X402_SITE_PAY_TO", X402_DEVELOPMENT_PAY_TO)
# How long a signed payment may stay usable, as offered to payers.
X402_MAX_TIMEOUT_SECONDS = env_number("X402_MAX_TIMEOUT_SECONDS", 300, int)
# Empty: the site's own facilitator is called in-process. A URL (such as
# https://pay.example/facilitator): the facilitator there, over HTTP. This
# site's own /facilitator works too, given more than one worker to answer.
X402_FACILITATOR_URL = os.environ.get("X402_FACILITATOR_URL", "")
X402_FACILITATOR_TIMEOUT_SECONDS = env_number(
    "X402_FACILITATOR_TIMEOUT_SECONDS", 10, float
)
X402_PAYMENT_HEADER_MAX_BYTES = 16 * 1024
# Paying programs may run in a page of another site (django-cors-headers):
# the sold resources and receipts answer any origin, never with cookies,
# take the payment headers and show theirs. Everything else stays
# same-origin.
CORS_URLS_REGEX = (
    r"^/api/(lessons/[-a-zA-Z0-9_]+/(content|path/bundle)/?|purchases/[^/]+)$"
)
CORS_ALLOW_ALL_ORIGINS = True
CORS_ALLOW_CREDENTIALS = False
CORS_ALLOW_METHODS = ["GET", "HEAD", "OPTIONS"]
CORS_ALLOW_HEADERS = ["accept", "authorization", "payment-signature", "x-payment"]
CORS_EXPOSE_HEADERS = ["PAYMENT-REQUIRED", "PAYMENT-RESPONSE", "X-PAYMENT-RESPONSE"]
# The ways a gated lesson can be paid. {"scheme": "exact"} is the site's
# token, paid to X402_SITE_PAY_TO and settled by the site's facilitator. An
# offer settled elsewhere names everything: scheme, network, asset, symbol,
# name, version, decimals, pay_to and facilitator_url (payments/offers.py).
X402_OFFERS: list[dict[str, object]] = [{"scheme": "exact"}]
# Account wallets (payments/wallets.py): what signed-in learners pay from.
# Their private keys are sealed with this AES-256 key, 32 random bytes in
# URL-safe base64. Empty: derived from SECRET_KEY, in development only;
# production refuses to start without its own.
WALLET_ENCRYPTION_KEY = os.environ.get("WALLET_ENCRYPTION_KEY", "")
# Funded from the mint into each new account's wallet, in AIN; never in
# production, where wallets start empty.
WALLET_STARTING_BALANCE = os.environ.get("WALLET_STARTING_BALANCE", "1")

# Deployments (deployments/): running a lesson's worked example for real.
# Only the Celery worker talks to the Docker engine, buildah and the
# registry; web processes never do.
DEPLOYMENTS_DIR = Path(os.environ.get("DEPLOYMENTS_DIR", DATA_DIR / "deployments"))
# The private registry the examples are pushed to (host:port, plain HTTP on
# 127.0.0.1, bcrypt htpasswd); `manage.py registry start` serves it.
DEPLOYMENTS_REGISTRY = os.environ.get("DEPLOYMENTS_REGISTRY", "127.0.0.1:5000")
DEPLOYMENTS_REGISTRY_USERNAME = os.environ.get(
    "DEPLOYMENTS_REGISTRY_USERNAME", "lessongraph"
)
# Empty: derived from SECRET_KEY, in development only.
DEPLOYMENTS_REGISTRY_PASSWORD = os.environ.get("DEPLOYMENTS_REGISTRY_PASSWORD", "")
# Registries a deployment may pull from; anything else is refused.
DEPLOYMENTS_ALLOWED_REGISTRIES = env_list(
    "DEPLOYMENTS_ALLOWED_REGISTRIES", [DEPLOYMENTS_REGISTRY]
)
# Engines a run may target: "name=DOCKER_HOST" pairs; an empty address is
# the local socket. TLS for tcp:// comes from DOCKER_CERT_PATH.
DEPLOYMENTS_TARGETS = {
    name.strip(): host.strip()
    for name, _, host in (
        item.partition("=") for item in env_list("DEPLOYMENTS_TARGETS", ["local="])
    )
}
# Seals example secrets at rest: 32 random bytes in URL-safe base64. Empty:
# derived from SECRET_KEY, in development only.
DEPLOYMENTS_SECRETS_KEY = os.environ.get("DEPLOYMENTS_SECRETS_KEY", "")
# The Ed25519 key that signs provenance: a 32-byte seed in URL-safe base64.
# Empty: a key file made under DEPLOYMENTS_DIR, in development only.
DEPLOYMENTS_SIGNING_KEY = os.environ.get("DEPLOYMENTS_SIGNING_KEY", "")
DEPLOYMENTS_BASE_IMAGE = f"{DEPLOYMENTS_REGISTRY}/lessongraph/base:busybox"
DEPLOYMENTS_ENGINE_TIMEOUT_SECONDS = env_number(
    "DEPLOYMENTS_ENGINE_TIMEOUT_SECONDS", 60, int
)
DEPLOYMENTS_BUILD_TIMEOUT_SECONDS = env_number(
    "DEPLOYMENTS_BUILD_TIMEOUT_SECONDS", 300, int
)
DEPLOYMENTS_REGISTRY_TIMEOUT_SECONDS = 10
DEPLOYMENTS_HEALTH_TIMEOUT_SECONDS = env_number(
    "DEPLOYMENTS_HEALTH_TIMEOUT_SECONDS", 30, int
)
# A running run whose worker has not reported for this long is failed and
# cleaned up by the reconciliation.
DEPLOYMENTS_RUN_STALE_SECONDS = env_number("DEPLOYMENTS_RUN_STALE_SECONDS", 120, int)
# A queued run no worker has taken for this long is failed (by the
# reconciliation, or by the next start of the same subject and target).
DEPLOYMENTS_RUN_QUEUED_SECONDS = env_number("DEPLOYMENTS_RUN_QUEUED_SECONDS", 600, int)
DEPLOYMENTS_RUN_TIME_LIMIT_SECONDS = 900
# Names this site's containers and local images, and labels them, so that
# several sites (or test sessions) can share one engine.
DEPLOYMENTS_INSTANCE = os.environ.get("DEPLOYMENTS_INSTANCE", "lessongraph")
CELERY_BEAT_SCHEDULE = {
    "deployments-runs-reconcile": {
        "task": "deployments.tasks.runs_reconcile",
        "schedule": 60.0,
    },
}
DEPLOYMENTS_EXAMPLES_DIR = BASE_DIR / "deployments" / "examples"
