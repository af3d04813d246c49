"""Task searches of the translation task family."""
