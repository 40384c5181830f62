# The Doorstep API:  docker build -t doorstep . && docker run -p 8000:8000 doorstep
# Configuration through DOORSTEP_* variables (see README); plans and the network cache live in
# /var/lib/doorstep (mount a volume there to keep them), as does the compiled matrix search
# (site-packages is read-only for the service's user).

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY routing ./routing
COPY service ./service
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLBACKEND=Agg \
    DOORSTEP_DATA_DIR=/var/lib/doorstep \
    NUMBA_CACHE_DIR=/var/lib/doorstep/numba-cache
RUN useradd --system --uid 10001 --user-group --home-dir /var/lib/doorstep --create-home doorstep
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER doorstep
WORKDIR /var/lib/doorstep
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4)"]
CMD ["doorstep", "serve", "--host", "0.0.0.0", "--port", "8000"]
