# hypercorn appliance image. Users keep the default base; CI builds with a local Debian base.
ARG BASE=python:3.12-slim

# ---- build: a virtualenv with the server and its production extras
FROM ${BASE} AS build
ARG PIP_NO_INDEX=
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_NO_INDEX=${PIP_NO_INDEX}
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src/ src/
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir ".[fast]" \
 && /opt/venv/bin/python -m compileall -q /opt/venv

# ---- runtime: slim, non-root, read-only friendly
FROM ${BASE}
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HYPERCORN_CONFIG=/etc/hypercorn/hypercorn.toml \
    HYPERCORN_APP=app:app
COPY --from=build /opt/venv /opt/venv
COPY config/hypercorn.toml /etc/hypercorn/hypercorn.toml
COPY docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
# The demo app; mount your own code on /app (`docker run -v myapp:/app ...`) to replace it.
# /app is owned by the numeric non-root user and group 0, so arbitrary UIDs (OpenShift) work.
COPY --chown=10001:0 app/ /app/
RUN mkdir -p /certs && chmod -R g=u /app
USER 10001:0
WORKDIR /app
EXPOSE 8000/tcp 8443/tcp 8443/udp 9000/tcp
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["hypercorn", "--healthcheck"]
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["hypercorn"]
