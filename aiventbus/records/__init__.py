"""The records every layer passes around (events, agents and rules, proposed actions, memories) with the pure rules
that belong to them. Below the store: they import only the leaf modules (labels, values, errors)."""
