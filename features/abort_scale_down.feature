Feature: abortScaleDownDelaySeconds decides when an aborted preview is scaled down
  After an abort, active goes back to the stable ReplicaSet and the preview keeps running for
  abortScaleDownDelaySeconds (default 30); 0 keeps it running until the next release
  (rollout/replicaset.go, utils/defaults GetAbortScaleDownDelaySecondsOrDefault).

  Scenario: An aborted preview is scaled down once abortScaleDownDelaySeconds pass
    Given a blue-green Rollout "web" on version "1.0.0" with
      | field                      | value |
      | abortScaleDownDelaySeconds | 3     |
    When I release version "1.1.0" of the Rollout "web"
    Then the rollout "web" becomes Paused
    When I abort "web"
    Then revision 2 of "web" is scaled down once its abortScaleDownDelaySeconds pass
    And the active Service of "web" stays on revision 1
    And revision 1 of "web" has 2 ready pods

  Scenario: abortScaleDownDelaySeconds 0 keeps the aborted preview running
    Given a blue-green Rollout "web" on version "1.0.0" with
      | field                      | value |
      | abortScaleDownDelaySeconds | 0     |
    When I release version "1.1.0" of the Rollout "web"
    Then the rollout "web" becomes Paused
    When I abort "web"
    Then the rollout "web" becomes Degraded
    And revision 2 of "web" is never scaled down
    And revision 2 of "web" has 2 ready pods

  @slow
  Scenario: By default an aborted preview is scaled down after 30 seconds
    Given a blue-green Rollout "web" on version "1.0.0" with
      | field    | value |
      | replicas | 2     |
    When I release version "1.1.0" of the Rollout "web"
    Then the rollout "web" becomes Paused
    When I abort "web"
    Then revision 2 of "web" is scaled down once its abortScaleDownDelaySeconds pass
