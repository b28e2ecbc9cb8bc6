"""The indicators' derived tables (insights.models.indicators: IndicatorLead, IndicatorSpan,
IndicatorTouch), rebuilt from the facts — `pipeline.StageMove` and `engagement.Touch` — by one set
of SQL statements, for one lead (the hooks) or for all leads in id ranges (`insights_facts_rebuild`,
after bulk loads). Rebuilding twice gives the same rows (DESIGN.md rule 1)."""

from __future__ import annotations

from collections.abc import Callable

from django.db import connection, transaction

from salesloop.core.rows import sql_rows, statements_run
from salesloop.insights.indicators.ledgers import ledger_statements, ledgers_add, ledgers_rebuild
from salesloop.insights.models.indicators import (
    SPAN_OPEN_END,
    IndicatorLead,
    IndicatorSpan,
    IndicatorTouch,
)
from salesloop.pipeline.models import Stage

# The default pipeline's stages in order (SPEC C2.1); rank = place in this list, from 1.
DEFAULT_STAGE_CODES = [
    "screening",
    "needs_confirmed",
    "solution_demo",
    "quote_negotiation",
    "contract_signed",
]
RANK_NEEDS_CONFIRMED = 2  # 需求确认: the conversion indicator counts leads that reached it or beyond
RANK_SOLUTION_DEMO = 3  # 方案演示: the stall warning's pile-up stage
RANK_QUOTE = 4  # 报价谈判: the response rate's sharp-drop stage
MAX_RANK = len(DEFAULT_STAGE_CODES)


def stage_ranks() -> dict[int, int]:
    """Every stage row (of every pipeline and version) → its rank in the default pipeline: by code
    when it is one of the default codes, else by its position (capped at the last rank). Leads of
    other pipelines are so counted where a stage of the same place would be (docs/indicators.md)."""
    ranks = {}
    # every webhook batch asks: written out (core.rows)
    table = connection.ops.quote_name(Stage._meta.db_table)
    for stage_id, code, position in sql_rows(f"SELECT id, code, position FROM {table}", [], [None] * 3):  # noqa: S608 -- our table
        if code in DEFAULT_STAGE_CODES:
            ranks[stage_id] = DEFAULT_STAGE_CODES.index(code) + 1
        else:
            ranks[stage_id] = max(1, min(int(position), MAX_RANK))
    return ranks


def _stage_rank_sql(stage: str) -> str:
    """`stage_ranks`' rank of the stage row `stage` (an alias of pipeline_stage), as SQL: for a
    statement that joins the stage instead of being given the ranks read before it."""
    codes = " ".join(f"WHEN '{code}' THEN {rank}" for rank, code in enumerate(DEFAULT_STAGE_CODES, start=1))
    greatest, least = ("GREATEST", "LEAST") if connection.vendor == "postgresql" else ("MAX", "MIN")
    return f"CASE {stage}.code {codes} ELSE {greatest}(1, {least}({stage}.position, {MAX_RANK})) END"


def _rank_case(ranks: dict[int, int], column: str = "m.to_stage_id") -> str:
    # Stage ids and ranks are integers read from the database: safe to inline.
    whens = " ".join(f"WHEN {int(stage_id)} THEN {int(rank)}" for stage_id, rank in ranks.items())
    return f"CASE {column} {whens} ELSE 1 END" if whens else "1"


def _epoch(column: str) -> str:
    if connection.vendor == "postgresql":
        return f"CAST(EXTRACT(EPOCH FROM {column}) AS BIGINT)"
    return f"CAST(strftime('%%s', {column}) AS INTEGER)"


def _tables() -> tuple[str, str, str]:
    return IndicatorLead._meta.db_table, IndicatorSpan._meta.db_table, IndicatorTouch._meta.db_table


