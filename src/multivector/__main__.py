"""``python -m multivector``: the command line."""

from multivector.interfaces.cli import app

app(prog_name="multivector")
