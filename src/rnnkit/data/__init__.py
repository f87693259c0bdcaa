"""Small data sets embedded in the package."""
