@traffic
Feature: Zero downtime
  Users browsing through the active Service see no failed request while a release is promoted
  or aborted; those arriving after the switch get the new version.

  Background:
    Given the demo system is running

  Scenario: No request fails while a release is promoted
    When I release version "1.1.0" of "gateway-a"
    Then every rollout of the release becomes Paused
    And gateway A sees "gateway-a" at version "1.1.0" on preview
    When users are browsing through active
    And I promote the release
    Then every rollout of the release becomes Healthy
    And no user request failed out of at least 1000
    And users saw gateway A go from "1.0.0" to "1.1.0"

  Scenario: No request fails while a release is aborted
    When I release version "1.1.0" of "gateway-a"
    Then every rollout of the release becomes Paused
    When users are browsing through active
    And I abort the release
    Then every rollout of the release becomes Degraded
    And no user request failed out of at least 1000
    And users saw only gateway A "1.0.0"
