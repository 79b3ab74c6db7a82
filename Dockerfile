# The workbench in a container: `podman build -t rq-workbench .` (or docker). See compose.yaml.
#
# Slim by construction: a Python base image, the project and its dependencies in one venv, no
# compiler or pip left behind, a non-root user. Every dependency ships as a wheel (hiredis and psutil
# included), so nothing is compiled. With a `wheels/` folder in the build context (`pip wheel . -w
# wheels`: the project's wheel and every dependency's) the install is offline, as in `make
# test-container`; without one, pip builds the project and fetches from the package index.
# BASE_IMAGE: any Debian-based image with python3 (3.11+) and its venv module; `make
# test-container` builds one from Debian packages with mmdebstrap, as registries are unreachable there.
ARG BASE_IMAGE=docker.io/library/python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
LABEL org.rq-workbench.stage=build
COPY . /src
RUN python3 -m venv /opt/workbench \
 && if [ -d /src/wheels ]; then set -- --no-index --find-links /src/wheels rq-workbench; else set -- /src; fi \
 && /opt/workbench/bin/pip install --no-cache-dir --disable-pip-version-check --quiet "$@" \
 && /opt/workbench/bin/pip uninstall --yes --quiet pip setuptools \
 && install -m 0755 /src/container/entrypoint.sh /src/container/broker.sh /opt/workbench/bin/ \
 && find /opt/workbench -name __pycache__ -prune -exec rm -rf {} +

FROM ${BASE_IMAGE}
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin workbench \
 && install -d -o workbench -g workbench -m 0750 /data
COPY --from=build /opt/workbench /opt/workbench
ENV PATH=/opt/workbench/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    WORKBENCH_DATA_DIR=/data
USER workbench
WORKDIR /home/workbench
ENTRYPOINT ["entrypoint.sh"]
CMD ["workbench-consumer", "--help"]
