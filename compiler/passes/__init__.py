"""Optimizer passes (IR -> IR)."""
