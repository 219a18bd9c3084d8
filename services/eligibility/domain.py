"""Pure eligibility rules. Standard library only."""
