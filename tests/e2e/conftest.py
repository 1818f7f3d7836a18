"""Fixtures for end-to-end tests: a simulator and a pipeline wired to the test's own topics/schema."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Topics
from tests.e2e.pipeline import Pipeline, pipeline_env

SHARED_DATA = Path(__file__).resolve().parents[3] / "shared" / "data"


@pytest.fixture
def pipeline(
    kafka_bootstrap: str, db_url: str, topics: Topics, consumer_group: str, tmp_path: Path
) -> Iterator[Callable[[Any], Pipeline]]:
    """Wire a pipeline (not yet started) to a simulator; its processes are stopped at the end."""
    made: list[Pipeline] = []

    def make(sim: Any) -> Pipeline:
        env = pipeline_env(kafka_bootstrap, db_url, topics.env(), consumer_group, sim)
        pipe = Pipeline(env=env, db_url=db_url, log_dir=tmp_path)
        made.append(pipe)
        return pipe

    yield make
    for pipe in made:
        pipe.close()
