"""Putting a bench's table into ``bench/results/``: a new measurement goes on top, under the file's
title, and the ones before it stay. The results files are the record of how each figure moved from
commit to commit; a script that rewrote its file wiped that record each time it was run by hand."""

from __future__ import annotations

import time
from pathlib import Path


def publish(path: Path, text: str) -> None:
    """Write ``text`` (a markdown document whose first line is its title) to ``path``. Where the file
    exists under the same title, the new text goes in as the newest section and the older ones are kept."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    title, _, body = text.partition("\n")
    if path.exists():
        old_title, _, old_body = path.read_text().partition("\n")
        if old_title.strip() == title.strip():
            section = f"## Run of {time.strftime('%Y-%m-%d %H:%M')}\n\n" + body.strip("\n") + "\n"
            text = f"{title}\n\n{section}\n{old_body.lstrip(chr(10))}"
    path.write_text(text)
