# ccnode container image. Build: docker build -t ccnode .
# Not built in CI (no container engine there); docs/operators.md, "Containers".
#
# Two stages. The build stage turns ccnode and every dependency into wheels:
# pdqhash (0.2.8) publishes no Linux wheel, so pip compiles its C++ there,
# with the compiler only that stage has. The runtime stage installs those
# wheels offline (--no-index: nothing is compiled or fetched) and carries no
# compiler. PyAV's wheel bundles FFmpeg; no system package is needed at run time.

FROM python:3.11-slim AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends g++ \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY node ./node
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --create-home --home-dir /srv/ccnode --shell /usr/sbin/nologin ccnode
COPY --from=build /wheels /tmp/wheels
RUN pip install --no-cache-dir --no-index --find-links /tmp/wheels ccnode \
    && rm -rf /tmp/wheels \
    && chown -R ccnode:ccnode /srv/ccnode
WORKDIR /opt/ccnode
COPY deploy ./deploy

USER ccnode
VOLUME ["/srv/ccnode"]
# 7001: gRPC, mutual TLS pinned to the roster (docs/operators.md); 9464: Prometheus /metrics
EXPOSE 7001 9464
STOPSIGNAL SIGTERM
ENV PYTHONUNBUFFERED=1 CCNODE_LOG_JSON=1
HEALTHCHECK --interval=10s --timeout=6s --start-period=30s CMD ["ccnode", "health", "/srv/ccnode/node"]
ENTRYPOINT ["ccnode"]
CMD ["serve", "/srv/ccnode/node"]
