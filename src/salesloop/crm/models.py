from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

from salesloop.core import clock
from salesloop.core.models import BaseModel


class Channel(models.TextChoices):
    """Where a lead came from (SPEC C1.1)."""

    DOUYIN = "douyin", _("Douyin form")
    WECOM = "wecom", _("WeCom")
    WEB_FORM = "web_form", _("Website inquiry")
    CALL_400 = "call_400", _("400 call")
    CARD = "card", _("Trade-show card")
    REFERRAL = "referral", _("Customer referral")
    API = "api", _("API")
    IMPORT = "import", _("Import")
    MANUAL = "manual", _("Entered by hand")


class CompanySize(models.TextChoices):
    S = "1-49", "1-49"
    M = "50-199", "50-199"
    L = "200-999", "200-999"
    XL = "1000+", "1000+"


def company_key(name: str) -> str:
    """A company name reduced to what identifies it: 「杭州星河新能源科技有限公司」 and
    「杭州星河新能源科技（有限公司）」 share a key. Used to find the same company written twice."""
    import re
    import unicodedata

    text = unicodedata.normalize("NFKC", name or "").lower()
    text = re.sub(r"[\s\-_·.,，。()（）\[\]【】\"'“”]+", "", text)
    for suffix in (
        "股份有限公司",
        "有限责任公司",
        "有限公司",
        "集团公司",
        "集团",
        "公司",
        "coltd",
        "ltd",
        "inc",
    ):
        if text.endswith(suffix) and len(text) > len(suffix):
            text = text[: -len(suffix)]
            break
    return text[:200]


class Customer(BaseModel):
    # Not indexed: nothing looks a customer up by its exact name — identity goes by `name_key`,
    # search by `icontains`, which no B-tree index serves, lists by id. The index cost every
    # insert a probe in random order (an import of a million rows rewrote most of its pages
    # every chunk).
    name = models.CharField(max_length=200)
    name_key = models.CharField(
        max_length=200,
        blank=True,
        default="",
        help_text="company_key(name), kept by the services",
    )
    industry = models.CharField(max_length=40, blank=True, default="")
    size = models.CharField(max_length=10, choices=CompanySize.choices, blank=True, default="")
    province = models.ForeignKey(
        "accounts.Province",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        db_index=False,  # customer_province_idx
    )
    city = models.CharField(max_length=40, blank=True, default="")
    custom_fields = models.JSONField(
        default=dict, blank=True, help_text="values of the organisation's custom fields, by field name"
    )
    health_score = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="0-100, a projection kept by the health app (SPEC C3)"
    )

    class Meta:
        ordering = ["-id"]
        verbose_name = _("Customer")
        verbose_name_plural = _("Customers")
        # Declared here rather than with db_index: on PostgreSQL a db_index on a text column (a
        # province's code is the key) also builds a `varchar_pattern_ops` copy for LIKE, which
        # nothing runs on these — two more index inserts per new customer.
        indexes = [
            models.Index(fields=["name_key"], name="customer_name_key_idx"),
            models.Index(fields=["province"], name="customer_province_idx"),
        ]

    def __str__(self) -> str:
        return self.name


class Contact(BaseModel):
    customer = models.ForeignKey(
        Customer, null=True, blank=True, on_delete=models.PROTECT, related_name="contacts"
    )
    name = models.CharField(max_length=80)
    title = models.CharField(max_length=80, blank=True, default="")
    phone = models.CharField(max_length=20, blank=True, default="", help_text="E.164, e.g. +8613800138000")
    wecom_external_id = models.CharField(max_length=64, blank=True, default="")
    email = models.EmailField(blank=True, default="")

    class Meta:
        ordering = ["-id"]
        verbose_name = _("Contact")
        verbose_name_plural = _("Contacts")
        # A person is known by phone or WeCom id (SPEC C1.4): at most one contact per number, so that
        # concurrent arrivals of one number resolve to one person (the loser of the race gets the
        # IntegrityError and becomes a touch).
        constraints = [
            models.UniqueConstraint(
                fields=["phone"], condition=~models.Q(phone=""), name="contact_phone_unique"
            ),
            models.UniqueConstraint(
                fields=["wecom_external_id"],
                condition=~models.Q(wecom_external_id=""),
                name="contact_wecom_unique",
            ),
        ]
        # A person is also known by e-mail, which most lead lists leave blank: only the contacts
        # that have one are indexed, not an entry for the blank per contact. Look-ups repeat the
        # condition (`core.rows.not_blank`), without which SQLite does not use the index.
        indexes = [models.Index(fields=["email"], condition=~models.Q(email=""), name="contact_email_idx")]

    def __str__(self) -> str:
        return self.name


class LeadStatus(models.TextChoices):
    OPEN = "open", _("Open")
    WON = "won", _("Won")
    LOST = "lost", _("Lost")


