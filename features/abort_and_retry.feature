Feature: Abort a release, then retry it
  Aborting leaves users on the stable version and marks the Rollout Degraded; retrying puts the
  release back on preview, waiting for promotion again.

  Background:
    Given the demo system is running

  Scenario: Abort keeps users on the old version; retry waits on preview again
    When I release version "1.1.0" of "service-b"
    Then the rollout "service-b" becomes Paused
    When I abort "service-b"
    Then the rollout "service-b" becomes Degraded
    And the rollout "service-b" has revision 1 on active and 2 on preview
    And gateway A sees "service-b" at version "1.0.0" on active
    When I retry "service-b"
    Then the rollout "service-b" becomes Paused
    And the rollout "service-b" has revision 1 on active and 2 on preview
    When I promote "service-b"
    Then the rollout "service-b" becomes Healthy
    And gateway A sees "service-b" at version "1.1.0" on active
