# lakegate image for the docker-compose stack: Dagster webserver, daemon and the runs they launch.
# Build context is the repository root (docker compose build). Configuration comes from the environment
# (see docker-compose.yml); no secret is baked into the image.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DAGSTER_HOME=/opt/dagster/home \
    LAKEGATE_HOME=/opt/lakegate \
    LAKEGATE_CONFIG=/app/lakegate.docker.yaml

WORKDIR /app

# Only what the package needs, so code edits elsewhere do not invalidate the install layer.
COPY pyproject.toml README.md ./
COPY lakegate ./lakegate
COPY connectors ./connectors
COPY transforms ./transforms
COPY zones ./zones
COPY pipelines ./pipelines
COPY dagster_project ./dagster_project
# dagster-postgres backs the instance storage of deploy/dagster.yaml; its version tracks dagster==1.13.27.
RUN pip install . "dagster-postgres==0.29.27"

COPY lakegate.docker.yaml /app/lakegate.docker.yaml
COPY deploy/dagster.yaml /opt/dagster/home/dagster.yaml

# Least privilege: the services run as an unprivileged user that owns only its state folders.
RUN useradd --create-home --uid 10001 lakegate \
    && mkdir -p /opt/dagster/home/storage /opt/lakegate \
    && chown -R lakegate:lakegate /opt/dagster/home /opt/lakegate
USER lakegate

EXPOSE 3000
CMD ["dagster-webserver", "-h", "0.0.0.0", "-p", "3000", "-m", "dagster_project.definitions"]
