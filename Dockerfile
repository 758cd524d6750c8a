# ccnode container image. Build: docker build -t ccnode .
# Not built in CI (no container engine there); docs/operators.md, "Containers".
FROM python:3.11-slim

RUN useradd --system --create-home --home-dir /srv/ccnode --shell /usr/sbin/nologin ccnode
WORKDIR /opt/ccnode
COPY pyproject.toml README.md ./
COPY node ./node
COPY deploy ./deploy
RUN pip install --no-cache-dir . && chown -R ccnode:ccnode /srv/ccnode

USER ccnode
VOLUME ["/srv/ccnode"]
# 7001: gRPC (loopback-only until mutual TLS lands); 9464: Prometheus /metrics
EXPOSE 7001 9464
STOPSIGNAL SIGTERM
ENV PYTHONUNBUFFERED=1 CCNODE_LOG_JSON=1
HEALTHCHECK --interval=10s --timeout=6s --start-period=30s CMD ["ccnode", "health", "/srv/ccnode/node"]
ENTRYPOINT ["ccnode"]
CMD ["serve", "/srv/ccnode/node"]
