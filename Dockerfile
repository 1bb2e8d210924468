# OpenVitals API image: gunicorn serving config.wsgi, static files via whitenoise.
# The same image runs the Celery worker and beat (see docker-compose.yml).

# --- Stage 1: build a self-contained virtualenv --------------------------------------
FROM python:3.11-slim AS builder

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:$PATH"

WORKDIR /build
COPY requirements.txt constraints.txt ./
RUN pip install -r requirements.txt -c constraints.txt

# --- Stage 2: runtime ----------------------------------------------------------------
FROM python:3.11-slim AS runtime

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH="/opt/venv/bin:$PATH" \
    DJANGO_SETTINGS_MODULE=config.settings.base

# Unprivileged runtime user; it owns nothing but its scratch directory.
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app

COPY --from=builder /opt/venv /opt/venv

WORKDIR /app
COPY . .

# collectstatic imports the settings, which need a strong secret key once DEBUG is off; this
# random throwaway value exists only for this RUN line and never reaches the runtime env.
# Settings fall back to SQLite (creating .local/) without DATABASE_URL: drop that here
# and give the runtime user its own .local for the zero-setup mode.
RUN DJANGO_SECRET_KEY="$(python -c 'import secrets; print(secrets.token_urlsafe(50))')" DJANGO_DEBUG=false \
        python manage.py collectstatic --noinput \
    && rm -rf /app/.local \
    && install -d -o app -g app /app/.local

USER app

EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/health/', timeout=4).status == 200 else 1)"]

CMD ["gunicorn", "config.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