def _needs_list(ranks: dict[int, int]) -> str:
    """The ids of the stages the conversion indicator counts as reached, as SQL (integers read from
    the database: safe to inline)."""
    needs_ids = [sid for sid, rank in ranks.items() if rank >= RANK_NEEDS_CONFIRMED] or [0]
    return ", ".join(str(int(i)) for i in needs_ids)


def _open_end() -> object:
    return connection.ops.adapt_datetimefield_value(SPAN_OPEN_END)


def _statements(ranks: dict[int, int], leads: str = "BETWEEN %s AND %s") -> list[tuple[str, list[object]]]:
    """INSERT … SELECT for the lead ids `leads` selects (a range by default; the caller appends its
    values); spans before touches (a touch's rank reads them)."""
    leads_table, spans_table, touches_table = _tables()
    needs_list, open_end = _needs_list(ranks), _open_end()
    leads_sql = f"""
        INSERT INTO {leads_table} (lead_id, region_id, owner_id, arrived_at, needs_confirmed_at)
        SELECT l.id, l.region_id, l.owner_id, l.created_at,
               (SELECT MIN(m.at) FROM pipeline_stagemove m
                 WHERE m.lead_id = l.id AND m.to_stage_id IN ({needs_list}))
          FROM crm_lead l WHERE l.id {leads}"""  # noqa: S608 -- our tables, integer stage ids; values bound
    spans_sql = f"""
        INSERT INTO {spans_table} (lead_id, region_id, owner_id, rank, entered_at, entered_s, left_at)
        SELECT s.lead_id, l.region_id, l.owner_id, s.rank, s.at, {_epoch("s.at")}, COALESCE(s.next_at, %s)
          FROM (SELECT m.lead_id, m.at, m.to_status, {_rank_case(ranks)} AS rank,
                       LEAD(m.at) OVER (PARTITION BY m.lead_id ORDER BY m.at, m.id) AS next_at
                  FROM pipeline_stagemove m WHERE m.lead_id {leads}) s
          JOIN crm_lead l ON l.id = s.lead_id
         WHERE s.to_status = 'open'"""  # noqa: S608
    touches_sql = f"""
        INSERT INTO {touches_table} (touch_id, lead_id, region_id, owner_id, at, rank, responded)
        SELECT t.id, t.lead_id, l.region_id, l.owner_id, t.at,
               COALESCE((SELECT sp.rank FROM {spans_table} sp
                          WHERE sp.lead_id = t.lead_id AND sp.entered_at <= t.at AND sp.left_at > t.at
                          ORDER BY sp.entered_at DESC LIMIT 1), 0),
               COALESCE(t.responded, FALSE)
          FROM engagement_touch t JOIN crm_lead l ON l.id = t.lead_id
         WHERE t.direction = 'outbound' AND t.lead_id {leads}"""  # noqa: S608
    return [(leads_sql, []), (spans_sql, [open_end]), (touches_sql, [])]


def _arrival_statements(leads: str) -> list[tuple[str, list[object]]]:
    """`_statements` for leads that have just arrived (`leads_arrived`): a lead's only fact is then
    its arrival move — open, into the lead's stage, at its `created_at` (crm.services.lead_arrive,
    the webhook batch and the import chunk all write it so) — and it has no touch. Its rows follow
    from the lead alone: the same rows, without reading the moves back (the lead's look-up of its
    first qualifying move, the spans' window over its moves: half an import chunk's refresh,
    measured) and without the touches statement, which finds nothing. The lead's stage is joined
    for its rank, rather than the ranks read first (`stage_ranks`): that read was a round trip of
    its own in every webhook batch, while the batch holds the intake's turn. Tests compare these
    rows with a rebuild from the facts, column for column."""
    leads_table, spans_table, _ = _tables()
    stages, open_end = connection.ops.quote_name(Stage._meta.db_table), _open_end()
    rank = _stage_rank_sql("st")
    leads_sql = f"""
        INSERT INTO {leads_table} (lead_id, region_id, owner_id, arrived_at, needs_confirmed_at)
        SELECT l.id, l.region_id, l.owner_id, l.created_at,
               CASE WHEN {rank} >= {RANK_NEEDS_CONFIRMED} THEN l.created_at END
          FROM crm_lead l JOIN {stages} st ON st.id = l.stage_id WHERE l.id {leads}"""  # noqa: S608 -- our tables; values bound
    spans_sql = f"""
        INSERT INTO {spans_table} (lead_id, region_id, owner_id, rank, entered_at, entered_s, left_at)
        SELECT l.id, l.region_id, l.owner_id, {rank}, l.created_at, {_epoch("l.created_at")}, %s
          FROM crm_lead l JOIN {stages} st ON st.id = l.stage_id WHERE l.id {leads}"""  # noqa: S608
    return [(leads_sql, []), (spans_sql, [open_end])]


