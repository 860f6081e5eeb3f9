"""The coupled model: a scenario compiled once (:class:`Model`) and simulated for batches of runs.

``compiled`` owns the network, route sets and freight arrays; ``coupled`` exchanges values between
the registers each year; ``randomness`` draws each run's disruptions; ``structure`` reads the
political register's loops; ``calibrate``, ``claims`` and ``xmile`` use ``simulate`` for their jobs.
"""

from multivector.model.compiled import Model, check, compiled, simulate

__all__ = ["Model", "check", "compiled", "simulate"]
