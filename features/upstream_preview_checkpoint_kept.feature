@upstream @argo_rollouts_4728 @analysis
Feature: A new release with previewReplicaCount gets its own pre-promotion analysis (argoproj/argo-rollouts#4728)
  Upstream issue 4728, open: with previewReplicaCount, once a release has passed its
  pre-promotion analysis and been promoted, status.blueGreen.scaleUpPreviewCheckPoint is true
  while its preview scales up to full size before the switch. A new pod template released in
  that window should start over: resetRolloutStatus sets the checkpoint false, but
  calculateScaleUpPreviewCheckPoint then reads the old status (c.rollout.Status) and writes true
  again (rollout/bluegreen.go, v1.9.3 and v1.10.2 alike; the open fix is
  argoproj/argo-rollouts#4729). The new release then skips its pause and its pre-promotion
  analysis, scales straight to full size and switches active untested.
  The window is held open without a race: every node is cordoned before the promote, so the
  preview's scale-up pod stays Pending and the switch waits; the next release is made then, and
  the nodes are uncordoned once the controller has recorded it.
  Expected: the new release starts with the checkpoint reset, runs its own analysis, waits on
  preview with previewReplicaCount pods. A strict expected failure on every release so far; it
  passes once upstream fixes it.

  Scenario: A release made while the previous one scales up for its switch starts over
    Given a blue-green Rollout "web" on version "1.0.0" with
      | field                | value  |
      | previewReplicaCount  | 1      |
      | prePromotionAnalysis | passes |
    When I release version "1.1.0" of the Rollout "web"
    Then the pre-promotion analysis of "web" is Successful
    And the rollout "web" becomes Paused
    And revision 2 of "web" has 1 ready pod
    When every node is cordoned
    And I promote "web"
    Then the rollout "web" passes its scaleUpPreviewCheckPoint
    And revision 2 of "web" has 1 ready pod
    And the active Service of "web" stays on revision 1
    When I release version "1.2.0" of the Rollout "web"
    Then the rollout "web" starts revision 3 with its scaleUpPreviewCheckPoint reset
    When every node is uncordoned
    Then the pre-promotion analysis of "web" is Successful
    And the rollout "web" becomes Paused
    And revision 3 of "web" has 1 ready pod
    And the rollout "web" has revision 1 on active and 3 on preview
