@analysis
Feature: A failing postPromotionAnalysis puts active back on the previous ReplicaSet
  After a promotion the active Service is on the new ReplicaSet while the post-promotion analysis
  runs, and the new ReplicaSet is not stable yet. With postPromotionAnalysis and no
  scaleDownDelaySeconds the controller keeps the previous ReplicaSet scaled up until that
  analysis is Successful (rollout/bluegreen.go scaleDownOldReplicaSetsForBlueGreen). A Failed run
  aborts the update: active goes back to the stable ReplicaSet, still running, preview stays on
  the new one, the Rollout is Degraded (upstream's e2e TestBlueGreenPostPromotionFail). The
  analysis here fails by construction, as upstream's fails with a job that exits 1.

  Scenario: A failed post-promotion analysis sends active back to the old pods, still running
    Given a blue-green Rollout "web" on version "1.0.0" with
      | field                 | value |
      | postPromotionAnalysis | fails |
    When I release version "1.1.0" of the Rollout "web"
    Then the rollout "web" becomes Paused
    When I promote "web"
    Then the active Service of "web" switches to revision 2 at full size
    And the stable revision of "web" is 1
    And revision 1 of "web" has 2 ready pods
    And the rollout "web" becomes Degraded
    And the post-promotion analysis of "web" is Failed
    And the rollout "web" has revision 1 on active and 2 on preview
    And the stable revision of "web" is 1
    And revision 1 of "web" has 2 ready pods
