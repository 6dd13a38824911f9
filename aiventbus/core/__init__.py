"""The runtime pipeline: bus, router, context, agents, policy, executor."""
