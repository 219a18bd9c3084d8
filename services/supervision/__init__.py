"""Supervision: public posting, complaints, community project supervision, beneficiary timeline."""
