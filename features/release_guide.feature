@release_guide
Feature: The blue-green release guide, step by step
  The guide's story on the demo system (docs/release-guide.md maps its names): blue is what users
  get through the active Service, green is the new version on the preview Service. Promote
  switches users to green; undo is the real rollback; promoting an older build that waits on
  preview looks like a rollback but is a new release, and the revision history says so.

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

  # The guide's Christmas story. Gateway A 1.1.0 is the guide's build v1.054, which greets users
  # for Christmas; 1.0.0 is v1.053, from before the greeting (services/builds.yaml). The greeting
  # is part of the build, so no configuration brings it to 1.0.0.
  Scenario: Christmas: the older build promoted takes the greeting away; undo brings it back at once
    Given version "1.1.0" of "gateway-a" is released and promoted
    Then the page through active shows "Merry Christmas 🎄"
    When I release version "1.0.0" of "gateway-a"
    Then the rollout "gateway-a" becomes Paused
    And the page through preview does not show "Merry Christmas 🎄"
    And the page through active shows "Merry Christmas 🎄"
    When I promote the release
    Then every rollout of the release becomes Healthy
    And the page through active no longer shows "Merry Christmas 🎄"
    And the rollout "gateway-a" has revision 3 on active and 3 on preview
    And the revision history of "gateway-a" shows versions "1.0.0", "1.1.0", "1.0.0"
    # Blue, the Christmas build, is still up within scaleDownDelaySeconds of the promotion.
    And revision 2 of "gateway-a" still has pods
    When I undo "gateway-a"
    Then the rollout "gateway-a" becomes Healthy
    And the page through active shows "Merry Christmas 🎄"
    And the rollout "gateway-a" has revision 4 on active and 4 on preview
    And the revision history of "gateway-a" shows versions "1.0.0", "1.0.0", "1.1.0"

  Scenario: Christmas, the guide's alternative: set image to the previous image gives the same page
    Given version "1.1.0" of "gateway-a" is released and promoted
    And version "1.0.0" of "gateway-a" is released and promoted
    Then the page through active does not show "Merry Christmas 🎄"
    When I set the image of "gateway-a" to version "1.1.0"
    Then the rollout "gateway-a" becomes Paused
    And the page through preview shows "Merry Christmas 🎄"
    And the page through active does not show "Merry Christmas 🎄"
    When I promote "gateway-a"
    Then the rollout "gateway-a" becomes Healthy
    And the page through active shows "Merry Christmas 🎄"
    And the rollout "gateway-a" has revision 4 on active and 4 on preview
    And the revision history of "gateway-a" shows versions "1.0.0", "1.1.0", "1.0.0", "1.1.0"
