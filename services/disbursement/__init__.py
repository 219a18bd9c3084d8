"""Disbursement: preferential loans and livelihood support through bank partners."""