def _refresh(leads: str, values: list[object], ranks: dict[int, int], *, new: bool = False) -> None:
    """The per-lead rows of the leads `leads` (an SQL condition on the id, with its `values`);
    `new`: they have just arrived (see `_arrival_statements`)."""
    with connection.cursor() as cursor:
        if new:
            statements = _arrival_statements(leads)
        else:
            for table in _tables():
                cursor.execute(f"DELETE FROM {table} WHERE lead_id {leads}", values)  # noqa: S608
            statements = _statements(ranks, leads)
        for sql, params in statements:
            cursor.execute(sql, [*params, *values])


def _refresh_range(lo: int, hi: int, ranks: dict[int, int]) -> None:
    _refresh("BETWEEN %s AND %s", [lo, hi], ranks)


def indicator_facts_refresh(*, lead_id: int) -> None:
    """A move or a touch of this lead was appended (or a response recorded): rebuild its rows and
    move its contribution in the day ledgers. Called by `insights.receivers` when the pipeline or
    engagement services signal the fact (`crm.signals`), inside their transaction, after it is saved."""
    indicator_facts_refresh_many(lead_ids=[lead_id])


def indicator_facts_refresh_many(*, lead_ids: list[int], new: bool = False) -> None:
    """The same for leads written in bulk past the services (webhook batches, import chunks): a
    few statements per 900 leads, not a few per lead — or per run of up to RANGE_LEADS consecutive
    ids (an import chunk's leads have consecutive ids), selected as a range: the same rows, with a
    tenth of the statements. `new`: the leads have just arrived and have no rows yet (`leads_arrived`),
    so there is nothing to take out first — half the statements of a webhook batch's refresh — and
    their rows follow from the leads themselves (`_arrival_statements`)."""
    ranks = stage_ranks() if lead_ids and not new else {}  # arrivals join their stage instead
    loose: list[int] = []
    for lo, hi in _id_runs(lead_ids):
        if hi - lo + 1 < RANGE_MIN_LEADS:
            loose.extend(range(lo, hi + 1))
            continue
        for start in range(lo, hi + 1, RANGE_LEADS):
            _refresh_with_ledgers(
                "BETWEEN %s AND %s", [start, min(start + RANGE_LEADS - 1, hi)], ranks, new=new
            )
    for start in range(0, len(loose), 900):
        part: list[object] = list(loose[start : start + 900])
        _refresh_with_ledgers(f"IN ({', '.join('%s' for _ in part)})", part, ranks, new=new)


RANGE_MIN_LEADS = 100  # a shorter run of consecutive ids is selected by an IN list
RANGE_LEADS = 20_000


def _id_runs(lead_ids: list[int]) -> list[tuple[int, int]]:
    """The distinct ids as runs of consecutive ids, (first, last), in increasing order."""
    runs: list[tuple[int, int]] = []
    for lead_id in sorted(set(lead_ids)):
        if runs and lead_id == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], lead_id)
        else:
            runs.append((lead_id, lead_id))
    return runs


