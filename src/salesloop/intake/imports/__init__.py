"""Bulk import of leads from CSV and Excel files (SPEC C1.5).

The per-event intake path (`salesloop.intake.services`) costs a dozen queries per lead; a million-row
file would take hours through it. This package reads the file as a stream and resolves identities,
deduplicates and writes in chunks of a few thousand rows with a fixed number of queries per chunk,
with the same rules as the per-event path: a known person becomes a touch (回流) on their open
lead, a new one a lead in the region pool.

Modules: `files` (formats, encodings, headers), `mapping` (columns → lead fields), `rows` and
`phone_fast` (one row → a clean candidate or a reason to reject it), `pipeline` and `reader`
(reading and checking rows in a reader process), `engine` (a chunk: plan, then write), `lookups`
(a chunk's queries), `bulk` (fast inserts per database), `services` (the job's life),
`selectors`, `tasks`, `api`, `views`, `urls`.
"""
