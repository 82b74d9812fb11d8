Feature: scaleDownDelaySeconds keeps the old version running after a promotion
  The worked example of docs/library.md: after the switch, the previous ReplicaSet keeps its
  pods for scaleDownDelaySeconds (a rollback within it is instant), then is scaled down.

  Scenario: The previous ReplicaSet keeps its pods, then is scaled down
    Given a blue-green Rollout "web" on version "1.0.0" with
      | field                 | value |
      | scaleDownDelaySeconds | 5     |
    When I release version "1.1.0" of the Rollout "web"
    Then the rollout "web" becomes Paused
    When I promote "web"
    Then the rollout "web" becomes Healthy
    And the stable revision of "web" is 2
    And revisions 1 and 2 of "web" have pods
    And revision 1 of "web" is scaled down
