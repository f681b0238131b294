# Ferry: Errbot with the Ferry plugins, as a non-root user. Settings come from the environment
# (see README: GITOPS_CONFIG, SLACK_BOT_TOKEN, SLACK_APP_TOKEN, FERRY_ADMINS, GITOPS_GIT_*).
FROM python:3.11.10-slim-bookworm

# git for the Flux repository, ssh for git@ remotes; nothing else.
RUN apt-get update \
 && apt-get install -y --no-install-recommends git openssh-client ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --create-home --uid 10001 --shell /usr/sbin/nologin ferry

WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir --disable-pip-version-check -r requirements.txt
COPY config.py ./
COPY plugins/ plugins/

ENV FERRY_DATA_DIR=/data \
    GITOPS_DATA_DIR=/data/gitops \
    PYTHONUNBUFFERED=1
RUN mkdir -p /data && chown ferry:ferry /data
VOLUME ["/data"]
# Errbot's Webserver, once configured (see README): Flux posts its events to /flux/<env>
EXPOSE 3141
USER ferry
CMD ["errbot", "--config", "/app/config.py"]
