"""Report files -> passages -> index -> hits."""
