@readonly
Feature: Nightly checks
  Read-only checks for long-lived clusters: they change nothing, so they run in any namespace.

  Scenario: The demo system is healthy and consistent
    Then every rollout is Healthy
    And every rollout's status selectors agree with its Services
    And gateway A answers on active and preview
    And every answer through active and preview came from its own side
