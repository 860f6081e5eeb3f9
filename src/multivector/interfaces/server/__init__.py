"""The HTTP API and the dashboard: a thin FastAPI layer over the same library calls as the CLI.

Requests name built-in scenarios and run ids, never file paths. Each route parses its request, calls
the library (``multivector.model``, ``multivector.explore``, ``multivector.views``) and serialises
the answer; the state the routes share (scenarios, the store file, jobs, limits) comes to them as
FastAPI dependencies (:mod:`.deps`).

- :mod:`.app` builds the application: limits, error handlers, routers.
- :mod:`.runner` runs single runs in a pool of worker processes, with a bounded queue.
- :mod:`.auth` holds the token rules and the loopback rule (``serve`` refuses an open address
  without a token); :data:`.deps.WRITE_ACCESS` guards every route that starts work.
- :mod:`.routes_pages` serves the dashboard and its static files.
- :mod:`.routes_server` tells the limits, the pool's state and whether a token is needed.
- :mod:`.routes_scenarios` lists scenarios and runs one synchronously.
- :mod:`.routes_explorations` starts explorations as background jobs.
- :mod:`.routes_runs` reads explorations from the store.
"""

from multivector.interfaces.server.app import create_app

__all__ = ["create_app"]
