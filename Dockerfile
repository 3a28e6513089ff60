# Raccord's image: one image for the web, the workers and the scheduler (compose.yaml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app

COPY pyproject.toml README.md ./
COPY webapp ./webapp
COPY jobs ./jobs
COPY sandbox ./sandbox
RUN pip install .

COPY wsgi.py gunicorn.conf.py ./
COPY templates ./templates
COPY static ./static
COPY migrations ./migrations
# The compiled catalogues are built here, not kept in git.
RUN python -c "from webapp.i18n import compile_catalogues; compile_catalogues()"

RUN useradd --system --uid 10001 raccord && mkdir -p /app/instance && chown raccord /app/instance
USER raccord

ENV RACCORD_ENV=production FLASK_APP=wsgi
EXPOSE 8000
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--workers", "2", "--access-logfile", "-", "wsgi:app"]
