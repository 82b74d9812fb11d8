@upstream @argo_rollouts_4073
Feature: A promote sent the moment a release is Paused is acted on (argoproj/argo-rollouts#4073)
  Upstream issue 4073: a promote sent right after the controller paused the Rollout could be lost.
  The controller wrote the object it had just patched back into its informer cache, over the
  newer one carrying the promote; seeing no change after that, it left the Rollout Paused. Fixed
  in v1.10.0 (argoproj/argo-rollouts#4786 requeues on a stale cache instead of writing back).
  Expected: every promote is acted on, the Rollout becomes Healthy on the new revision. Passes
  on v1.10.0 and later; a strict expected failure before (a race: four releases in a row, each
  promoted within milliseconds of Paused, so that at least one meets it; the last two are new
  pod templates of versions released before, never a rollback to a ReplicaSet still running).

  Scenario: Four releases in a row, each promoted as soon as it is Paused, all become Healthy
    Given a blue-green Rollout "web" on version "1.0.0" with
      | field    | value |
      | replicas | 1     |
    When I release version "1.1.0" of the Rollout "web"
    Then the rollout "web" becomes Paused
    When I promote "web"
    Then the rollout "web" becomes Healthy
    When I release version "1.2.0" of the Rollout "web"
    Then the rollout "web" becomes Paused
    When I promote "web"
    Then the rollout "web" becomes Healthy
    When I release version "1.1.0" of the Rollout "web" with the greeting "third"
    Then the rollout "web" becomes Paused
    When I promote "web"
    Then the rollout "web" becomes Healthy
    When I release version "1.2.0" of the Rollout "web" with the greeting "fourth"
    Then the rollout "web" becomes Paused
    When I promote "web"
    Then the rollout "web" becomes Healthy
    And the rollout "web" has revision 5 on active and 5 on preview
