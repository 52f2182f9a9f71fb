"""Megatron's keras plugin."""
