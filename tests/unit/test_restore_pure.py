"""What counts as settled, what a refusal says, and the record kept in the Lease (pure parts of
harness/restore.py and harness/lease.py)."""

from __future__ import annotations

import dataclasses
import datetime

from harness.lease import holder_from
from harness.restore import RolloutRecord, Snapshot, refuse_unsettled, unsettled

SETTLED = RolloutRecord(
    name="service-b",
    revision=3,
    current_hash="6c4b",
    stable_hash="6c4b",
    stable_revision=3,
    active_service="service-b",
    preview_service="service-b-preview",
    active_hash="6c4b",
    preview_hash="6c4b",
    images={"service-b": "ghcr.io/bluegreen-harness/service-b:1.0.0"},
    paused=False,
    aborted=False,
    phase="Healthy",
    message="",
    strategy='{"blueGreen":{"activeService":"service-b"}}',
)


def test_a_healthy_rollout_on_its_stable_replica_set_is_settled() -> None:
    assert unsettled(Snapshot("demo", (SETTLED,))) == []


def test_a_release_waiting_on_preview_is_named_with_promote_and_the_way_back() -> None:
    pending = dataclasses.replace(
        SETTLED,
        revision=4,
        current_hash="7d9f",
        preview_hash="7d9f",
        phase="Paused",
        message="BlueGreenPause",
    )
    snapshot = Snapshot("demo", (pending, dataclasses.replace(SETTLED, name="service-c")))
    error = refuse_unsettled(snapshot, unsettled(snapshot))
    text = str(error)
    assert [p.record.name for p in error.pending] == ["service-b"]
    assert 'namespace "demo" is not settled (service-b)' in text
    assert "kubectl argo rollouts promote service-b -n demo" in text
    assert "kubectl argo rollouts undo service-b --to-revision=3 -n demo" in text
    assert "service-c" not in text


def test_an_aborted_release_offers_undo_and_retry_never_promote() -> None:
    aborted = dataclasses.replace(
        SETTLED, current_hash="7d9f", preview_hash="7d9f", phase="Degraded", aborted=True
    )
    (item,) = unsettled(Snapshot("demo", (aborted,)))
    assert not any("promote" in command for command in item.commands)
    assert any("retry rollout service-b" in command for command in item.commands)


def test_a_progressing_rollout_is_waited_for_not_changed() -> None:
    progressing = dataclasses.replace(SETTLED, phase="Progressing", active_hash="")
    (item,) = unsettled(Snapshot("demo", (progressing,)))
    assert item.commands == (
        "kubectl argo rollouts status service-b -n demo --watch   (wait for it to finish)",
    )


def test_a_snapshot_survives_the_lease_annotation_round_trip() -> None:
    snapshot = Snapshot("demo", (SETTLED,), {"service-b": '{"hosts":["service-b"]}'})
    assert Snapshot.from_json(snapshot.to_json()) == snapshot
    assert snapshot.first_revisions == {"service-b": 3}


def test_a_lease_not_renewed_within_its_duration_has_no_time_left() -> None:
    lease = {
        "metadata": {"resourceVersion": "7", "annotations": {"bgh.dev/recorded": "{}"}},
        "spec": {
            "holderIdentity": "ci@runner pid 12",
            "leaseDurationSeconds": 60,
            "renewTime": "2026-12-03T10:00:00.000000Z",
            "acquireTime": "2026-12-03T09:59:00.000000Z",
        },
    }
    holder = holder_from(lease)
    at = datetime.datetime(2026, 12, 3, 10, 0, 45, tzinfo=datetime.UTC)
    assert holder.seconds_left(at) == 15
    assert holder.seconds_left(at + datetime.timedelta(seconds=30)) == 0
    assert holder.recorded == "{}"
    assert (
        holder.describe(at)
        == '"ci@runner pid 12" (acquired 09:59:00Z, renewed 45s ago, expires in 15s)'
    )
