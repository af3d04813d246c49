"""``nasforge explore``: a local, read-only web page over benchmark tables and run
directories (filters, Pareto scatter, cells, per-seed curves, search trajectories, one-shot
architecture weights, ranking studies).

Needs the ``explore`` extra (``pip install 'nasforge[explore]'``: starlette, uvicorn,
plotly). :class:`Explorer` opens the sources; :func:`create_app` is the ASGI app;
:func:`serve` runs it with uvicorn on the loopback interface.
"""

from nasforge.explore.explorer import Explorer
from nasforge.explore.server import create_app, serve
from nasforge.explore.tables import ExploreError, pareto_front

__all__ = ["ExploreError", "Explorer", "create_app", "pareto_front", "serve"]
