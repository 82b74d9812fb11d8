"""Analysis: metric checks over Prometheus, the preview-vs-active judge, reports, the Rollouts
web provider and the gate CLI. It stands alone: nothing here imports ``harness`` or pytest.
"""
