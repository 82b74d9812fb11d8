@gitops @mesh
Feature: Release through Git and Argo CD
  A release is a commit to the environment's version file. Argo CD is asked to refresh (rather
  than left to its three-minute poll), syncs the commit through the app of apps, and Argo Rollouts
  takes over: the new version waits on preview, active untouched, until someone promotes it.
  The release bumps the service and the root version, so preview gateway A reaches the new
  service while active gateway A keeps reaching the old one.

  Background:
    Given the demo system is delivered by Argo CD from a Git repository

  Scenario: A version committed to QA reaches preview; promoting it makes it live
    When I commit version "1.1.0" of "service-b" to the QA version file and push it
    Then Argo CD has synced the commit, with "service-b" Suspended
    And every rollout of the release becomes Paused
    And gateway A sees "service-b" at version "1.1.0" on preview
    And gateway A sees "service-b" at version "1.0.0" on active
    When I promote the release
    Then every rollout of the release becomes Healthy
    And Argo CD reports every application Synced and Healthy
    And gateway A sees "service-b" at version "1.1.0" on active
