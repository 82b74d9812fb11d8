Feature: Release a new version to preview
  A release waits on preview, reachable through gateway A's preview Service, while users on
  active are untouched. Releasing moves the root version on, so every Rollout gets a revision.

  Background:
    Given the demo system is running

  @mesh
  Scenario: A new version of service B waits on preview while active is untouched
    When I release version "1.1.0" of "service-b"
    Then the rollout "service-b" becomes Paused
    And the rollout "service-b" has revision 1 on active and 2 on preview
    And the rollout "service-b" asks for version "1.1.0"
    And gateway A sees "service-b" at version "1.1.0" on preview
    And gateway A sees "service-b" at version "1.0.0" on active
    And gateway A sees "gateway-a" at version "1.0.0" on active
