"""REST endpoints of the routing sandbox (C8.4): simulate, A/B test, reports. (Being built.)"""

from __future__ import annotations

from ninja import Router

router = Router()
