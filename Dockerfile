# The onewindow image of docker-compose.yml: the API (`onewindow serve`), the worker and the one-shot
# commands (`onewindow db upgrade`, `onewindow deploy`). Configuration: ONEWINDOW_* variables at run time.
FROM node:20-slim AS frontend
WORKDIR /pages
COPY api/pages/package.json api/pages/package-lock.json ./
RUN npm ci --no-audit --no-fund --omit=dev

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY api ./api
COPY engine ./engine
COPY forms ./forms
COPY licence ./licence
COPY processes ./processes
COPY bench ./bench
# the pages serve the npm packages from api/pages/node_modules: an editable install keeps that path
COPY --from=frontend /pages/node_modules ./api/pages/node_modules
RUN pip install -e . \
    && useradd --system --uid 10001 --no-create-home --home-dir /app onewindow \
    && mkdir -p /data/uploads \
    && chown onewindow /data/uploads

USER onewindow
ENV ONEWINDOW_UPLOAD_DIR=/data/uploads
EXPOSE 8000
CMD ["onewindow", "serve", "--host", "0.0.0.0", "--port", "8000"]
