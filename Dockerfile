# One image for both stages, the query API and the dashboard (the `dashboard` extra: Streamlit,
# Plotly); the service's command picks the entry point.
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
COPY dashboard ./dashboard
RUN pip install --no-cache-dir ".[dashboard]" \
 && useradd --system --create-home --uid 10001 pipeline
USER pipeline
CMD ["python", "-m", "ingestion.ws_consumer"]
