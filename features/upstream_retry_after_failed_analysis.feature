@upstream @argo_rollouts_2824 @analysis
Feature: A retry after a failed pre-promotion analysis runs it again (argoproj/argo-rollouts#2824)
  Upstream issue 2824, open: once a pre-promotion AnalysisRun has failed, every retry of the
  release is aborted again at once; deleting the AnalysisRuns by hand lets the retry work. The
  reporter's Rollout: autoPromotionEnabled true, prePromotionAnalysis, scaleDownDelaySeconds.
  The maintainers could not reproduce the same report in #841 (retry started a second
  AnalysisRun, which passed), and upstream's e2e TestBlueGreenPrePromotionFail does what this
  runbook does: the analysis fails, is changed to pass, the Rollout is retried and becomes Healthy
  with two AnalysisRuns. abortScaleDownDelaySeconds is 0 (the aborted preview is kept without a
  scale-down deadline) so that #4787, a retry within that delay skipping the analysis before
  v1.10, does not decide the outcome here.
  Expected: the retry starts a new pre-promotion AnalysisRun; it passes and the release is
  promoted. Not reproduced here: it passes on v1.9.3 and v1.10.2 alike, so it is not an expected
  failure but a plain test of the expected behaviour (harness/upstream.py not_reproduced,
  docs/upgrade.md); it fails the day a release aborts the retry.

  Scenario: After a failed pre-promotion analysis, a retry runs a new one and the release goes on
    Given a blue-green Rollout "web" on version "1.0.0" with
      | field                      | value |
      | autoPromotionEnabled       | true  |
      | prePromotionAnalysis       | fails |
      | scaleDownDelaySeconds      | 30    |
      | abortScaleDownDelaySeconds | 0     |
    When I release version "1.1.0" of the Rollout "web"
    Then the pre-promotion analysis of "web" is Failed
    And the rollout "web" becomes Degraded
    And the rollout "web" has revision 1 on active and 2 on preview
    When I set prePromotionAnalysis of the Rollout "web" to "passes"
    And I retry "web"
    Then the rollout "web" becomes Healthy
    And the rollout "web" has revision 2 on active and 2 on preview
    And the AnalysisRuns of "web" are "Failed" then "Successful"
