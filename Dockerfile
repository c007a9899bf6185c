# The memae-tf image: the `memae` command (train, export, ...) on TensorFlow, run by
# the Jobs of serving/k8s/training/ (train) and serving/k8s/publish/ (export a new
# model version). Build from the repository root:
#
#   docker build -t memae-tf:0.2.0 .
#
# The base is pinned by its full version tag. Pin it by digest too where the build
# can check one (`docker buildx imagetools inspect python:3.11.14-slim-bookworm`
# prints it); official tags are rebuilt for Debian updates, so a digest copied from
# elsewhere cannot be trusted blindly.
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

# Build stage: the memae-tf wheel, installed with its dependencies into a virtual
# environment that the runtime stage copies whole. The build front end (setuptools,
# wheel) lives in pip's isolated build environment and stays in this stage.
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY memae_tf ./memae_tf
# `pip --python` installs into the environment without putting pip in it.
RUN python -m pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && python -m venv --without-pip /opt/memae \
    && python -m pip --python /opt/memae/bin/python install --no-cache-dir /wheels/*.whl

# Runtime stage: Python, the environment and an unprivileged user; no compiler, no
# pip cache, no sources.
FROM ${PYTHON_IMAGE}
ARG VERSION=0.2.0
LABEL org.opencontainers.image.title="memae-tf" \
      org.opencontainers.image.description="MemAE anomaly detectors on TensorFlow/Keras: train and export SavedModels for TF Serving" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11.14-slim-bookworm"
# uid/gid 1000: the runAsUser/runAsGroup of every pod that runs this image.
RUN groupadd --gid 1000 memae \
    && useradd --uid 1000 --gid 1000 --create-home --shell /usr/sbin/nologin memae \
    && install --directory --owner=1000 --group=1000 /workspace
COPY --from=build /opt/memae /opt/memae
ENV PATH=/opt/memae/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /workspace
USER 1000:1000
# The image runs batch commands (train, export) that exit when done: there is no
# long-running process whose health a HEALTHCHECK could report.
HEALTHCHECK NONE
ENTRYPOINT ["memae"]
CMD ["--help"]
