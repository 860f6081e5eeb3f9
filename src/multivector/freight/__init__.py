"""The physical register: the layered network, volume-delay curves, route choice and TNTP benchmarks.

``network`` compiles a scenario into arrays and route sets; ``vdf`` holds the delay curves; ``sue``
(logit stochastic user equilibrium on fixed route sets) and ``ue`` (deterministic user equilibrium,
Frank–Wolfe) are the solvers, free of any dataset knowledge; ``tntp`` reads and writes the standard
benchmark files; ``model`` solves one year of a scenario for a batch of runs.
"""
