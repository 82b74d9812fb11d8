Feature: Promote a release
  Promotion switches the active Service to the preview ReplicaSet: users get the new version.

  Background:
    Given the demo system is running

  Scenario: Promoting the release switches users to the new version
    When I release version "1.1.0" of "service-b"
    Then every rollout of the release becomes Paused
    When I promote the release
    Then every rollout of the release becomes Healthy
    And the rollout "service-b" has revision 2 on active and 2 on preview
    And the events of "service-b" end with "SwitchService" then "RolloutCompleted"
    And gateway A sees "service-b" at version "1.1.0" on active
    And gateway A sees "service-b" at version "1.1.0" on preview

  Scenario: A full promotion of one rollout skips its pause
    When I release version "1.1.0" of "service-c"
    Then the rollout "service-c" becomes Paused
    When I promote "service-c" fully
    Then the rollout "service-c" becomes Healthy
    And the rollout "service-c" has revision 2 on active and 2 on preview
