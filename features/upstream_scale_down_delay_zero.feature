@upstream @argo_rollouts_1992
Feature: scaleDownDelaySeconds 0 scales the previous ReplicaSet down at once (argoproj/argo-rollouts#1992)
  Upstream issue 1992, open: with scaleDownDelaySeconds 0 the previous ReplicaSet keeps running
  after the switch. The controller's scaleDownDelayHelper keeps an old ReplicaSet without a
  scale-down deadline at its size and addScaleDownDelay writes no deadline for a delay of 0, so
  the ReplicaSet is kept on every reconcile (rollout/replicaset.go, v1.9.3 and v1.10.2 alike).
  Expected: the previous ReplicaSet is scaled down right after the switch. A strict expected
  failure on every release so far; it passes once upstream fixes it.

  Scenario: With scaleDownDelaySeconds 0 the previous ReplicaSet is scaled down after the switch
    Given a blue-green Rollout "web" on version "1.0.0" with
      | field                 | value |
      | scaleDownDelaySeconds | 0     |
    When I release version "1.1.0" of the Rollout "web"
    Then the rollout "web" becomes Paused
    When I promote "web"
    Then the rollout "web" becomes Healthy
    And the stable revision of "web" is 2
    And revision 1 of "web" is scaled down
