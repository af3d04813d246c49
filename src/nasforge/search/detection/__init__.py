"""Search methods of the detection task family (SM-NAS)."""
