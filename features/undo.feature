Feature: Undo a release
  Undo puts an older revision's pod template back as a new revision. While that revision's
  ReplicaSet is still up (within scaleDownDelaySeconds of the last promotion) the controller
  switches users back at once, with no wait on preview: the fast rollback.

  Background:
    Given the demo system is running
    And version "1.1.0" of "service-b" is released and promoted
    And version "1.2.0" of "service-b" is released and promoted

  Scenario: Undo goes back to the previous revision
    When I undo "service-b"
    Then the rollout "service-b" asks for version "1.1.0"
    And the rollout "service-b" becomes Healthy
    And the rollout "service-b" has revision 4 on active and 4 on preview
    And gateway A sees "service-b" at version "1.1.0" on active

  Scenario: Undo goes back to a named revision
    When I undo "service-b" to revision 1
    Then the rollout "service-b" asks for version "1.0.0"
    And the rollout "service-b" becomes Healthy
    And the rollout "service-b" has revision 4 on active and 4 on preview
    And gateway A sees "service-b" at version "1.0.0" on active
