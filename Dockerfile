# The debugcap operator's image: `docker build -t REGISTRY/debugcap/operator:0.1.0 .`, then set
# the chart's image.repository and image.tag to it.
#
# On the testbed, `make image` builds this file with buildah and pushes it to the testbed's
# registry; BASE_IMAGE is then a Debian bookworm rootfs with python3 made by mmdebstrap
# (testbed/image_build.py), since the testbed pulls nothing from the internet.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY debugcap ./debugcap
# Wheels for debugcap and every dependency, so the final stage installs offline.
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM ${BASE_IMAGE}
COPY --from=build /wheels /wheels
# Byte-code is compiled here, at install: the chart runs the container with a read-only root.
RUN pip install --no-cache-dir --no-index --find-links /wheels debugcap \
    && rm -rf /wheels \
    && useradd --uid 10001 --user-group --no-create-home --home-dir /tmp debugcap
# The chart's runAsUser/runAsGroup; /tmp (HOME, the work dir) is an emptyDir there.
USER 10001:10001
ENV HOME=/tmp PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
ENTRYPOINT ["debugcap-operator"]
