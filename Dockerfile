# Ferry: Errbot with the Ferry plugins, as a non-root user. Settings come from the environment
# (see README: GITOPS_CONFIG, SLACK_BOT_TOKEN, SLACK_APP_TOKEN, FERRY_ADMINS, GITOPS_GIT_*).
# The base image pinned by digest (the tag moves when Docker rebuilds it); update both together.
FROM python:3.11.10-slim-bookworm@sha256:840e180ebcc6e5c8efab209c43f5e40fd2af98cb49db5c7103c90539c56bb30e

# git for the Flux repository, ssh for git@ remotes; nothing else.
RUN apt-get update \
 && apt-get install -y --no-install-recommends git openssh-client gnupg ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 --shell /usr/sbin/nologin ferry

WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir --disable-pip-version-check -r requirements.txt
COPY config.py ./
COPY backends/ backends/
COPY plugins/ plugins/
COPY storage/ storage/
# `ferry check`: the settings and every connection they name, tried (docker run … ferry check)
COPY bin/ bin/
COPY slack-app-manifest.yaml ./
RUN ln -s /app/bin/ferry /usr/local/bin/ferry

# FERRY_WEBSERVER_PORT opens Ferry's bounded webserver at start: Flux posts its events to /flux/<env>,
# the health check asks /ferry/health. MALLOC_ARENA_MAX: glibc gives each of Errbot's worker threads
# a memory pool of its own that the others never reuse (at 10,000 apps, 100 deploys at once left
# the bot at 421 MB with them, 321 MB with two).
ENV FERRY_DATA_DIR=/data \
    GITOPS_DATA_DIR=/data/gitops \
    FERRY_WEBSERVER_PORT=3141 \
    MALLOC_ARENA_MAX=2 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN mkdir -p /data && chown ferry:ferry /data
VOLUME ["/data"]
EXPOSE 3141
USER 10001:10001
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/ferry/health' % os.environ.get('FERRY_WEBSERVER_PORT', '3141'), timeout=4)"]
CMD ["errbot", "--config", "/app/config.py"]
