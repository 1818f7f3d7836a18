"""Pieces shared by every stage: settings, the Kafka event contract, health/metrics, backoff."""
