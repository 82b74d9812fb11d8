@upstream @argo_rollouts_4787 @analysis
Feature: A release retried within its abortScaleDownDelaySeconds waits on preview again (argoproj/argo-rollouts#4787)
  Upstream pull request 4787 ("incorrect evaluation of scale down delay on rollback", merged for
  v1.10.0): up to v1.9.x the controller took any new ReplicaSet carrying a scale-down-deadline
  annotation for a fast rollback within scaleDownDelaySeconds (replicasetutil.HasScaleDownDeadline
  in isBlueGreenFastTracked, reconcileAnalysisRuns and shouldFullPromote), and removing the
  annotation patched the cluster but not the ReplicaSet the reconcile went on reading. An abort
  puts that annotation on the preview ReplicaSet (abortScaleDownDelaySeconds), so a retry within
  the delay skips the pause and the analysis: the release is promoted without anyone promoting it.
  v1.10 fast-tracks only a rollback (isFastRollback: the new ReplicaSet is the stable one or older
  than it, within the window or the delay).
  Expected: after the retry the release waits on preview again, active on the stable revision,
  and runs its pre-promotion analysis again (a second AnalysisRun). Passes on v1.10.0 and later;
  a strict expected failure before. The abort is the controller's own, on a failed pre-promotion
  analysis (as in upstream's e2e TestBlueGreenPrePromotionFail), not a user's sent the moment
  the Rollout pauses: before v1.10 such an abort can be lost to #4073, which would fail this
  runbook for another bug's reason.

  Scenario: Retried within abortScaleDownDelaySeconds, the release waits for a promote again
    Given a blue-green Rollout "web" on version "1.0.0" with
      | field                      | value |
      | prePromotionAnalysis       | fails |
      | abortScaleDownDelaySeconds | 120   |
    When I release version "1.1.0" of the Rollout "web"
    Then the pre-promotion analysis of "web" is Failed
    And the rollout "web" becomes Degraded
    And revision 2 of "web" gets a scale-down deadline
    And revision 2 of "web" has 2 ready pods
    When I set prePromotionAnalysis of the Rollout "web" to "passes"
    And I retry "web"
    Then the rollout "web" waits on preview again, unpromoted
    And the pre-promotion analysis of "web" is Successful
    And the AnalysisRuns of "web" are "Failed" then "Successful"
    And the rollout "web" has revision 1 on active and 2 on preview
    And the stable revision of "web" is 1
