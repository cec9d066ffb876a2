# hailuo-bot container: docker build -t hailuo-bot .
#   docker run -d --name hailuo -e DISCORD_TOKEN -e RUNWARE_API_KEY -v hailuo-data:/data -p 8080:8080 \
#     -v "$PWD/config.toml:/app/config.toml:ro" hailuo-bot
# Secrets come from the environment at run time; nothing secret is baked into the image.

# --- builder: a virtualenv with the project and its dependencies -------------------------------------------
FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY cogs ./cogs
# Build the wheel (package data included: store/sqlite/migrations/*.sql, simulator/assets/*) and install it.
RUN /opt/venv/bin/pip install --upgrade pip wheel \
 && /opt/venv/bin/pip wheel --no-deps . -w /tmp/wheels \
 && /opt/venv/bin/pip install /tmp/wheels/*.whl \
 && /opt/venv/bin/hailuo-bot --help > /dev/null

# --- runtime: the virtualenv only, as a non-root user ------------------------------------------------------
FROM python:3.11-slim

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HAILUO_DATABASE__PATH=/data/hailuo-bot.sqlite3

RUN groupadd --system --gid 10001 hailuo \
 && useradd --system --uid 10001 --gid hailuo --home-dir /app --no-create-home --shell /usr/sbin/nologin hailuo \
 && mkdir -p /app /data \
 && chown hailuo:hailuo /app /data

COPY --from=builder /opt/venv /opt/venv

# config.toml is read from here (mount it); `hailuo-bot generate` writes clips/ here.
WORKDIR /app
VOLUME ["/data"]
# The webhook receiver and /healthz (webhook.listen = "0.0.0.0:8080").
EXPOSE 8080
USER hailuo

HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]

ENTRYPOINT ["hailuo-bot"]
CMD []
