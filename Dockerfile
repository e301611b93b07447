# feedgate: the gateway on its embedded SQLite store, the database on a volume.
#   docker build -t feedgate .
#   docker run -p 8787:8787 -v feedgate-data:/data -e FEEDGATE_API_KEYS=change-me feedgate
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FEEDGATE_DATABASE_URL=sqlite:////data/feedgate.db

WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
COPY config ./config
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --home-dir /data feedgate \
    && mkdir -p /data && chown feedgate /data

USER feedgate
VOLUME ["/data"]
EXPOSE 8787
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8787/healthz')"
# In a container the published port is the boundary; set FEEDGATE_API_KEYS to require keys. Without keys
# the gateway logs a warning that it is open.
ENV FEEDGATE_SERVER_ALLOW_OPEN_BIND=true
ENTRYPOINT ["feedgate"]
CMD ["serve", "--host", "0.0.0.0"]
