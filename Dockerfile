# The debugcap operator's image: `docker build -t REGISTRY/debugcap/operator:0.1.0 .`, then set
# the chart's image.repository and image.tag to it.
#
# This repository's own tests do not build it: their machine has no container engine and
# pulls from no registry, so the testbed runs `debugcap-operator` on the host instead.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY debugcap ./debugcap
# Wheels for debugcap and every dependency, so the final stage installs offline.
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
COPY --from=build /wheels /wheels
# Byte-code is compiled here, at install: the chart runs the container with a read-only root.
RUN pip install --no-cache-dir --no-index --find-links /wheels debugcap \
    && rm -rf /wheels \
    && useradd --uid 10001 --user-group --no-create-home --home-dir /tmp debugcap
# The chart's runAsUser/runAsGroup; /tmp (HOME, the work dir) is an emptyDir there.
USER 10001:10001
ENV HOME=/tmp PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
ENTRYPOINT ["debugcap-operator"]
