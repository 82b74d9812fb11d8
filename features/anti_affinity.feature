@spread
Feature: antiAffinity keeps the new pods off the nodes that run the stable ones
  With antiAffinity, the controller gives the new ReplicaSet's pods an anti-affinity to the
  stable ReplicaSet's pods per node (topologyKey kubernetes.io/hostname; utils/replicaset
  GenerateReplicaSetAffinity), so the kube-scheduler puts blue and green on different nodes:
  a node failing takes down only one of them. The scheduler here is the real one, over the
  simulated nodes.

  Scenario: The preview's pods run only on nodes without a stable pod
    Given a blue-green Rollout "web" on version "1.0.0" with
      | field        | value    |
      | antiAffinity | required |
    When I release version "1.1.0" of the Rollout "web"
    Then the rollout "web" becomes Paused
    And the pods of revision 2 of "web" are required to keep off the nodes of the stable ReplicaSet
    And no node runs pods of both revision 1 and revision 2 of "web"
    And revision 2 of "web" has 2 ready pods
