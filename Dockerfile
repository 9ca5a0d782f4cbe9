# debugtrace server / worker image.
#
#   docker build -t debugtrace .                                   # from PyPI, FROM python:3.11-slim
#   docker build --build-arg BASE=debugtrace-base:bookworm -t debugtrace .   # no registry needed
#
# Offline: put wheels for Python 3.11 in ./wheels (the dependencies of the chosen extras plus
# hatchling, see docs/deploy.md); when ./wheels holds any *.whl, pip never touches an index.
# Works with the classic builder and with BuildKit.

ARG BASE=python:3.11-slim

# ---------------------------------------------------------------------------------------------
# build: a self-contained venv in /opt/venv (dependencies first, so source edits reuse that layer)
FROM ${BASE} AS build
# extras of the project to install (comma-separated; "all" works too)
ARG EXTRAS=server,postgres
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /build
# pyproject.toml always exists, so the wildcard may match nothing: ./wheels is optional
COPY pyproject.toml wheel[s] /build/
# The dependency list, read from pyproject.toml (self-references, debugtrace-collector[...], expanded)
# and the build backend, installed apart in /opt/tools (it never reaches the runtime image).
RUN python3 -m venv /opt/venv \
 && python3 -c 'import re, sys, tomllib; \
p = tomllib.load(open("pyproject.toml", "rb"))["project"]; \
opt, self_ref = p.get("optional-dependencies", {}), re.escape(p["name"]) + r"\[(.*)\]"; \
one = lambda r: extras(re.fullmatch(self_ref, r).group(1)) if re.fullmatch(self_ref, r) else [r]; \
extras = lambda es: [x for e in es.split(",") if e.strip() for r in opt[e.strip()] for x in one(r.strip())]; \
print("\n".join(dict.fromkeys(p["dependencies"] + extras(sys.argv[1]))))' "$EXTRAS" >requirements.txt \
 && python3 -c 'import tomllib; \
print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))' \
    >build-requirements.txt \
 && if ls /build/*.whl >/dev/null 2>&1; then \
        echo "offline build: $(ls /build/*.whl | wc -l) wheels" \
        && echo "--no-index --find-links /build" >/build/pip.args; \
    else echo "online build: PyPI" && : >/build/pip.args; fi \
 && /opt/venv/bin/pip install $(cat /build/pip.args) -r requirements.txt \
 && python3 -m venv /opt/tools \
 && /opt/tools/bin/pip install $(cat /build/pip.args) -r build-requirements.txt

COPY README.md /build/
COPY src/ /build/src/
COPY plugins/ /build/plugins/
# plugin distributions under plugins/ to install too, space-separated, e.g.
# "debugtrace-celery" (the celery executor; its dependencies come from the index or ./wheels)
ARG PLUGINS=
# the build backend (hatchling) lives in /opt/tools, so this step needs no build env
RUN /opt/tools/bin/pip wheel --no-build-isolation --no-deps --wheel-dir /dist /build \
 && for plugin in $PLUGINS; do \
        /opt/tools/bin/pip wheel --no-build-isolation --no-deps --wheel-dir /dist \
            "/build/plugins/$plugin" || exit 1; \
    done \
 && /opt/venv/bin/pip install $(cat /build/pip.args) --find-links /dist /dist/*.whl \
 && /opt/venv/bin/pip check \
 && /opt/venv/bin/pip uninstall -y -q pip setuptools

# ---------------------------------------------------------------------------------------------
# runtime: the base, git, an unprivileged user and the venv
FROM ${BASE}
# git: finalize clones the repositories it validates (the Debian base image has it already)
RUN if ! command -v git >/dev/null 2>&1; then \
        apt-get update -qq \
        && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            git ca-certificates \
        && rm -rf /var/lib/apt/lists/*; \
    fi \
 && groupadd --gid 10001 debugtrace \
 && useradd --uid 10001 --gid debugtrace --home-dir /home/debugtrace --create-home \
        --shell /usr/sbin/nologin debugtrace \
 && mkdir -p /var/lib/debugtrace \
 && chown debugtrace:debugtrace /var/lib/debugtrace

COPY --from=build /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    VIRTUAL_ENV=/opt/venv \
    LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DEBUGTRACE_DATA_DIR=/var/lib/debugtrace

USER debugtrace:debugtrace
WORKDIR /home/debugtrace
EXPOSE 8000
# python instead of curl: the image has no curl. The worker service overrides this (compose.yaml).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status != 200)"]

ENTRYPOINT ["debugtrace"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
