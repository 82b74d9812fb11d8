Feature: activeMetadata and previewMetadata label the pods by their role, and move on promotion
  The controller labels the preview ReplicaSet's pods with previewMetadata and the active one's
  with activeMetadata, in place, and relabels the new pods when they become active
  (rollout/ephemeralmetadata.go).

  Scenario: The new pods are labelled preview while paused and active once promoted
    Given a blue-green Rollout "web" on version "1.0.0" with
      | field           | value        |
      | activeMetadata  | role=active  |
      | previewMetadata | role=preview |
    When I release version "1.1.0" of the Rollout "web"
    Then the rollout "web" becomes Paused
    And the pods of revision 2 of "web" become labelled "role=preview"
    And the pods of revision 1 of "web" become labelled "role=active"
    When I promote "web"
    Then the rollout "web" becomes Healthy
    And the pods of revision 2 of "web" become labelled "role=active"
