"""A template Megatron plugin: a stateful layer, a stateless layer of several inputs, a metric
and a batch source."""
