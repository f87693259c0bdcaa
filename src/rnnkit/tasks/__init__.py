"""Tasks on real data: each a library function that a thin CLI command calls."""
