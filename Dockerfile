# One image for both stages (and the query API); the service's command picks the entry point.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY binance_pipeline ./binance_pipeline
COPY binance_launcher ./binance_launcher
COPY exchange_sim ./exchange_sim
COPY ingestion ./ingestion
COPY consumer ./consumer
COPY db ./db
RUN pip install --no-cache-dir . \
 && useradd --system --uid 10001 pipeline
USER pipeline
CMD ["python", "-m", "ingestion.ws_consumer"]
