# Atelier on a CUDA PyTorch base image; runs `python app.py` as a non-root user.
FROM pytorch/pytorch:2.7.1-cuda12.8-cudnn9-runtime

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    ATELIER_HOST=0.0.0.0 \
    ATELIER_PORT=7860 \
    ATELIER_DATA_DIR=/data

RUN useradd --create-home --uid 1000 atelier && mkdir -p /data && chown atelier /data
WORKDIR /app
COPY requirements.txt .
RUN pip install -r requirements.txt
COPY --chown=atelier . .

USER atelier
VOLUME /data
EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=5s CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:7860/healthz')"
CMD ["python", "app.py"]
