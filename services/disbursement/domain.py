"""Pure disbursement rules. Standard library only."""
