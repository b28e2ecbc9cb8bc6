"""Lead facts changed: the signals lower apps send so that apps above them keep what they derive.

DESIGN.md: apps depend downward only (core ← accounts ← crm ← everything else). The pipeline,
engagement, routing and intake services write the facts of a lead; `insights` keeps rollups and
per-lead rows derived from those facts, in step with them. The writers must not import insights, so
they announce the change here — in crm, which every writer already depends on — and insights
connects its receivers (`insights/receivers.py`, in `InsightsConfig.ready`).

Rules for every signal of this module (docs/architecture.md, "Lead facts changed"):

- The sender calls `send`, never `send_robust`, **inside the transaction that wrote the fact**, after
  the fact is written. Receivers run synchronously in that transaction: a receiver that fails
  raises through the sender and the fact rolls back with it, so a derived number never disagrees
  with the committed facts (DESIGN.md rule 1).
- `sender` is the model class of the fact written (StageMove, Touch, Lead). Receivers accept any
  sender.
- Arguments are keyword arguments; lists of lead ids are plain lists (receivers may read them more
  than once). Receivers must not assume they are alone: every argument is read-only.

A sender with nothing to say (an empty list of leads) still sends; receivers treat an empty list as
nothing to do.
"""

from __future__ import annotations

from django.dispatch import Signal

lead_stage_moved = Signal()
"""A stage move of one lead was appended (`pipeline.services.stage_move_record`: every move,
including the entry move `crm.services.lead_create` records for a new lead).

Arguments:
- `lead`: the Lead **as it stood before the move** — its `stage`, `status` and `stage_entered_at`
  are those of the stay the move ends (the sender updates the row after sending);
- `move`: the saved StageMove (its `to_stage`, `from_status`, `to_status` and `at` loaded);
- `from_code`: the code of the stage the lead left, None for the entry into the pipeline;
- `direction`: "enter", "same", "forward" or "backward" (as in the move's explanation).
"""

lead_touches_changed = Signal()
"""The touches of some leads changed: a touch was appended, or the response of an outbound touch
became known (`engagement.services.touch_record`, `touch_response_record`).

Arguments:
- `lead_ids`: the ids of the leads whose touches changed.
"""

leads_reassigned = Signal()
"""The owner of some leads changed: routing (one lead or a bulk run), a manual reassignment, or an
edit of the lead's owner (`routing.services.lead_route`, `lead_reassign`, `leads_route_bulk`;
`crm.services.lead_update`). The new owner is already written on the lead rows.

Arguments:
- `lead_ids`: the ids of the leads whose owner changed.
"""

leads_arrived = Signal()
"""New leads were written in bulk past `crm.services.lead_create`, each with its entry move into its
first stage already written: a webhook burst (`intake.burst`) or an import chunk
(`intake.imports.engine`). A lead created one by one announces itself through `lead_stage_moved`
instead, as its entry move is recorded.

The bulk paths must stay cheap (a chunk is thousands of leads), so the signal carries what the
receivers need about the new leads instead of making them read the leads back: no query is added
per chunk. Arguments:
- `lead_ids`: the ids of the new leads (always);
- and, describing the same leads, exactly one of:
  - `leads`: the saved Lead objects, each with its `stage` loaded (the webhook burst, which built
    them), or
  - `stage_id`, `source` and `entries`: every lead is open in the stage `stage_id`, from `source`,
    and `entries` lists one (region id, arrival moment) pair per lead (the import chunk, which writes
    rows, not objects); optionally `owners`, each lead's owner id (None: nobody) in the same order —
    the import routes a chunk's leads before it announces them, so their derived rows are made once,
    under their owner, instead of made under nobody and moved at once.
"""
