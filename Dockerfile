# syntax=docker/dockerfile:1
# Production image of WhaleFall: web (gunicorn), worker and beat share it.

FROM python:3.11-slim-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config libmariadb-dev \
 && rm -rf /var/lib/apt/lists/*
COPY requirements/ /build/requirements/
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --upgrade pip \
 && /opt/venv/bin/pip install --no-cache-dir -r /build/requirements/prod.txt

FROM python:3.11-slim-bookworm AS runtime
# libmariadb3: mysqlclient; unixodbc + libltdl7: mssql-python's bundled ODBC driver.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libmariadb3 unixodbc libltdl7 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system whalefall \
 && useradd --system --gid whalefall --home-dir /app --shell /usr/sbin/nologin whalefall
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_ENV=production \
    WHALEFALL_STATIC_ROOT=/app/staticfiles
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY --chown=whalefall:whalefall . .
# Production settings refuse to load without their variables; these throwaway values
# exist only for this build step (collectstatic touches neither database nor broker).
RUN SECRET_KEY=build-only-build-only-build-only-build-only-build-only \
    DATABASE_URL=postgres://build@localhost/build \
    REDIS_URL=redis://localhost:6379/0 \
    ALLOWED_HOSTS=localhost \
    WHALEFALL_CREDENTIAL_KEYS=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= \
    python manage.py collectstatic --noinput -v0
USER whalefall
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/ready', timeout=4)"]
CMD ["gunicorn", "whalefall.wsgi:application", "--config", "deploy/gunicorn.conf.py", "--bind", "0.0.0.0:8000", "--workers", "3", "--worker-class", "gthread", "--threads", "4", "--timeout", "120", "--graceful-timeout", "30", "--max-requests", "2000", "--max-requests-jitter", "200"]
