"""The fault suite (issue 10): real local servers, real `monitor run` processes, kill -9 included.

Every daemon here loads one sentiment model built once for the session (building the default model
takes seconds; loading it, a fraction of one)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def model_file(tmp_path_factory) -> Path:
    from nlp.train import default_model

    return default_model(tmp_path_factory.mktemp("model"))[1]
