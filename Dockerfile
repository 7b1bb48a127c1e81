# syntax=docker/dockerfile:1.7
# One image for the five services; the command picks the service and what it does:
#   docker run IMAGE orders serve          docker run IMAGE kpi migrate
#   docker run IMAGE orders create-operator --client-id ops-1
# Console scripts: orders, consultation-routing, sla-timer, kpi, notifier, console (each has
# `serve`, `migrate` and `provision-topics`; orders adds create-operator, seed-demo, purge;
# kpi adds replay).
# Built from the one lock file (uv.lock) with `uv sync --frozen`: the image holds exactly
# the versions the tests ran with. deploy/README.md describes how to run it.

# The Python the tests run on (requires-python >= 3.11) and the uv of the Makefile.
ARG PYTHON_VERSION=3.11
ARG UV_VERSION=0.13.9

FROM ghcr.io/astral-sh/uv:${UV_VERSION} AS uv

# ---------------------------------------------------------------- builder
FROM python:${PYTHON_VERSION}-slim-bookworm AS builder
COPY --from=uv /uv /usr/local/bin/uv
# Compiled bytecode in the image (no writes at start); copy, not hard-link, out of the
# cache mount; never download another Python: the base image's is the one.
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/venv
# The five services and the shared library, not the root project's own dependencies
# (the embedded development broker) nor the dev group (tests).
ARG PACKAGES="--package orders --package consultation-routing --package sla-timer --package kpi --package notifier --package console"
WORKDIR /src

# 1. Third-party dependencies only: this layer changes only with uv.lock.
COPY pyproject.toml uv.lock ./
COPY shared/pyproject.toml shared/
COPY services/orders/pyproject.toml services/orders/
COPY services/consultation-routing/pyproject.toml services/consultation-routing/
COPY services/sla-timer/pyproject.toml services/sla-timer/
COPY services/kpi/pyproject.toml services/kpi/
COPY services/notifier/pyproject.toml services/notifier/
COPY services/console/pyproject.toml services/console/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace ${PACKAGES}

# 2. The workspace members, installed non-editable: the virtual environment alone is the
#    application (their migrations travel inside the packages).
COPY shared/ shared/
COPY services/ services/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable ${PACKAGES}

# ---------------------------------------------------------------- runtime
# Same base as the builder (the venv's interpreter links to it); no uv, no compiler,
# no source tree: only the virtual environment.
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
ARG APP_UID=10001
RUN groupadd --system --gid ${APP_UID} aftersales \
 && useradd --system --uid ${APP_UID} --gid aftersales --home-dir /var/lib/aftersales \
            --shell /usr/sbin/nologin aftersales \
 && mkdir -p /var/lib/aftersales \
 && chown aftersales:aftersales /var/lib/aftersales
COPY --from=builder /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# The data directory (DATA_DIR): the only place a service writes (the routing journal,
# orders' attachments while they live on disk). Mount a volume here; the root filesystem
# can stay read-only. A new named volume takes this directory's owner (the app user).
WORKDIR /var/lib/aftersales
# Numeric user: Kubernetes' runAsNonRoot can check it without resolving a name.
USER ${APP_UID}:${APP_UID}
# Service ports 8101–8106 (orders, consultation-routing, sla-timer, kpi, notifier, console) and the
# operations listener for Prometheus (METRICS_PORT, 9100 in deploy/).
EXPOSE 8101 8102 8103 8104 8105 8106 9100
# Stops on SIGTERM (uvicorn), bounded (see the README's "Stopping takes bounded time").
STOPSIGNAL SIGTERM
CMD ["orders", "--help"]
