"""Megatron's sql plugin."""
