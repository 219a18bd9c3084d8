"""Disbursement use cases."""
