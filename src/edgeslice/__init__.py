"""edgeslice."""
