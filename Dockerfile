# Atelier on a CUDA PyTorch base image, as a non-root user. One image for every role:
#   docker run -p 7860:7860 atelier                                  # everything in one process (python app.py)
#   docker run -e ATELIER_WEB_ONLY=1 ... atelier                     # a web front end only
#   docker run --gpus all ... atelier python -m queueing.worker      # a GPU worker (the command replaces CMD)
#   docker run ... atelier python -m storage.migrate                 # upgrade the database schema
# deploy/compose.yaml wires them to Redis, PostgreSQL and MinIO.
FROM pytorch/pytorch:2.7.1-cuda12.8-cudnn9-runtime

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    ATELIER_HOST=0.0.0.0 \
    ATELIER_PORT=7860 \
    ATELIER_DATA_DIR=/data \
    HF_HOME=/data/huggingface

RUN useradd --create-home --uid 1000 atelier && mkdir -p /data && chown atelier /data
WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY --chown=atelier . .

USER atelier
VOLUME /data
EXPOSE 7860
# The web role's check; a worker serves no HTTP here, so deploy/compose.yaml turns it off there.
HEALTHCHECK --interval=30s --timeout=5s --start-period=120s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:7860/healthz')"
CMD ["python", "app.py"]
