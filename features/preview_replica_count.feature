Feature: previewReplicaCount runs the preview small and scales it up before the switch
  The preview ReplicaSet runs previewReplicaCount pods while the release waits; promote scales it
  to the full count first (scaleUpPreviewCheckPoint) and only then switches active, so users
  never reach a ReplicaSet smaller than the one they left.

  Scenario: The preview runs one pod; promote scales it to two before the switch
    Given a blue-green Rollout "web" on version "1.0.0" with
      | field               | value |
      | previewReplicaCount | 1     |
    When I release version "1.1.0" of the Rollout "web"
    Then the rollout "web" becomes Paused
    And revision 2 of "web" has 1 ready pod
    And revision 1 of "web" has 2 ready pods
    When I promote "web"
    Then the active Service of "web" switches to revision 2 at full size
    And the rollout "web" becomes Healthy
    And revision 2 of "web" has 2 ready pods
