"""A template Megatron plugin: one stateful layer and one metric."""
