"""Print the total bytes of the tablet app's precached shell (the files static/tablet/sw.js lists).

    python benchmarks/tablet_shell.py [--by-file]
The shell page is counted as its template (the rendered page only drops its Jinja comment).
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from terminal.views.tablet import shell_files, shell_urls


def main() -> None:
    """Print each precached URL's size (with --by-file) and the total, raw and gzipped."""
    total = zipped = 0
    rows = []
    for url, path in zip(shell_urls(), shell_files(), strict=True):
        data = path.read_bytes()
        total += len(data)
        zipped += len(gzip.compress(data, 9))
        rows.append((len(data), url))
    if "--by-file" in sys.argv:
        for size, url in sorted(rows, reverse=True):
            print(f"{size:>9,}  {url}")
    print(f"{len(rows)} files, {total:,} bytes ({total / 1024:.1f} KiB); gzipped {zipped:,} bytes")


if __name__ == "__main__":
    main()
