"""Customer health score (SPEC C3). Models are built by the health work (issue 5)."""
