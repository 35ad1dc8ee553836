# syntax=docker/dockerfile:1
# feedsvc: build a virtualenv from the lock, then copy it into a slim runtime image.

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/feedsvc
WORKDIR /src
COPY requirements.lock ./
# Hash-checked: every file must match the lock. --no-deps: the lock is the whole set.
RUN /opt/feedsvc/bin/pip install --require-hashes --no-deps -r requirements.lock
COPY pyproject.toml README.md ./
COPY feedsvc ./feedsvc
RUN /opt/feedsvc/bin/pip install --no-deps .

FROM python:3.11-slim
RUN groupadd --system --gid 10001 feedsvc \
 && useradd --system --uid 10001 --gid feedsvc --home-dir /srv/feedsvc --no-create-home feedsvc
COPY --from=build /opt/feedsvc /opt/feedsvc
WORKDIR /srv/feedsvc
# The sample data (for `feedsvc demo`) and the media folder; the SQLite file lives here too.
COPY --chown=feedsvc:feedsvc data ./data
ENV PATH=/opt/feedsvc/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    FEEDSVC_DATABASE_URL=sqlite:////srv/feedsvc/data/feedsvc.db \
    FEEDSVC_MEDIA_DIR=/srv/feedsvc/data/media \
    FEEDSVC_HOST=0.0.0.0 \
    FEEDSVC_PORT=8000 \
    FEEDSVC_LOG_FORMAT=json
VOLUME ["/srv/feedsvc/data"]
USER feedsvc
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import os,sys,urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('FEEDSVC_PORT', '8000'), timeout=4).status == 200 else 1)"]
ENTRYPOINT ["feedsvc", "serve"]
