"""Megatron's sklearn plugin."""
