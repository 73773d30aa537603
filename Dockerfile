# hypercorn appliance image. Users keep the default base; CI builds with a local Debian base.
ARG BASE=python:3.12-slim

# ---- build: a virtualenv with the server and its production extras
FROM ${BASE} AS build
ARG PIP_NO_INDEX=
# COMPILE=1 (the default): the HTTP/1.1 hot path compiled by mypyc (setup.py), ~1.2x the
# requests/s of the pure-Python build; --build-arg COMPILE=0 builds that instead (no compiler).
ARG COMPILE=1
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1 PIP_NO_INDEX=${PIP_NO_INDEX}
WORKDIR /src
# A C compiler for the compiled build (and Python's headers when the base lacks them). Only
# this stage has it: the runtime image below copies the virtualenv alone.
# hadolint ignore=DL3008
RUN if [ "$COMPILE" = 1 ]; then \
      headers=python3-dev; \
      python3 -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(sysconfig.get_paths()["include"] + "/Python.h"))' \
        && headers=; \
      apt-get update \
      && apt-get install -y -q --no-install-recommends gcc libc6-dev $headers \
      && rm -rf /var/lib/apt/lists/*; \
    fi
COPY pyproject.toml setup.py README.md ./
COPY src/ src/
# The compiled build: a wheel made in a throwaway virtualenv that has mypy and every import
# of the package (mypyc type-checks what it compiles), installed with the fast extras.
RUN python3 -m venv /opt/venv \
 && if [ "$COMPILE" = 1 ]; then \
      python3 -m venv /opt/build \
      && /opt/build/bin/pip install --no-cache-dir "mypy>=1.10" "setuptools>=77" wheel \
      && /opt/build/bin/pip install --no-cache-dir -e ".[fast,trio,reload]" \
      && HYPERCORN_COMPILE=1 /opt/build/bin/pip wheel --no-cache-dir --no-build-isolation \
           --no-deps -w /tmp/dist . \
      && /opt/venv/bin/pip install --no-cache-dir "$(ls /tmp/dist/hypercorn-*.whl)[fast]" \
      && /opt/venv/bin/python -c "import sys, hypercorn.__about__ as a; sys.exit(not a.compiled())"; \
    else \
      /opt/venv/bin/pip install --no-cache-dir ".[fast]"; \
    fi \
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
