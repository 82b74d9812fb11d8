@release_guide
Feature: The blue-green release guide, step by step
  The guide's story on the demo system: blue is what users get through the active Service,
  green is the new version on the preview Service. Promote switches users to green; undo is the
  real rollback; promoting an older build that waits on preview looks like a rollback but is a
  new release, and the revision history says so.

  Background:
    Given the demo system is running

  Scenario: Initial state: only blue
    Then only revision 1 of "gateway-a" has pods
    And gateway A sees "gateway-a" at version "1.0.0" on active
    And gateway A sees "gateway-a" at version "1.0.0" on preview

  Scenario: Deploy a new version: green appears on preview, users stay on blue
    When I release version "1.1.0" of "gateway-a"
    Then the rollout "gateway-a" becomes Paused
    And revisions 1 and 2 of "gateway-a" have pods
    And the rollout "gateway-a" has revision 1 on active and 2 on preview
    And gateway A sees "gateway-a" at version "1.1.0" on preview
    And gateway A sees "gateway-a" at version "1.0.0" on active

  Scenario: Preview check: only preview shows the new page
    When I release version "1.1.0" of "gateway-a" with the greeting "Hello green"
    Then the rollout "gateway-a" becomes Paused
    And the page through preview shows "Hello green"
    And the page through active does not show "Hello green"

  Scenario: Promote: users are switched to green
    When I release version "1.1.0" of "gateway-a"
    And I promote the release
    Then every rollout of the release becomes Healthy
    And the rollout "gateway-a" has revision 2 on active and 2 on preview
    And gateway A sees "gateway-a" at version "1.1.0" on active

  @slow
  Scenario: Blue is kept for a fast rollback, then scaled down
    When I release version "1.1.0" of "gateway-a"
    And I promote the release
    Then the rollout "gateway-a" becomes Healthy
    And revisions 1 and 2 of "gateway-a" have pods
    And revision 1 of "gateway-a" is scaled down
    And only revision 2 of "gateway-a" has pods

  Scenario: Roll back with undo: users are back on the previous revision at once
    Given version "1.1.0" of "gateway-a" is released and promoted
    When I undo "gateway-a"
    Then the rollout "gateway-a" becomes Healthy
    And gateway A sees "gateway-a" at version "1.0.0" on active
    And the revision history of "gateway-a" shows versions "1.1.0", "1.0.0"

  Scenario: Christmas: promoting the older build on preview removes the greeting, as a release
    Given version "1.1.0" of "gateway-a" with the greeting "Hello 크리스마스 🎄" is released and promoted
    Then the page through active shows "Hello 크리스마스 🎄"
    When I release version "1.0.0" of "gateway-a" with the greeting "Hello from QA"
    Then the rollout "gateway-a" becomes Paused
    And the page through preview no longer shows "Hello 크리스마스 🎄"
    And the page through active shows "Hello 크리스마스 🎄"
    When I promote the release
    Then every rollout of the release becomes Healthy
    And the page through active no longer shows "Hello 크리스마스 🎄"
    And the revision history of "gateway-a" shows versions "1.0.0", "1.1.0", "1.0.0"
