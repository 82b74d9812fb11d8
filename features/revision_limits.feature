Feature: scaleDownDelayRevisionLimit and revisionHistoryLimit over three releases
  scaleDownDelayRevisionLimit caps how many old ReplicaSets stay scaled up during
  scaleDownDelaySeconds (older ones are scaled down at once); revisionHistoryLimit caps how many
  old ReplicaSets are kept at all. The third release is 1.0.0 with a greeting: a new pod template, so a
  new ReplicaSet rather than revision 1's taken up again.

  Scenario: Three releases keep one old ReplicaSet running and two in the history
    Given a blue-green Rollout "web" on version "1.0.0" with
      | field                       | value |
      | scaleDownDelaySeconds       | 600   |
      | scaleDownDelayRevisionLimit | 1     |
      | revisionHistoryLimit        | 2     |
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
    And the revision history of "web" shows versions "1.1.0", "1.2.0", "1.0.0"
