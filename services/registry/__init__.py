"""Household registry: households, members, surveys; publishes every change."""
