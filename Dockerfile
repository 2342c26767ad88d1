# One image for the web, worker and migrate roles (docker/entrypoint.sh picks by its first argument).
#
#   docker build -t breastapp .                       # GPU-capable TensorFlow (CUDA libraries from PyPI)
#   docker build -t breastapp --build-arg WITH_CUDA=0 . # smaller, CPU only
#
# The trained weights in models/ are baked in at /app/models; docker-compose.yml also mounts a host
# folder there read-only, so new weights can be deployed without rebuilding the image.
FROM python:3.11-slim

ARG WITH_CUDA=1

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    TF_CPP_MIN_LOG_LEVEL=2

# OpenCV's wheels still want glib at run time; nothing else comes from Debian.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libglib2.0-0 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app

# Dependencies first: this layer is rebuilt only when requirements.txt changes.
COPY requirements.txt ./
RUN pip install -r requirements.txt \
    && if [ "$WITH_CUDA" = "1" ]; then \
         pip install "tensorflow[and-cuda]==$(pip show tensorflow | sed -n 's/^Version: //p')"; \
       fi

# The code and weights belong to root and are read-only for the service account.
COPY . .
RUN useradd --system --uid 10001 --create-home --home-dir /home/breastapp breastapp \
    && mkdir -p /data/uploads /app/instance \
    && chown breastapp:breastapp /data/uploads /app/instance \
    && chmod 0755 /app/docker/entrypoint.sh

ENV BREASTAPP_ENV=production \
    BREASTAPP_MODELS_DIR=/app/models \
    BREASTAPP_UPLOAD_DIR=/data/uploads \
    PORT=8000

USER breastapp
EXPOSE 8000
VOLUME ["/data/uploads"]

ENTRYPOINT ["/app/docker/entrypoint.sh"]
CMD ["web"]
