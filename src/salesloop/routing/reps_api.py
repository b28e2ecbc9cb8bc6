"""REST endpoints of rep routing profiles and specialty tags (C8.5). (Being built.)"""

from __future__ import annotations

from ninja import Router

router = Router()
