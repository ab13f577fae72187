# syntax=docker/dockerfile:1
# The Baton operator image: `baton operator` as a non-root user on a read-only root filesystem.
#   docker build -t baton-operator:dev .          (docs/install.md; linted by `make lint`)
# Dependencies are installed exactly as uv.lock pins them (`uv sync --locked`); the build stage
# holds uv and the build backend, the runtime stage only the virtual environment.

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9

FROM ${UV_IMAGE} AS uv

FROM ${PYTHON_IMAGE} AS build
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/baton
WORKDIR /src
# Dependencies first: this layer is rebuilt only when the lock file changes. The workspace
# member's pyproject.toml is there only for uv to check the lock; it is not installed.
COPY pyproject.toml uv.lock README.md ./
COPY activities/pyproject.toml ./activities/
RUN uv sync --locked --no-dev --no-install-project
COPY operator ./operator
RUN uv sync --locked --no-dev --no-editable

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="baton-operator" \
      org.opencontainers.image.description="Durable workflows as Kubernetes resources: the operator" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /opt/baton /opt/baton
ENV PATH=/opt/baton/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# 65532: the conventional "nonroot" uid; the chart runs it with readOnlyRootFilesystem and an
# emptyDir on /tmp.
USER 65532:65532
WORKDIR /tmp
# 8080: kopf's liveness endpoint (/healthz) for the probes; 9090: Prometheus /metrics.
EXPOSE 8080 9090
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
ENTRYPOINT ["baton", "operator"]
CMD ["--liveness=http://0.0.0.0:8080/healthz"]
