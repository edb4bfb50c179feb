"""Each torch/Keras layer convention split is still there (else the parity case built to expose
it no longer tells the two apart) and names a parity case that exists."""

from __future__ import annotations

import pytest

from dualnet.parity import catalogue
from dualnet.parity.conventions import KNOWN


@pytest.mark.parametrize("convention", KNOWN, ids=[c.id for c in KNOWN])
def test_split_still_present_and_exposed_by_a_case(convention):
    off_by = convention.probe()
    assert off_by > convention.threshold, (
        f"torch's default no longer differs for {convention.what} (off by {off_by:.3g}): "
        "review the convention and its parity case"
    )
    assert convention.case in {c.id for c in catalogue.load()}
