"""Tyre models behind `AbstractTireModel`, one family per module, and their registry by name."""
