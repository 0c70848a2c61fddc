# One image for gateway, worker and flower (compose.yaml picks the command).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
RUN useradd --create-home --uid 10001 eventsearch
COPY pyproject.toml constraints.txt README.md ./
COPY gateway gateway
COPY workers workers
COPY common common
COPY stack stack
COPY cli cli
COPY eventsearch eventsearch
# The CPU build of torch: the default index would bring CUDA (GBs) for the local embedder.
RUN pip install --extra-index-url https://download.pytorch.org/whl/cpu -c constraints.txt .
USER eventsearch
EXPOSE 8000 5555
# The local model's ONNX export (LOCAL_RUNTIME=onnx, the default; and onnx-int8), made once at
# build from the shipped weights into the image, so no container exports at start.
ENV LOCAL_CACHE_DIR=/home/eventsearch/.cache/eventsearch
RUN python -m common.embedders.onnx_export --variant fp32 \
 && python -m common.embedders.onnx_export --variant int8
