Feature: progressDeadlineAbort aborts a release whose preview never gets ready
  With progressDeadlineAbort, a new ReplicaSet that makes no progress for
  progressDeadlineSeconds is aborted by the controller itself (rollout/sync.go
  evaluateProgressDeadlineAbort): active stays on the stable ReplicaSet, users are untouched.

  Scenario: A preview whose pods never run aborts by itself; active stays on the old version
    Given a blue-green Rollout "web" on version "1.0.0" with
      | field                   | value |
      | progressDeadlineSeconds | 5     |
      | progressDeadlineAbort   | true  |
    When I release version "1.1.0" of the Rollout "web" on pods no node runs
    Then the rollout "web" aborts by itself
    And the active Service of "web" stays on revision 1
    And revision 1 of "web" has 2 ready pods
    And the stable revision of "web" is 1
