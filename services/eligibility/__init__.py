"""Eligibility: poverty standards as data, explained classifications, programme eligibility."""
