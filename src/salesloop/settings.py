"""One settings module, read from SALESLOOP_* environment variables (see .env.example).

Helpers fail loudly on a bad value instead of guessing.
"""

from __future__ import annotations

import os
import secrets
import sys
import tempfile
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = Path(os.environ.get("SALESLOOP_HOME", Path.cwd())).resolve()
VAR_DIR = Path(os.environ.get("SALESLOOP_VAR_DIR", PROJECT_DIR / "var")).resolve()

# pytest imports these settings itself; tests use SALESLOOP_TEST_DATABASE_URL and run tasks inline.
TESTING = "pytest" in sys.modules or os.environ.get("SALESLOOP_TESTING") == "1"


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean (use 1/0, true/false, yes/no)")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not an integer") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def _secret_key() -> str:
    key = os.environ.get("SALESLOOP_SECRET_KEY")
    if key:
        return key
    if TESTING:
        return "tests-only-" + secrets.token_hex(16)
    # The embedded setup keeps a generated key beside its database, so `make demo` needs no
    # configuration and no key is ever written into the code.
    key_file = VAR_DIR / "secret_key"
    if key_file.exists():
        return key_file.read_text().strip()
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(50)
    key_file.write_text(key)
    key_file.chmod(0o600)
    return key


SECRET_KEY = _secret_key()
DEBUG = env_bool("SALESLOOP_DEBUG", False)
ALLOWED_HOSTS = env_list("SALESLOOP_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("SALESLOOP_CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env_str("SALESLOOP_SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_htmx",
    "django_tasks",
    "django_tasks_db",
    "salesloop.core",
    "salesloop.accounts",
    "salesloop.crm",
    "salesloop.pipeline",
    "salesloop.notify",
    "salesloop.intake",
    "salesloop.routing",
    "salesloop.workspace",
    "salesloop.engagement",
    "salesloop.health",
    "salesloop.insights",
    "salesloop.demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "salesloop.core.middleware.ChineseFirstLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
]

ROOT_URLCONF = "salesloop.urls"
WSGI_APPLICATION = "salesloop.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
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


def _database() -> dict:
    default_sqlite = f"sqlite:///{VAR_DIR / 'salesloop.sqlite3'}"
    if TESTING:
        url = env_str("SALESLOOP_TEST_DATABASE_URL") or "sqlite:///:memory:"
    else:
        url = env_str("SALESLOOP_DATABASE_URL") or default_sqlite
    try:
        config = dj_database_url.parse(url, conn_max_age=env_int("SALESLOOP_DB_CONN_MAX_AGE", 60))
    except Exception as exc:  # dj_database_url raises several types for a malformed URL
        raise ImproperlyConfigured(f"SALESLOOP_DATABASE_URL={url!r} cannot be parsed: {exc}") from exc
    engine = config["ENGINE"]
    if engine == "django.db.backends.sqlite3":
        config["ENGINE"] = "salesloop.core.sqlite"  # write transactions take turns (core/sqlite/base.py)
        if config["NAME"] != ":memory:":
            Path(config["NAME"]).parent.mkdir(parents=True, exist_ok=True)
        # WAL lets readers go on while one writer writes; IMMEDIATE takes the write lock at BEGIN,
        # so concurrent writers wait on busy_timeout instead of failing with "database is locked".
        config["OPTIONS"] = {
            "init_command": (
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; "
                "PRAGMA cache_size=-65536; PRAGMA temp_store=MEMORY; PRAGMA mmap_size=268435456;"
            ),
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
        config["CONN_MAX_AGE"] = 0 if TESTING else config.get("CONN_MAX_AGE", 60)
        # Tests use a file, not the in-memory default: concurrency tests run many threads, and an
        # in-memory database shared between threads locks tables instead of waiting its turn.
        config["TEST"] = {"NAME": str(Path(tempfile.gettempdir()) / f"salesloop-test-{os.getpid()}.sqlite3")}
    elif engine.startswith("django.db.backends.postgresql"):
        config["ENGINE"] = "salesloop.core.postgresql"  # JSON rows bulk-inserted as VALUES (its base.py)
        config.setdefault("OPTIONS", {})
        # SSD-era cost of a random page read. With PostgreSQL's default (4, for spinning disks) the
        # planner walks the primary key backwards through a million leads instead of using the
        # (stage, -id) index for a stage filter: 100-300 ms instead of 1-5 ms (bench/README.md).
        page_cost = env_str("SALESLOOP_PG_RANDOM_PAGE_COST", "1.1")
        config["OPTIONS"]["options"] = f"-c random_page_cost={page_cost}"
        config["CONN_HEALTH_CHECKS"] = True
    else:
        raise ImproperlyConfigured(f"Unsupported database engine {engine!r}: use sqlite:// or postgresql://")
    return config


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
]

if TESTING:
    # Tests create many users; the production hasher's deliberate slowness buys nothing there.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Chinese first; English on request (the language switch sets a cookie).
LANGUAGE_CODE = env_str("SALESLOOP_LANGUAGE", "zh-hans")
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = env_str("SALESLOOP_TIME_ZONE", "Asia/Shanghai")

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]  # the project-wide stylesheet and icons live outside any app
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "salesloop.core.staticfinders.PackageAssetFinder",  # Plotly.js from its wheel
]
WHITENOISE_USE_FINDERS = True  # serve app static files without a collectstatic step
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns on every start without it
MEDIA_ROOT = VAR_DIR / "media"

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SALESLOOP_SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"

TASKS = {
    "default": (
        {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}
        if TESTING
        else {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}
    )
}

# Alerts' group robots (docs/alerts.md): webhooks must be WeCom's or DingTalk's own hosts; these
# `host:port` entries are accepted too (an on-premise relay; the tests' fake robot), http allowed.
SALESLOOP_BOT_EXTRA_HOSTS = env_list("SALESLOOP_BOT_EXTRA_HOSTS", [])
SALESLOOP_BOT_TIMEOUT = env_int("SALESLOOP_BOT_TIMEOUT", 10)  # seconds to wait for a robot's answer

# Page size of list pages and list endpoints; keyset pagination never counts past it.
SALESLOOP_PAGE_SIZE = env_int("SALESLOOP_PAGE_SIZE", 50)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("SALESLOOP_LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}
