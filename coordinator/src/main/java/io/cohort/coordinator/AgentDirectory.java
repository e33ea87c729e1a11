package io.cohort.coordinator;

import io.cohort.common.CohortException;
import java.util.List;
import java.util.Map;

/** The node agents the coordinator can reach, by node name. */
final class AgentDirectory {
  private final Map<String, AgentClient> agents;

  AgentDirectory(Map<String, AgentClient> agents) {
    this.agents = Map.copyOf(agents);
  }

  AgentClient agent(String node) {
    AgentClient a = agents.get(node);
    if (a == null) {
      throw CohortException.notFound("node %s is not known (known nodes: %s)", node,
          String.join(", ", nodes()));
    }
    return a;
  }

  List<String> nodes() {
    return agents.keySet().stream().sorted().toList();
  }
}
