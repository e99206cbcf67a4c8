"""Metrics, translation, export."""
