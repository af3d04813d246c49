"""Black-box search algorithms: one file each, all speaking ask/tell (see ``search.base``)."""
