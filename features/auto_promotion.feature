Feature: autoPromotionSeconds promotes a release by itself, after the delay and not before
  With autoPromotionEnabled and autoPromotionSeconds, the Rollout pauses with its new version on
  preview (BlueGreenPause) and switches active to it by itself once autoPromotionSeconds have
  passed since the pause began (rollout/pause.go CompletedBlueGreenPause).

  Scenario: A release waits on preview for autoPromotionSeconds, then promotes itself
    Given a blue-green Rollout "web" on version "1.0.0" with
      | field                | value |
      | autoPromotionEnabled | true  |
      | autoPromotionSeconds | 8     |
    When I release version "1.1.0" of the Rollout "web"
    Then the rollout "web" becomes Paused
    And the rollout "web" has revision 1 on active and 2 on preview
    And the rollout "web" promotes itself once its autoPromotionSeconds pass
    And the rollout "web" becomes Healthy
    And the rollout "web" has revision 2 on active and 2 on preview
