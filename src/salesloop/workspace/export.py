"""The lead export (SPEC C10.1 "exports", and "every export logged"): a CSV of the leads a person
may see, with the list's filters, custom fields as columns labelled in the reader's language.

It streams: rows are read by keyset in chunks (`id < last`, newest first), so a million leads cost
memory for one chunk. Phones and WeCom ids are unmasked only on the rows the reader may see them on
(the owner, their manager, admins — `crm.selectors.lead_personal_data_visible`), masked elsewhere.
The export itself is written to the personal-data access log before the first row, and each
contact whose details leave unmasked gets its own entry (kind export), chunk by chunk."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from typing import Any

from django.utils import translation
from django.utils.translation import gettext as _

from salesloop.accounts.models import Region
from salesloop.core import clock
from salesloop.core.models import PersonalDataAccess
from salesloop.core.roles import mask_identifier, mask_phone, may_see_personal_data
from salesloop.crm.models import Attachment, Channel, LeadStatus
from salesloop.crm.selectors import LeadFilters, leads_filtered
from salesloop.pipeline.models import Stage
from salesloop.workspace.models import CustomField
from salesloop.workspace.selectors import (
    custom_field_label,
    custom_fields_by_entity,
    custom_value_display,
)

CHUNK = 2000
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: Any) -> str:
    """Text as a spreadsheet shows it, never as a formula (CSV injection)."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_STARTS) and not _is_number(text):
        return "'" + text
    return text


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def export_filename() -> str:
    return f"leads-{clock.now():%Y%m%d-%H%M}.csv"


def _header(lead_fields: list[CustomField], customer_fields: list[CustomField], language: str) -> list[str]:
    columns = [
        _("ID"),
        _("Lead"),
        _("Customer"),
        _("Stage"),
        _("Status"),
        _("Owner"),
        _("Region"),
        _("Source"),
        _("Campaign"),
        _("Contact"),
        _("Phone"),
        _("WeCom"),
        _("Expected amount"),
        _("Created"),
    ]
    columns += [custom_field_label(field, language) for field in lead_fields]
    columns += [
        _("Customer: %(field)s") % {"field": custom_field_label(field, language)} for field in customer_fields
    ]
    return columns


COLUMNS = (
    "id",
    "title",
    "customer__name",
    "stage_id",
    "status",
    "owner_id",
    "owner__display_name",
    "owner__first_name",
    "owner__last_name",
    "owner__username",
    "owner__region_id",
    "region_id",
    "source",
    "campaign",
    "contact_id",
    "contact__name",
    "contact__phone",
    "contact__wecom_external_id",
    "expected_amount",
    "created_at",
    "custom_fields",
    "customer__custom_fields",
)


def _file_names(
    rows: list[tuple[Any, ...]], lead_files: list[str], customer_files: list[str]
) -> dict[int, str]:
    """The attachments that file fields of this chunk point to, by id, in one query."""
    ids: set[int] = set()
    for row in rows:
        for values, names in ((row[-2], lead_files), (row[-1], customer_files)):
            for name in names:
                value = (values or {}).get(name)
                if isinstance(value, int):
                    ids.add(value)
    if not ids:
        return {}
    return {
        a.pk: f"{a.title} ({a.url or a.file.name})"
        for a in Attachment.objects.filter(pk__in=ids).only("id", "title", "url", "file")
    }


def _custom_cells(
    values: dict[str, Any], fields: list[CustomField], files: dict[int, str], language: str
) -> list[str]:
    cells = []
    for field in fields:
        value = (values or {}).get(field.name)
        if field.field_type == "file" and isinstance(value, int):
            cells.append(files.get(value, f"#{value}"))
        else:
            cells.append(custom_value_display(field, value, language))
    return cells


