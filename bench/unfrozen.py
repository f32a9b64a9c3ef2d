"""``onewindow serve`` before its processes froze their start-up heap: the "before" of bench.http_api.

    ONEWINDOW_DATABASE_URL=... ONEWINDOW_SECRET_KEY=... python -m bench.unfrozen PORT WORKERS

The same server (:func:`api.server.serve`), whose worker processes skip ``settle_heap`` (``gc.freeze``), so
that one run measures both side by side.
"""

from __future__ import annotations

import sys

from api.server import NoDelayConfig, serve
from engine.settings import Settings


class UnfrozenConfig(NoDelayConfig):
    def settle_heap(self) -> None:
        """Nothing: every full collection walks the start-up heap, as before."""


def main(argv: list[str] | None = None) -> int:
    port, workers = (int(x) for x in (argv or sys.argv[1:]))
    return serve(Settings(), host="127.0.0.1", port=port, workers=workers, config_type=UnfrozenConfig)


if __name__ == "__main__":
    sys.exit(main())
