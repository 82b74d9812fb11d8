@traffic
Feature: Users never reach preview
  Only the preview of the current release reaches the previews of the services it calls. A
  service released alone with the plugin's set image (no new root version) waits on preview
  where no user, and no preview chain of another release, can reach it; the background streams
  prove it answer by answer against the Rollouts' selectors.

  Background:
    Given the demo system is running

  Scenario: A service released alone with set image stays off the users' path
    When I set the image of "service-b" to version "1.1.0"
    Then the rollout "service-b" becomes Paused
    And the rollout "service-b" has revision 1 on active and 2 on preview
    And gateway A sees "service-b" at version "1.0.0" on active
    And gateway A sees "service-b" at version "1.0.0" on preview
    And users never reached preview
    And every preview answer came from the release
    When I promote "service-b"
    Then the rollout "service-b" becomes Healthy
    And gateway A sees "service-b" at version "1.1.0" on active
    And users never reached preview

  @mesh
  Scenario: A release reaches the new service only through preview gateway A, then everyone
    When I release version "1.1.0" of "service-b"
    Then every rollout of the release becomes Paused
    And gateway A sees "service-b" at version "1.1.0" on preview
    And gateway A sees "service-b" at version "1.0.0" on active
    And users never reached preview
    And every preview answer came from the release
    When I promote the release
    Then every rollout of the release becomes Healthy
    And gateway A sees "service-b" at version "1.1.0" on active
    And users never reached preview
    And every preview answer came from the release
