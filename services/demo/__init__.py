"""Demo data and the `everydoor seed` driver."""
