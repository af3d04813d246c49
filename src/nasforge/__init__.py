"""nasforge: a toolkit for neural architecture search.

Layers (see DESIGN.md): spaces -> nn -> cost -> data -> train -> bench -> search/evaluate -> run.
"""

from nasforge.errors import (
    ArchError,
    BenchError,
    CheckpointError,
    DataError,
    NasforgeError,
    OutputError,
    RecipeError,
    RegistryError,
    SearchError,
)

__version__ = "0.1.0"

__all__ = [
    "ArchError",
    "BenchError",
    "CheckpointError",
    "DataError",
    "NasforgeError",
    "OutputError",
    "RecipeError",
    "RegistryError",
    "SearchError",
    "__version__",
]