def lead_export_rows(*, user: Any, filters: LeadFilters, language: str, channel: str) -> Iterator[str]:
    """The CSV, line by line (the first line starts with a BOM so Excel reads it as UTF-8).

    Rows are read as plain values, not model instances, and names (stages, regions, statuses,
    sources) are looked up once: at a million rows the difference is minutes. The caller resolves
    `filters` first (a bad filter is refused before anything streams)."""
    with translation.override(language):
        definitions = custom_fields_by_entity()
        lead_fields, customer_fields = definitions["lead"], definitions["customer"]
        lead_files = [f.name for f in lead_fields if f.field_type == "file"]
        customer_files = [f.name for f in customer_fields if f.field_type == "file"]
        stages = {stage.pk: stage.label(language) for stage in Stage.objects.all()}
        regions = dict(Region.objects.values_list("pk", "name"))
        statuses = {value: str(label) for value, label in LeadStatus.choices}
        sources = {value: str(label) for value, label in Channel.choices}
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(_header(lead_fields, customer_fields, language))
        yield "\ufeff" + _drain(buffer)
        leads = leads_filtered(user=user, filters=filters)
        last_id: int | None = None
        while True:
            chunk_query = leads if last_id is None else leads.filter(id__lt=last_id)
            chunk = list(chunk_query.order_by("-id").values_list(*COLUMNS)[:CHUNK])
            if not chunk:
                break
            last_id = chunk[-1][0]
            files = _file_names(chunk, lead_files, customer_files)
            accesses = []
            for (
                lead_id,
                title,
                customer_name,
                stage_id,
                status,
                owner_id,
                display_name,
                first_name,
                last_name,
                username,
                owner_region_id,
                region_id,
                source,
                campaign,
                contact_id,
                contact_name,
                phone,
                wecom,
                amount,
                created_at,
                lead_values,
                customer_values,
            ) in chunk:
                # the same rule as the lead page (crm.selectors.lead_personal_data_visible)
                unmasked = contact_id is not None and may_see_personal_data(
                    user, owner_id=owner_id, owner_region_id=owner_region_id, record_region_id=region_id
                )
                if unmasked:
                    shown = [f for f, v in (("phone", phone), ("wecom_external_id", wecom)) if v]
                    if shown:
                        accesses.append(
                            PersonalDataAccess(
                                actor=user,
                                kind=PersonalDataAccess.Kind.EXPORT,
                                subject_type="crm.contact",
                                subject_id=str(contact_id),
                                fields=shown,
                                channel=channel,
                            )
                        )
                else:
                    phone, wecom = mask_phone(phone), mask_identifier(wecom)
                full_name = f"{first_name or ''} {last_name or ''}".strip()
                owner = (display_name or full_name or username) if owner_id else ""
                writer.writerow(
                    [
                        _cell(value)
                        for value in [
                            lead_id,
                            title,
                            customer_name,
                            stages.get(stage_id, ""),
                            statuses.get(status, status),
                            owner,
                            regions.get(region_id, ""),
                            sources.get(source, source),
                            campaign,
                            contact_name or "",
                            phone or "",
                            wecom or "",
                            amount,
                            created_at.isoformat(),
                            *_custom_cells(lead_values, lead_fields, files, language),
                            *_custom_cells(customer_values, customer_fields, files, language),
                        ]
                    ]
                )
            if accesses:
                PersonalDataAccess.objects.bulk_create(accesses)
            yield _drain(buffer)
            if len(chunk) < CHUNK:
                break


def _drain(buffer: io.StringIO) -> str:
    text = buffer.getvalue()
    buffer.seek(0)
    buffer.truncate()
    return text


def lead_export_start(*, user: Any, filters: LeadFilters, channel: str) -> None:
    """Check the filters (FilterError before a byte is sent) and log that the export happened,
    with its filters, whatever the rows turn out to hold."""
    leads_filtered(user=user, filters=filters)  # resolves stage codes and custom filters, or raises
    applied = {k: v for k, v in filters.as_query().items() if k != "custom"} | (filters.custom or {})
    PersonalDataAccess.objects.create(
        actor=user,
        kind=PersonalDataAccess.Kind.EXPORT,
        subject_type="crm.lead",
        subject_id="list",
        fields=["phone", "wecom_external_id", *sorted(f"filter:{k}={v}"[:200] for k, v in applied.items())],
        channel=channel,
    )
