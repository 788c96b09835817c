"""syncd's use cases: the core's decisions driven through the adapters."""
