"""Every runbook in features/, run against the configured target (local by default)."""

import pytest
from pytest_bdd import scenarios

pytestmark = pytest.mark.cluster

scenarios("../../features")
