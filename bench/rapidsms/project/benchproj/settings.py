"""
Settings for the RapidSMS side of the smsgw inbound benchmark.

Configured like an ordinary RapidSMS 2.2 deployment that receives Kannel MO
messages: Django's default (startproject) middleware, the RapidSMS apps,
the Kannel backend, and RapidSMS's DatabaseRouter, which stores every message
in the database. See ../../NOTES.md for what a request does.

Environment (all optional; run.sh sets the first two):
  RAPIDSMS_BENCH_DB            SQLite file (default <repo>/target/bench/rapidsms.sqlite3)
  RAPIDSMS_BENCH_SENDSMS_URL   Kannel sendsms URL for replies (default Kannel's
                               own 127.0.0.1:13013; run.sh points it at a
                               loopback fake that gunicorn.conf.py starts)
  RAPIDSMS_BENCH_SYNCHRONOUS   SQLite PRAGMA synchronous (default FULL, like smsgw)
  RAPIDSMS_BENCH_CONN_MAX_AGE  Django CONN_MAX_AGE seconds (default 600: persistent)
  RAPIDSMS_BENCH_ROUTER        router class (default rapidsms.router.db.DatabaseRouter;
                               rapidsms.router.blocking.BlockingRouter is RapidSMS's default)
"""

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = BASE_DIR.parent.parent.parent

SECRET_KEY = "rapidsms-bench-not-secret-loopback-only"
DEBUG = False
ALLOWED_HOSTS = ["localhost", "127.0.0.1"]

INSTALLED_APPS = [
    # django contrib apps
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # third-party apps RapidSMS's UI uses
    "django_tables2",
    "selectable",
    # RapidSMS core, message store and backend
    "rapidsms",
    "rapidsms.router.db",
    "rapidsms.backends.kannel",
    # RapidSMS apps: the handlers app with the echo app's two handlers
    # (EchoHandler: "echo <text>", PingHandler: exactly "ping" -> "pong").
    # Mirrors smsgw's defaults (echo + ping, no default reply), so the
    # benchmark's "hello" gets no reply on either side.
    # rapidsms.contrib.default is deliberately NOT installed: it would
    # answer every unmatched message with "Sorry, ... could not understand".
    # rapidsms.contrib.messagelog is not installed either: DatabaseRouter
    # already stores every message; messagelog would add a second copy.
    "rapidsms.contrib.handlers",
    "rapidsms.contrib.echo",
]

# Django's startproject defaults.
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "benchproj.urls"
WSGI_APPLICATION = "benchproj.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.debug",
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database: SQLite, durable like smsgw's store (WAL, synchronous=FULL) ---
_SYNCHRONOUS = os.environ.get("RAPIDSMS_BENCH_SYNCHRONOUS", "FULL")
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get(
            "RAPIDSMS_BENCH_DB", str(REPO_ROOT / "target" / "bench" / "rapidsms.sqlite3")
        ),
        "CONN_MAX_AGE": (
            None
            if os.environ.get("RAPIDSMS_BENCH_CONN_MAX_AGE", "600") == "None"
            else int(os.environ.get("RAPIDSMS_BENCH_CONN_MAX_AGE", "600"))
        ),
        "OPTIONS": {
            # Django 5.1+: run on every new connection.
            "init_command": f"PRAGMA journal_mode=WAL; PRAGMA synchronous={_SYNCHRONOUS};",
            # Two gunicorn worker processes write to one file: take the write
            # lock at BEGIN so that transactions wait (busy timeout) instead of
            # failing with "database is locked" on a read->write upgrade.
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        },
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"

# --- RapidSMS ---
# RapidSMS's default is the BlockingRouter (nothing stored); the benchmark
# measures both (RAPIDSMS_BENCH_ROUTER).
RAPIDSMS_ROUTER = os.environ.get("RAPIDSMS_BENCH_ROUTER", "rapidsms.router.db.DatabaseRouter")

# The documented (non-deprecated) way to pick handlers; without it the
# handlers app spiders every INSTALLED_APP for handler modules each time a
# router is built (twice per inbound message) and warns DeprecationWarning.
RAPIDSMS_HANDLERS = [
    "rapidsms.contrib.echo.handlers.echo.EchoHandler",
    "rapidsms.contrib.echo.handlers.ping.PingHandler",
]

INSTALLED_BACKENDS = {
    "kannel-fake-smsc": {
        "ENGINE": "rapidsms.backends.kannel.KannelBackend",
        "sendsms_url": os.environ.get(
            "RAPIDSMS_BENCH_SENDSMS_URL", "http://127.0.0.1:13013/cgi-bin/sendsms"
        ),
        "sendsms_params": {
            "smsc": "fake-smsc",
            "from": "12345",
            "username": "rapidsms",
            "password": "bench-password",
        },
        "coding": 0,
        "charset": "ascii",
        "encode_errors": "ignore",
    },
}

# DatabaseRouter hands each stored message to a Celery task
# (rapidsms.router.db.tasks.receive_async / send_transmissions). No broker
# runs here, so the tasks run eagerly, inside the request, as in RapidSMS's
# own test settings. With a broker the HTTP response would return after the
# Message/Transmission INSERT and the rest would happen in a Celery worker.
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = False
# Eager apply_async still builds a (never used) producer; name an in-process
# transport so nothing ever reaches for an AMQP broker on localhost:5672.
CELERY_BROKER_URL = "memory://localhost/"

# Warnings and errors (e.g. a Kannel request that fails form validation) go to
# stderr, which run.sh sends to the gunicorn log file.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
