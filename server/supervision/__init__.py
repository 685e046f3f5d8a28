"""Supervision: statistics of the partnerships a regional health commission oversees (aggregates only)."""
