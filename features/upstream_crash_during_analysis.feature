@upstream @argo_rollouts_3724 @analysis @crash
Feature: A preview pod that crashes during the pre-promotion analysis does not promote the release (argoproj/argo-rollouts#3724)
  Upstream issue 3724: a pod of the new ReplicaSet crashed while the pre-promotion analysis ran,
  and the release was promoted without its verdict. The controller skipped the pre-promotion
  analysis whenever the new ReplicaSet was not saturated (skipPrePromotionAnalysisRun), also
  once the run had started: the crash cancelled the running AnalysisRun, and with
  autoPromotionEnabled the Rollout switched active to the new ReplicaSet. Fixed in v1.9.0
  (argoproj/argo-rollouts#4604: an analysis that has started is no longer skipped; the check is
  in the v1.9.3 and v1.10.2 sources alike).
  Expected: the AnalysisRun keeps running through the crash, its Failed verdict aborts the
  release and active stays on the old ReplicaSet. Passes on v1.9.0 and later; a strict expected
  failure before. The analysis fails by construction 20 s after it starts, as upstream's
  reproduction uses a job that sleeps and exits 1; the crash and the controllers seeing the new
  ReplicaSet short of a pod happen while it runs, and the runbook checks that they did.

  Scenario: A preview pod crashes while the pre-promotion analysis runs; the release is not promoted
    Given a blue-green Rollout "web" on version "1.0.0" with
      | field                | value           |
      | autoPromotionEnabled | true            |
      | prePromotionAnalysis | fails after 20s |
    When I release version "1.1.0" of the Rollout "web"
    Then the pre-promotion analysis of "web" runs
    When a pod of revision 2 of "web" crashes
    Then revision 2 of "web" is short of an available pod
    And revision 2 of "web" is fully available again
    And the pre-promotion analysis of "web" still runs
    And the rollout "web" has revision 1 on active and 2 on preview
    And the pre-promotion analysis of "web" is Failed
    And the rollout "web" becomes Degraded
    And the rollout "web" has revision 1 on active and 2 on preview
