"""The HTTP API and the dashboard: a thin FastAPI layer over the same library calls as the CLI.

Requests name built-in scenarios and run ids, never file paths. Each route parses its request, calls
the library (``multivector.model``, ``multivector.explore``, ``multivector.views``) and serialises
the answer; the state the routes share (scenarios, the store file, jobs, limits) comes to them as
FastAPI dependencies (:mod:`.deps`).

- :mod:`.app` builds the application: limits, error handlers, routers.
- :mod:`.routes_pages` serves the dashboard and its static files.
- :mod:`.routes_scenarios` lists scenarios and runs one synchronously.
- :mod:`.routes_explorations` starts explorations as background jobs.
- :mod:`.routes_runs` reads explorations from the store.
"""

from multivector.interfaces.server.app import create_app

__all__ = ["create_app"]