class Lead(BaseModel):
    """A sales lead. `stage`, `status` and `stage_entered_at` are a projection of its StageMoves
    (DESIGN.md rule 1), kept on the row so lists can filter and sort by them with an index."""

    title = models.CharField(max_length=200)
    customer = models.ForeignKey(Customer, on_delete=models.PROTECT, related_name="leads")
    contact = models.ForeignKey(
        Contact, null=True, blank=True, on_delete=models.PROTECT, related_name="leads"
    )
    source = models.CharField(max_length=20, choices=Channel.choices)
    campaign = models.CharField(max_length=120, blank=True, default="")
    # owner, region and stage are indexed by the composite indexes below, not on their own.
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="leads",
        db_index=False,
    )
    region = models.ForeignKey(
        "accounts.Region",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="leads",
        db_index=False,
        help_text="the region responsible for the lead: the region of the customer's province",
    )
    pipeline = models.ForeignKey(
        "pipeline.Pipeline", on_delete=models.PROTECT, related_name="leads", db_index=False
    )
    stage = models.ForeignKey(
        "pipeline.Stage", on_delete=models.PROTECT, related_name="leads", db_index=False
    )
    status = models.CharField(max_length=10, choices=LeadStatus.choices, default=LeadStatus.OPEN)
    lost_reason = models.CharField(max_length=200, blank=True, default="")
    expected_amount = models.DecimalField(max_digits=14, decimal_places=2, default=Decimal("0.00"))
    stage_entered_at = models.DateTimeField(default=clock.now)
    assigned_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)
    custom_fields = models.JSONField(
        default=dict,
        blank=True,
        help_text="values of the organisation's custom fields, by field name (routing conditions read them)",
    )
    health_score = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="0-100, a projection of the latest health score kept by the health app (SPEC C3)",
    )
    referred_by = models.ForeignKey(
        Customer,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="referrals",
        db_index=False,  # lead_referred_by_idx: only the referred
        help_text="the existing customer who referred this lead (老客转介)",
    )
    merged_into = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="merged_leads",
        db_index=False,  # lead_merged_into_idx: only the merged
        help_text="set when this lead was merged into another; cleared by un-merge",
    )

    class Meta:
        ordering = ["-id"]
        verbose_name = _("Lead")
        verbose_name_plural = _("Leads")
        # Lists page by id descending (keyset); each index leads with a filter a list really uses.
        # Its id runs ascending all the same: a B-tree is read backwards as fast as forwards, and
        # an arriving lead, whose id is the largest, then goes to the right end of its key's range,
        # where a full page splits 90/10 and stays packed. With `-id` every arrival went to the left
        # end and each split left two half-empty pages: the indexes a third larger, and a lead's
        # insert ~3 µs slower on both databases (measured, bench/README.md).
        indexes = [
            models.Index(fields=["owner", "id"], name="lead_owner_idx"),
            models.Index(fields=["owner", "stage", "id"], name="lead_owner_stage_idx"),
            models.Index(fields=["region", "id"], name="lead_region_idx"),
            models.Index(fields=["region", "stage", "id"], name="lead_region_stage_idx"),
            models.Index(fields=["stage", "id"], name="lead_stage_idx"),
            models.Index(fields=["status", "id"], name="lead_status_idx"),
            models.Index(fields=["source", "id"], name="lead_source_idx"),
            models.Index(fields=["created_at"], name="lead_created_idx"),
            # Nearly every lead is neither merged nor referred: the look-ups by these keys (a
            # customer's referrals, a lead's merged leads, the delete collector's) go through
            # indexes of the rows that have one, not one entry per lead (two of a lead's index
            # inserts, ~5% of them, at every arrival and import).
            models.Index(
                fields=["merged_into"],
                condition=models.Q(merged_into__isnull=False),
                name="lead_merged_into_idx",
            ),
            models.Index(
                fields=["referred_by"],
                condition=models.Q(referred_by__isnull=False),
                name="lead_referred_by_idx",
            ),
            # The red-flag and "healthy" filters (a score compared with the red line). A lead has no
            # score until a fact arrives — none has on arrival — and "unknown" is no index's work, so
            # only scored leads are indexed. (Routing's open-lead counts per rep, which had an index
            # of their own, are kept rows now: routing.loads.)
            models.Index(
                fields=["health_score", "id"],
                condition=models.Q(health_score__isnull=False),
                name="lead_health_idx",
            ),
        ]

    def __str__(self) -> str:
        return self.title


def attachment_path(instance: Attachment, filename: str) -> str:
    import uuid

    return f"attachments/{clock.now():%Y/%m}/{uuid.uuid4().hex}/{filename[-100:]}"


class Attachment(models.Model):
    """A file or a link attached to a lead, of a kind (e.g. `pain_points`, `deck_link`, `proposal`):
    stage gates require kinds (SPEC C2.2), tracked documents share them (C3.4). Appended, never edited."""

    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="attachments", db_index=False)
    kind = models.SlugField(max_length=40)
    title = models.CharField(max_length=200)
    file = models.FileField(upload_to=attachment_path, max_length=300, blank=True, default="")
    url = models.URLField(max_length=500, blank=True, default="")
    content_type = models.CharField(max_length=100, blank=True, default="")
    size = models.PositiveIntegerField(default=0)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(default=clock.now, editable=False)
    removed_at = models.DateTimeField(null=True, blank=True, help_text="withdrawn: no longer counts")

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["lead", "kind"], name="attachment_lead_kind_idx")]
        constraints = [
            models.CheckConstraint(
                condition=~models.Q(file="") | ~models.Q(url=""), name="attachment_file_or_url"
            )
        ]
        verbose_name = _("Attachment")
        verbose_name_plural = _("Attachments")

    def __str__(self) -> str:
        return self.title
