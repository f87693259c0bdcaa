"""Every test starts the automatic layer names again (``dense``, ``lstm``, ...), as a fresh
Keras session does, so that tests may rely on them."""

import pytest

from rnnkit.keras import backend


@pytest.fixture(autouse=True)
def _fresh_names():
    backend.clear_session()
    yield
