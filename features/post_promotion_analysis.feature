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

  # The demo system: gateway A, B and C released together, users browsing through gateway A's
  # active Service. The chart's post-promotion check is bgh-latency here (the release's p95
  # latency against the stable ReplicaSet's, gitops/charts/analysis), and the release of gateway A
  # is a slow build: every answer 300 ms later, none failed. So the analysis fails for a reason
  # users would feel, without a single failed request to count.
  @traffic
  Scenario: A slower gateway A fails its post-promotion analysis and users are back on the old one, no request failed
    Given the demo system is running
    And the post-promotion analysis "bgh-latency" is on
    When I release version "1.1.0" of "gateway-a" answering 300 ms slower
    Then every rollout of the release becomes Paused
    When users are browsing through active
    And I promote the release
    Then the active Service of "gateway-a" switches to revision 2 at full size
    And the stable revision of "gateway-a" is 1
    And the post-promotion analysis of "gateway-a" is Failed
    And the rollout "gateway-a" becomes Degraded
    And the rollout "gateway-a" has revision 1 on active and 2 on preview
    And revision 1 of "gateway-a" has 2 ready pods
    And gateway A sees "gateway-a" at version "1.0.0" on active
    And no user request failed out of at least 1000
    And users saw gateway A go from "1.0.0" to "1.1.0" and back
    And the post-promotion analysis of "service-b" is Successful
    And the rollout "service-b" becomes Healthy
    And the rollout "service-c" becomes Healthy