def _refresh_with_ledgers(
    leads: str, values: list[object], ranks: dict[int, int], *, new: bool = False
) -> None:
    """The rows of the leads `leads` selects, their old contribution taken out of the ledgers and
    the new one added, in one transaction (`new`: they have neither rows nor a contribution yet,
    and no touches: their rows and ledger additions are sent together, `core.rows.statements_run`)."""
    if new:
        where = f"lead_id {leads}"
        statements_run(
            [(sql, [*params, *values]) for sql, params in _arrival_statements(leads)]
            + ledger_statements(sign=1, where=where, params=values, touches=False)
        )
        return
    with transaction.atomic():
        if not new:
            ledgers_add(sign=-1, where=f"lead_id {leads}", params=values)
        _refresh(leads, values, ranks, new=new)
        ledgers_add(sign=1, where=f"lead_id {leads}", params=values)


def indicator_facts_owner_sync(*, lead_ids: list[int]) -> None:
    """These leads changed owner (routing, reassignment, an edit): their rows and ledger counts
    follow the owner, so rep and team values count them for the new owner. Only the leads whose
    rows count another owner are touched: a lead without rows yet (an import routes its new leads
    before their rows are made) or already in step costs a share of one look-up, not a ledger
    subtract-update-add. (A lead's three kinds of rows are written together, all with the lead's
    owner of the moment, so its IndicatorLead row says for whom they all count.)"""
    tables = _tables()
    leads_table = tables[0]
    with transaction.atomic(), connection.cursor() as cursor:
        for start in range(0, len(lead_ids), 900):
            asked = lead_ids[start : start + 900]
            cursor.execute(
                f"SELECT il.lead_id FROM {leads_table} il JOIN crm_lead l ON l.id = il.lead_id "  # noqa: S608
                f"WHERE il.lead_id IN ({', '.join('%s' for _ in asked)}) "
                "AND COALESCE(il.owner_id, 0) <> COALESCE(l.owner_id, 0)",
                asked,
            )
            part = sorted(row[0] for row in cursor.fetchall())
            if not part:
                continue
            where = f"lead_id IN ({', '.join('%s' for _ in part)})"
            ledgers_add(sign=-1, where=where, params=part)
            for table in tables:
                cursor.execute(
                    f"UPDATE {table} SET owner_id = (SELECT l.owner_id FROM crm_lead l "  # noqa: S608
                    f"WHERE l.id = {table}.lead_id) WHERE {where}",
                    part,
                )
            ledgers_add(sign=1, where=where, params=part)


def indicator_facts_rebuild(
    *, chunk: int = 50_000, progress: Callable[[int, int], None] | None = None
) -> int:
    """Every lead's rows, in id ranges of `chunk` leads (one transaction each), then the day
    ledgers from them. Returns the number of leads. Run after bulk loads (demo seed, imports) that
    bypass the services."""
    from salesloop.crm.models import Lead

    ranks = stage_ranks()
    bounds = Lead.objects.order_by().values_list("id", flat=True)
    first = bounds.order_by("id").first()
    last = bounds.order_by("-id").first()
    if first is None or last is None:
        with transaction.atomic(), connection.cursor() as cursor:
            for table in _tables():
                cursor.execute(f"DELETE FROM {table}")  # noqa: S608
            ledgers_rebuild()
        return 0
    with transaction.atomic(), connection.cursor() as cursor:
        # rows of deleted leads go with them (CASCADE); rows outside the id range cannot exist
        for table in _tables():
            cursor.execute(f"DELETE FROM {table} WHERE lead_id < %s OR lead_id > %s", [first, last])  # noqa: S608
    for lo in range(first, last + 1, chunk):
        hi = min(lo + chunk - 1, last)
        with transaction.atomic():
            _refresh_range(lo, hi, ranks)
        if progress is not None:
            progress(hi - first + 1, last - first + 1)
    with transaction.atomic():
        ledgers_rebuild()
    return Lead.objects.count()
