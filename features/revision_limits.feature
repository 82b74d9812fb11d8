Feature: scaleDownDelayRevisionLimit and revisionHistoryLimit over three releases
  scaleDownDelayRevisionLimit caps how many old ReplicaSets stay scaled up during
  scaleDownDelaySeconds, newest first; older ones are scaled down at once (rollout/bluegreen.go
  scaleDownOldReplicaSetsForBlueGreen). revisionHistoryLimit caps how many old ReplicaSets are
  kept at all: beyond it the oldest by creation time are deleted once scaled to 0 (rollout/sync.go
  reconcileRevisionHistoryLimit). The third release is 1.0.0 with a greeting: a new pod template,
  so a new ReplicaSet rather than revision 1's taken up again.

  Scenario: Three releases keep only the newest old ReplicaSet running
    Given a blue-green Rollout "web" on version "1.0.0" with
      | field                       | value |
      | scaleDownDelaySeconds       | 600   |
      | scaleDownDelayRevisionLimit | 1     |
    When I release version "1.1.0" of the Rollout "web"
    Then the rollout "web" becomes Paused
    When I promote "web"
    Then the rollout "web" becomes Healthy
    When I release version "1.2.0" of the Rollout "web"
    Then the rollout "web" becomes Paused
    When I promote "web"
    Then the rollout "web" becomes Healthy
    When I release version "1.0.0" of the Rollout "web" with the greeting "Season's greetings"
    Then the rollout "web" becomes Paused
    When I promote "web"
    Then the rollout "web" becomes Healthy
    And revision 2 of "web" is scaled down
    And revisions 3 and 4 of "web" have pods

  Scenario: Three releases keep one old ReplicaSet in the history
    Old ReplicaSets are scaled down at once (scaleDownDelayRevisionLimit 0), so every one past
    the limit can be deleted; which one is kept depends on creation times, which the releases
    here share to the second, so only how many is checked.

    Given a blue-green Rollout "web" on version "1.0.0" with
      | field                       | value |
      | scaleDownDelayRevisionLimit | 0     |
      | revisionHistoryLimit        | 1     |
    When I release version "1.1.0" of the Rollout "web"
    Then the rollout "web" becomes Paused
    When I promote "web"
    Then the rollout "web" becomes Healthy
    When I release version "1.2.0" of the Rollout "web"
    Then the rollout "web" becomes Paused
    When I promote "web"
    Then the rollout "web" becomes Healthy
    When I release version "1.0.0" of the Rollout "web" with the greeting "Season's greetings"
    Then the rollout "web" becomes Paused
    When I promote "web"
    Then the rollout "web" becomes Healthy
    And the revision history of "web" holds 2 ReplicaSets, the newest on version "1.0.0"
