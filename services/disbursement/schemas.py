"""Disbursement API models."""
