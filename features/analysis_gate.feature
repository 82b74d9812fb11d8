@analysis @slow
Feature: The pre-promotion analysis gate
  With the pre-promotion analysis on, the bgh-judge web provider compares the preview's metrics
  with active's before anyone may promote. A pass leaves the release waiting on preview; a
  failure aborts it (Degraded, users stay on active); too little data to judge pauses it.
  Browsing through preview reaches service B's preview only through the mesh's routing (gateway
  A's preview pods are routed to B's preview by source labels): without it B's preview answers
  nothing, so there is nothing to judge and the run is rightly Inconclusive. The two scenarios
  that judge traffic are @mesh.

  Background:
    Given the demo system is running
    And the pre-promotion analysis is on

  @mesh
  Scenario: A good preview passes the analysis and waits for promotion
    When I release version "1.1.0" of "service-b"
    And users are browsing through active and preview
    Then the pre-promotion analysis of "service-b" is Successful
    And the rollout "service-b" becomes Paused
    And the rollout "service-b" has revision 1 on active and 2 on preview
    When I promote "service-b"
    Then the rollout "service-b" becomes Healthy

  @mesh
  Scenario: A faulty preview fails the analysis and users stay on active
    When I release version "1.1.0" of "service-b" failing 50% of requests
    And users are browsing through active and preview
    Then the pre-promotion analysis of "service-b" is Failed
    And the rollout "service-b" becomes Degraded
    And the rollout "service-b" has revision 1 on active and 2 on preview
    And gateway A sees "service-b" at version "1.0.0" on active

  @quiet
  Scenario: Without traffic there is nothing to judge and the release waits
    When I release version "1.1.0" of "service-b"
    Then the pre-promotion analysis of "service-b" is Inconclusive
    And the rollout "service-b" becomes Paused
    And the rollout "service-b" has revision 1 on active and 2 on preview
