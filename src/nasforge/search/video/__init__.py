"""Video search methods (PV-NAS)."""
