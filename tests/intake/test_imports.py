"""Bulk import of leads from CSV and Excel (SPEC C1.5): reading files, guessing columns, the
preview, the run (dedup within the file and against the database, touches, rejects, progress),
the report, the pages, the API and who may do what."""

from __future__ import annotations

import csv
import io
import json
import random

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import IntegrityError, connection, transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.test.utils import CaptureQueriesContext
from django.urls import include, path
from django.utils.timezone import now as timezone_now

from salesloop.core.models import AuditEntry, PersonalDataAccess
from salesloop.crm.models import Contact, Customer, Lead
from salesloop.crm.phones import PhoneError, phone_parse
from salesloop.intake.imports import engine, files, services
from salesloop.intake.imports.files import ImportFileError
from salesloop.intake.imports.mapping import mapping_clean, mapping_guess
from salesloop.intake.imports.models import ImportJob, ImportRejectedRow, ImportStatus
from salesloop.intake.imports.phone_fast import phone_normalise
from salesloop.intake.imports.rows import json_object
from salesloop.intake.models import InboundEvent
from salesloop.notify.models import Notification
from salesloop.pipeline.models import StageMove
from salesloop.routing.models import Assignment
from salesloop.routing.selectors import assignment_explanation
from tests import factories

# ---- URLs: the project's, plus the import pages and API if the project does not mount them yet ----


def _api_base_and_patterns() -> tuple[str, list]:
    from ninja import NinjaAPI

    from salesloop import urls as project_urls
    from salesloop.api import BearerAuth, SessionAuth, UnicodeJSONRenderer, api, field_errors
    from salesloop.intake.imports.api import router

    patterns = list(project_urls.urlpatterns)
    if not any(getattr(p, "name", None) == "import-list" for p in _flatten(patterns)):
        patterns.append(path("intake/imports/", include("salesloop.intake.imports.urls")))
    if any(mounted is router for _, mounted in api._routers):
        return "/api/v1/imports", patterns
    # Not mounted in the project's API yet: the same router in a stand-in API with the project's
    # authentication and error answers.
    test_api = NinjaAPI(
        urls_namespace="imports-test", auth=[BearerAuth(), SessionAuth()], renderer=UnicodeJSONRenderer()
    )
    test_api.add_router("/imports", router)

    @test_api.exception_handler(PermissionDenied)
    def _forbidden(request: HttpRequest, exc: Exception) -> HttpResponse:
        return test_api.create_response(request, {"detail": str(exc)}, status=403)

    @test_api.exception_handler(Http404)
    def _not_found(request: HttpRequest, exc: Exception) -> HttpResponse:
        return test_api.create_response(request, {"detail": "Not found."}, status=404)

    @test_api.exception_handler(ValidationError)
    def _invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
        return test_api.create_response(request, {"detail": field_errors(exc)}, status=422)

    patterns.insert(0, path("imports-test-api/", test_api.urls))
    return "/imports-test-api/imports", patterns


def _flatten(patterns: list) -> list:
    found = []
    for pattern in patterns:
        found.append(pattern)
        found.extend(_flatten(getattr(pattern, "url_patterns", [])))
    return found


API, urlpatterns = _api_base_and_patterns()
pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

SHANGHAI = "13816200001"  # 上海 → 华东 (east)
SHANGHAI_2 = "13816200002"
HANGZHOU = "15805710001"  # 浙江 杭州 → 华东
FOSHAN = "13630000001"  # 广东 佛山 → 华南 (south)
HEADERS = ["姓名", "手机号", "公司名称", "省份", "需求", "广告计划", "预计金额"]


@pytest.fixture(autouse=True)
def media(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    return settings.MEDIA_ROOT


def csv_bytes(rows: list[list[str]], headers: list[str] = HEADERS, encoding: str = "utf-8") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(headers)
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


def upload(data: bytes, name: str = "leads.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type="text/csv")


def job_of(user, data: bytes, name: str = "leads.csv", mapping=None) -> ImportJob:
    return services.import_job_create(actor=user, upload=upload(data, name), name=name, mapping=mapping)


def run(job: ImportJob, user, capture) -> ImportJob:
    """Start the job; the test backend runs the task as soon as the start commits."""
    with capture(execute=True):
        services.import_start(actor=user, job=job)
    job.refresh_from_db()
    return job


def xlsx_bytes(rows: list[list[object]], title: str | None = None) -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    if title:
        sheet.append([title])
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def xls_bytes(sheets: dict[str, list[list[object]]], active: int = 0) -> bytes:
    """An Excel 97–2003 workbook (BIFF8, as Excel and WPS write it), opening on sheet `active`.
    A cell may be a date or a time (stored as a number of days with a date format, as Excel
    does), a bool, a number or text."""
    import datetime as dt

    import xlwt

    book = xlwt.Workbook(encoding="utf-8")
    dates = xlwt.easyxf(num_format_str="YYYY-MM-DD")
    times = xlwt.easyxf(num_format_str="HH:MM")
    for index, (name, rows) in enumerate(sheets.items()):
        sheet = book.add_sheet(name)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if isinstance(value, dt.date | dt.time):
                    sheet.write(r, c, value, times if isinstance(value, dt.time) else dates)
                elif value is not None:
                    sheet.write(r, c, value)
        sheet.set_selected(index == active)
        sheet.set_sheet_visible(index == active)  # WINDOW2's "displayed" flag: the sheet it opens on
    book.active_sheet = active
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


# ---- columns --------------------------------------------------------------------------------


class TestColumnGuessing:
    def test_it_knows_chinese_spreadsheet_headers(self):
        headers = [
            "姓名",
            "手机",
            "公司名称",
            "职位",
            "邮箱",
            "省份",
            "城市",
            "行业",
            "备注",
            "来源",
            "广告计划",
            "预计金额",
        ]
        assert mapping_guess(headers) == [
            "name", "mobile", "company", "title", "email", "province", "city", "industry", "remark",
            "origin", "campaign", "expected_amount",
        ]  # fmt: skip

    def test_it_knows_other_chinese_words_for_the_same_columns(self):
        headers = [
            "联系人",
            "联系电话",
            "客户名称",
            "职务",
            "电子邮件",
            "省",
            "市",
            "需求",
            "渠道",
            "活动",
            "金额",
        ]
        assert mapping_guess(headers) == [
            "name", "phone", "company", "title", "email", "province", "city", "remark", "origin",
            "campaign", "expected_amount",
        ]  # fmt: skip

    def test_it_knows_a_salesforce_leads_report(self):
        headers = [
            "Lead ID", "Lead Owner", "First Name", "Last Name", "Title", "Company / Account", "Phone",
            "Mobile", "Email", "Lead Source", "Lead Status", "State/Province", "City", "Industry",
            "Description", "Create Date",
        ]  # fmt: skip
        assert mapping_guess(headers) == [
            "external_id", "", "first_name", "last_name", "title", "company", "phone", "mobile", "email",
            "origin", "stage_hint", "province", "city", "industry", "remark", "",
        ]  # fmt: skip

    def test_it_knows_a_salesforce_data_loader_file(self):
        headers = ["Id", "FirstName", "LastName", "Company", "MobilePhone", "LeadSource", "State"]
        assert mapping_guess(headers) == [
            "external_id", "first_name", "last_name", "company", "mobile", "origin", "province",
        ]  # fmt: skip

    def test_it_knows_a_hubspot_contacts_export(self):
        headers = [
            "Record ID", "First Name", "Last Name", "Email", "Phone Number", "Mobile Phone Number",
            "Company Name", "Job Title", "State/Region", "City", "Industry", "Lifecycle Stage",
            "Contact owner", "Associated Company ID", "Email Opt Out", "Create Date",
        ]  # fmt: skip
        assert mapping_guess(headers) == [
            "external_id", "first_name", "last_name", "email", "phone", "mobile", "company", "title",
            "province", "city", "industry", "stage_hint", "", "", "", "",
        ]  # fmt: skip

    def test_a_header_with_a_field_inside_it_is_understood(self):
        assert mapping_guess(["客户手机号码", "所在公司名称", "客户姓名"]) == ["mobile", "company", "name"]

    def test_a_field_goes_to_its_first_column_only(self):
        assert mapping_guess(["公司", "公司名称", "手机", "手机"]) == ["company", "", "mobile", "mobile"]

    def test_the_user_overrides_the_guess_by_header_or_position(self):
        headers = ["客户", "号码", "备注"]
        assert mapping_clean(headers, {"号码": "phone", "0": "name"}) == ["name", "phone", ""]
        assert mapping_clean(headers, ["name", "mobile", "remark"]) == ["name", "mobile", "remark"]
        with pytest.raises(ValidationError, match="unknown field"):
            mapping_clean(headers, {"号码": "telephone"})
        with pytest.raises(ValidationError, match="no column"):
            mapping_clean(headers, {"微信": "name"})
        with pytest.raises(ValidationError, match="only one column"):
            mapping_clean(headers, ["company", "company", ""])

    def test_first_and_last_names_make_one_name(self, org):
        data = csv_bytes(
            [["小明", "王", SHANGHAI], ["John", "Smith", HANGZHOU]],
            headers=["First Name", "Last Name", "Mobile"],
        )
        job = job_of(org.carol, data)
        names = [row.candidate.name for row in services.import_preview(job=job)]
        assert names == ["王小明", "John Smith"]  # 姓 then 名, without a space, for Chinese names


# ---- files ----------------------------------------------------------------------------------


class TestFiles:
    def test_a_gbk_csv_from_chinese_excel_is_read(self, org, django_capture_on_commit_callbacks):
        # given the "CSV" Chinese Excel saves: GBK, no BOM
        data = csv_bytes([["王小明", SHANGHAI, "杭州星河科技有限公司", "", "", "", ""]], encoding="gbk")
        job = job_of(org.carol, data)
        assert (job.format, job.encoding, job.rows_total) == ("csv", "gb18030", 1)
        assert job.headers == HEADERS
        job = run(job, org.carol, django_capture_on_commit_callbacks)
        contact = Contact.objects.get()
        assert (contact.name, contact.customer.name) == ("王小明", "杭州星河科技有限公司")

    def test_a_utf8_bom_does_not_stick_to_the_first_header(self, org):
        job = job_of(org.carol, b"\xef\xbb\xbf" + csv_bytes([["李雷", SHANGHAI, "", "", "", "", ""]]))
        assert job.encoding == "utf-8-sig"
        assert job.headers[0] == "姓名" and job.mapping[0] == "name"

    def test_semicolons_and_a_title_row_are_recognised(self, org):
        data = "2024年展会客户名单\n姓名;手机\n李雷;13816200001\n".encode()
        job = job_of(org.carol, data)
        assert (job.delimiter, job.header_row, job.headers) == (";", 2, ["姓名", "手机"])

    def test_an_xlsx_with_numbers_for_phones_is_read(self, org, django_capture_on_commit_callbacks):
        data = xlsx_bytes(
            [["姓名", "手机号", "公司名称"], ["韩梅梅", int(FOSHAN), "佛山测试有限公司"], [None, None, None]],
            title="客户名单",
        )
        job = job_of(org.carol, data, name="客户.xlsx")
        # the upload counts rows by the size the sheet states (its trailing blank row included)
        assert (job.format, job.header_row, job.rows_total) == ("xlsx", 2, 2)
        job = run(job, org.carol, django_capture_on_commit_callbacks)
        assert (job.rows_done, job.rows_total) == (1, 1)  # the run counts them exactly
        lead = Lead.objects.get()
        assert lead.contact.phone == "+86" + FOSHAN
        assert lead.region == org.south

    def test_an_old_xls_workbook_is_read_as_excel_shows_it(self, org, django_capture_on_commit_callbacks):
        """Excel 97–2003's format, what WPS and many systems' exports still write: a title row, a
        phone stored as a number, a date, a yes/no cell and a blank row read as the sheet shows
        them, and the rows counted exactly at upload."""
        import datetime as dt

        data = xls_bytes(
            {
                "客户": [
                    ["2024年展会客户名单"],
                    ["姓名", "手机号", "公司名称", "需求", "到访日期", "已加微信"],
                    ["韩梅梅", int(FOSHAN), "佛山测试有限公司", "要报价", dt.date(2024, 3, 1), True],
                    [None, None, None, None, None, None],
                    ["李雷", SHANGHAI, "", "", dt.time(14, 30), False],
                ]
            }
        )
        job = job_of(org.carol, data, name="客户.xls")
        assert (job.format, job.header_row, job.rows_total) == ("xls", 2, 2)
        assert job.headers == ["姓名", "手机号", "公司名称", "需求", "到访日期", "已加微信"]
        rows = list(files.rows_read(job.file.path, job))
        assert rows == [
            (3, ["韩梅梅", FOSHAN, "佛山测试有限公司", "要报价", "2024-03-01T00:00:00", "TRUE"]),
            (5, ["李雷", SHANGHAI, "", "", "14:30:00", "FALSE"]),
        ]
        job = run(job, org.carol, django_capture_on_commit_callbacks)
        assert (job.status, job.rows_done, job.created) == (ImportStatus.DONE, 2, 2)
        lead = Lead.objects.get(contact__phone="+86" + FOSHAN)
        assert (lead.region, lead.customer.name) == (org.south, "佛山测试有限公司")

    def test_an_xls_workbook_is_read_from_the_sheet_it_opens_on(self, org):
        data = xls_bytes(
            {
                "说明": [["这一页是说明", "不是名单"]],
                "名单": [["姓名", "手机号"], ["韩梅梅", FOSHAN]],
            },
            active=1,
        )
        job = job_of(org.carol, data, name="名单.xls")
        assert (job.headers, job.rows_total) == (["姓名", "手机号"], 1)

    def test_a_workbook_with_a_password_is_refused_saying_so(self, org):
        """Excel marks an encrypted .xls with a FILEPASS record among the workbook's first; a
        password-protected .xlsx is an encrypted package in the same container as an .xls, with no
        workbook stream in it."""
        plain = xls_bytes({"名单": [["姓名", "手机号"], ["韩梅梅", FOSHAN]]})
        codepage = b"\x42\x00\x02\x00"  # the CODEPAGE record's header: FILEPASS in its place
        assert codepage in plain
        encrypted_xls = plain.replace(codepage, b"\x2f\x00\x02\x00", 1)
        workbook_stream = "Workbook".encode("utf-16-le")
        encrypted_xlsx = plain.replace(workbook_stream, "Encrypte".encode("utf-16-le"), 1)
        for data, name in ((encrypted_xls, "名单.xls"), (encrypted_xlsx, "名单.xlsx")):
            with pytest.raises(ImportFileError, match="password") as refused:
                job_of(org.carol, data, name=name)
            assert refused.value.status == 415
        assert not ImportJob.objects.exists()

    def test_a_workbook_that_breaks_while_it_is_read_is_refused_as_unreadable(self, org):
        """The workbook opens, its sheet does not parse: the file's fault, said so, not a 500."""
        import zipfile

        whole = io.BytesIO(xlsx_bytes([["姓名", "手机号"], ["韩梅梅", FOSHAN]]))
        broken = io.BytesIO()
        with zipfile.ZipFile(whole) as source, zipfile.ZipFile(broken, "w") as target:
            for item in source.infolist():
                content = source.read(item.filename)
                if item.filename == "xl/worksheets/sheet1.xml":
                    content = content[: len(content) // 2]  # cut off in the middle of the rows
                target.writestr(item, content)
        with pytest.raises(ImportFileError, match="cannot be read") as refused:
            job_of(org.carol, broken.getvalue(), name="名单.xlsx")
        assert refused.value.status == 415

    @pytest.mark.parametrize(
        "data",
        [
            "<html><body><table><tr><td>姓名</td><td>手机</td></tr></table></body></html>".encode(),
            b"\xef\xbb\xbf  <table border=1><tr><td>x</td><td>y</td></tr></table>",
            b'<?xml version="1.0"?><Workbook xmlns="urn:schemas-microsoft-com:office:spreadsheet"/>',
        ],
    )
    def test_a_web_page_named_xls_is_refused_saying_what_it_is(self, org, data):
        """Many systems' "Excel export" is an HTML table or Excel 2003's XML with an .xls name:
        read as CSV it would import its markup as names."""
        with pytest.raises(ImportFileError, match="web page or XML") as refused:
            job_of(org.carol, data, name="导出.xls")
        assert refused.value.status == 415

    @pytest.mark.parametrize(
        ("data", "name", "status", "words"),
        [
            (b"", "empty.csv", 400, "empty"),
            (b"%PDF-1.4 binary", "leads.pdf", 415, "CSV and Excel"),
            (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, "old.xls", 415, ".xls"),
            (b"PK\x03\x04 not really a zip", "broken.xlsx", 415, "Excel"),
            ("姓名,手机\n".encode("gbk") + b"\x81\x20\xff,1\n", "odd.csv", 400, "neither UTF-8 nor GBK"),
            ("姓名,手机\n".encode(), "headers.csv", 400, "no data rows"),
        ],
    )
    def test_a_file_that_cannot_be_imported_is_refused_by_name(self, org, data, name, status, words):
        with pytest.raises(ImportFileError, match=words) as refused:
            job_of(org.carol, data, name=name)
        assert refused.value.status == status
        assert not ImportJob.objects.exists()

    def test_a_file_over_the_limit_is_refused_before_it_is_stored(self, org, monkeypatch, media):
        monkeypatch.setattr(files, "MAX_BYTES", 100)
        with pytest.raises(ImportFileError, match="limit") as refused:
            job_of(org.carol, csv_bytes([["x" * 200, SHANGHAI, "", "", "", "", ""]]))
        assert refused.value.status == 413
        assert not media.exists() or not any(media.rglob("*.csv"))


# ---- phones ---------------------------------------------------------------------------------


def test_the_fast_phone_path_agrees_with_phone_parse():
    rng = random.Random(7)
    numbers = [f"1{rng.randrange(10**10):010d}" for _ in range(3000)]
    numbers += [f"1{head}{rng.randrange(10**8):08d}" for head in range(30, 100) for _ in range(3)]
    written = []
    for number in numbers:
        written += [number, f"+86 {number[:3]} {number[3:7]} {number[7:]}", f"0086-{number}", f"86{number}"]
    written += [
        "１３８００１３８０００",
        "(+86)138.0013.8000",
        "138 0013 800",
        "12345",
        "010-6552 9988",
        "4008123123",
    ]
    for raw in written:
        try:
            expected = phone_parse(raw)
        except PhoneError as exc:
            with pytest.raises(PhoneError) as fast:
                phone_normalise(raw)
            assert str(fast.value) == str(exc)
        else:
            assert phone_normalise(raw) == expected, raw


@pytest.mark.parametrize(
    "pairs",
    [
        [("姓名", "王小明"), ("备注", 'say "hi"\\ \n\t\x00\x1f end'), ("空", "")],
        [("import_job", 7), ("row", 12), ("origin", "抖音 / \u2028 emoji 😀"), ("none", None)],
        [],
    ],
)
def test_json_objects_hold_exactly_their_pairs(pairs):
    text = json_object(pairs)
    assert json.loads(text) == dict(pairs)
    assert "\\u" not in text.replace("\\u0000", "").replace("\\u001f", "")  # Chinese kept as UTF-8


def test_a_candidate_carries_its_row_its_reading_and_its_extras_as_json():
    """The reader process encodes what a row becomes in JSON (a touch's payload and reading, a
    first move's extras), so the run does not; a repeated header keeps both cells."""
    from salesloop.intake.imports.rows import RowNormaliser

    headers = ["姓名", "手机号", "备注", "备注", "来源"]
    normaliser = RowNormaliser(headers, ["name", "mobile", "remark", "", "origin"])
    candidate = normaliser(7, ["王小明", "138 1629 9998", "想要报价", "第二列", " 抖音 "])
    assert json.loads(candidate.body) == {
        "姓名": "王小明", "手机号": "138 1629 9998",
        "备注": "想要报价", "备注 (2)": "第二列", "来源": " 抖音 ",
    }  # fmt: skip
    reading = json.loads(candidate.normalised_json)
    assert reading == candidate.normalised()
    assert (reading["phone"], reading["origin"], reading["remark"]) == ("+8613816299998", "抖音", "想要报价")
    assert json.loads("{" + candidate.extras + "}") == {"origin": "抖音"}
    assert normaliser(8, ["李雷", "13816299997", "", "", ""]).extras == ""


@pytest.mark.parametrize("value", [1.5, True, b"x", ["a"]])
def test_json_objects_refuse_what_a_row_never_holds(value):
    with pytest.raises(TypeError, match="json_object takes text"):
        json_object([("k", value)])


# ---- preview --------------------------------------------------------------------------------


def _known_lead(org, phone: str = SHANGHAI, owner=None) -> Lead:
    customer = factories.customer_make(province="31", name="上海已知客户有限公司")
    contact = factories.contact_make(customer=customer, phone="+86" + phone, name="老客户")
    return factories.lead_make(owner=owner, customer=customer, contact=contact)


def test_the_preview_decides_the_first_rows_and_writes_nothing(org):
    known = _known_lead(org)
    data = csv_bytes(
        [
            ["新人", HANGZHOU, "杭州星河科技有限公司", "", "", "", ""],
            ["老客户", f"+86 {SHANGHAI}", "", "", "", "", ""],
            ["新人又来", f"{HANGZHOU[:3]}-{HANGZHOU[3:7]}-{HANGZHOU[7:]}", "", "", "", "", ""],
            ["号码错", "1381620", "", "", "", "", ""],
        ]
    )
    job = job_of(org.carol, data)
    counts = [
        m.objects.count() for m in (Customer, Contact, Lead, StageMove, InboundEvent, ImportRejectedRow)
    ]

    preview = services.import_preview(job=job)

    assert [(r.row_number, r.outcome) for r in preview] == [
        (2, "new"), (3, "touch"), (4, "duplicate"), (5, "rejected"),
    ]  # fmt: skip
    assert preview[1].lead_id == known.pk
    assert "号码无效" in preview[3].reason
    assert preview[0].candidate.province_code == "33" and preview[0].candidate.city == "杭州"
    after = [m.objects.count() for m in (Customer, Contact, Lead, StageMove, InboundEvent, ImportRejectedRow)]
    assert after == counts
    job.refresh_from_db()
    assert (job.status, job.rows_done) == (ImportStatus.PREVIEWED, 0)


# ---- the run --------------------------------------------------------------------------------


class TestRun:
    @pytest.fixture
    def outcome(self, org, django_capture_on_commit_callbacks):
        """A file with every kind of row, imported by carol (manager, 华东)."""
        known = _known_lead(org, owner=org.alice)
        reused = factories.customer_make(province="33", name="杭州星河科技有限公司")
        data = csv_bytes(
            [
                [
                    "王小明",
                    HANGZHOU,
                    "杭州星河科技（有限公司）",
                    "",
                    "想要报价",
                    "双十一",
                    "3.5万",
                ],  # 2 new, reuses
                ["李雷", FOSHAN, "佛山测试有限公司", "", "", "", ""],  # 3 new, 华南 from the number
                [
                    "韩梅梅",
                    SHANGHAI_2,
                    "广州某某有限公司",
                    "广东",
                    "",
                    "",
                    "12,000",
                ],  # 4 new, 华南 from the row
                ["王小明", f"+86 {HANGZHOU[:3]} {HANGZHOU[3:7]} {HANGZHOU[7:]}", "", "", "", "", ""],  # 5 dup
                ["老客户", SHANGHAI, "", "", "又来咨询", "", ""],  # 6 touch on alice's lead
                ["老客户", f"0086{SHANGHAI}", "", "", "", "", ""],  # 7 duplicate of 6
                ["号码错", "1381620", "", "", "", "", ""],  # 8 rejected
                ["没号码", "", "某公司", "", "", "", ""],  # 9 rejected
                ["金额错", "13816200009", "", "", "", "", "很多"],  # 10 rejected
                ["公司太长", "13816200010", "公" * 201, "", "", "", ""],  # 11 rejected
            ]
        )
        job = run(job_of(org.carol, data), org.carol, django_capture_on_commit_callbacks)
        return job, known, reused

    def test_the_counts_add_up_and_progress_reaches_the_total(self, outcome):
        job, _, _ = outcome
        assert job.status == ImportStatus.DONE, job.error
        assert (job.created, job.touches, job.duplicates_in_file, job.rejected) == (3, 1, 2, 4)
        assert job.rows_done == job.rows_total == 10
        assert job.progress_percent == 100 and job.finished_at is not None

    def test_new_people_become_leads_in_their_regions_pool(self, outcome, org):
        _, _, reused = outcome
        leads = {
            lead.contact.name: lead for lead in Lead.objects.filter(source="import").select_related("contact")
        }
        assert set(leads) == {"王小明", "李雷", "韩梅梅"}
        wang, li, han = leads["王小明"], leads["李雷"], leads["韩梅梅"]
        assert wang.customer == reused  # same company_key: 杭州星河科技
        assert (wang.region, wang.campaign, str(wang.expected_amount)) == (org.east, "双十一", "35000.00")
        assert (li.region, li.customer.province_id, li.customer.city) == (org.south, "44", "佛山")
        assert (han.region, str(han.expected_amount)) == (org.south, "12000.00")
        for lead in leads.values():
            assert (lead.owner, lead.assigned_at, lead.status, lead.stage.code) == (
                None,
                None,
                "open",
                "screening",
            )
            assert lead.contact.phone.startswith("+86")

    def test_each_new_lead_enters_the_first_stage_with_its_explanation(self, outcome, org):
        job, _, _ = outcome
        wang = Lead.objects.get(source="import", contact__name="王小明")
        move = StageMove.objects.get(lead=wang)
        assert move.explanation["kind"] == "stage_move"
        assert (move.explanation["direction"], move.explanation["to_stage"]) == ("enter", "screening")
        assert (move.from_stage, move.to_stage.code, move.actor) == (None, "screening", org.carol)
        assert move.note == "想要报价"
        assert move.filled == {"import_job": job.pk, "row": 2}

    def test_a_known_person_is_a_touch_and_the_owner_hears_once(self, outcome, org):
        _, known, _ = outcome
        assert Lead.objects.filter(contact=known.contact).count() == 1  # no new lead
        events = InboundEvent.objects.filter(lead=known).order_by("id")
        assert [e.status for e in events] == ["touch", "touch"]  # rows 6 and 7
        assert events[0].source.slug == services.IMPORT_SOURCE_SLUG
        assert json.loads(events[0].body)["需求"] == "又来咨询"
        notes = Notification.objects.filter(user=org.alice)
        assert notes.count() == 1 and notes.get().link == f"/leads/{known.pk}/"

    def test_a_duplicate_in_the_file_is_a_touch_on_the_lead_its_first_row_created(self, outcome):
        wang = Lead.objects.get(source="import", contact__name="王小明")
        assert Contact.objects.filter(phone="+86" + HANGZHOU).count() == 1
        assert InboundEvent.objects.filter(lead=wang, status="touch").count() == 1

    def test_rejected_rows_are_reported_with_their_reasons(self, outcome, client, org):
        job, _, _ = outcome
        client.force_login(org.carol)
        response = client.get(f"/intake/imports/{job.pk}/rejected.csv")
        assert response.status_code == 200
        body = b"".join(response.streaming_content)
        assert body.startswith(b"\xef\xbb\xbf")  # Excel opens UTF-8 Chinese only with a BOM
        rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
        assert rows[0] == [*HEADERS, "原因", "原行号"]
        reasons = {row[-1]: row[-2] for row in rows[1:]}
        assert set(reasons) == {"8", "9", "10", "11"}
        assert "号码无效" in reasons["8"] and "1381620" in reasons["8"]
        assert "无法识别" in reasons["9"]
        assert "金额" in reasons["10"]
        assert "公司名称" in reasons["11"] and "200" in reasons["11"]
        assert rows[1][:2] == ["号码错", "1381620"]  # the original cells, to fix and import again
        assert PersonalDataAccess.objects.filter(actor=org.carol, kind="export").count() == 1

    def test_the_run_is_audited_once(self, outcome):
        job, _, _ = outcome
        entry = AuditEntry.objects.get(action="import.run")
        assert entry.target_id == str(job.pk)
        assert (entry.after["created"], entry.after["rejected"], entry.after["status"]) == (3, 4, "done")


def test_a_second_import_of_the_same_file_only_touches(org, django_capture_on_commit_callbacks):
    data = csv_bytes([["甲", SHANGHAI, "", "", "", "", ""], ["乙", HANGZHOU, "", "", "", "", ""]])
    run(job_of(org.carol, data), org.carol, django_capture_on_commit_callbacks)
    again = run(job_of(org.carol, data), org.carol, django_capture_on_commit_callbacks)
    assert (again.created, again.touches, again.duplicates_in_file) == (0, 2, 0)
    assert Lead.objects.count() == 2


def test_progress_moves_chunk_by_chunk(org, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr(services, "CHUNK_ROWS", 10)
    monkeypatch.setattr(services, "CHUNK_ROWS_MAX", 10)
    seen: list[int] = []
    remember = engine.ImportContext.remember

    def spy(self, plan, contact_ids):
        remember(self, plan, contact_ids)
        seen.append(ImportJob.objects.get(pk=self.job.pk).rows_done)

    monkeypatch.setattr(engine.ImportContext, "remember", spy)
    data = csv_bytes([[f"客户{i}", f"138162{i:05d}", "", "", "", "", ""] for i in range(35)])
    job = run(job_of(org.carol, data), org.carol, django_capture_on_commit_callbacks)
    assert seen == [10, 20, 30, 35]
    assert (job.rows_done, job.rows_total, job.created) == (35, 35, 35)


class TestChunkSizes:
    def test_chunks_grow_to_what_the_rate_does_in_the_target_time(self, monkeypatch):
        monkeypatch.setattr(services, "CHUNK_ROWS", 1000)
        monkeypatch.setattr(services, "CHUNK_ROWS_MAX", 50_000)
        monkeypatch.setattr(services, "CHUNK_SECONDS", 3.0)
        sizer = services.ChunkSizer()
        assert sizer.rows == 1000  # the first chunk: the bar moves soon
        sizer.record(1000, 0.5)  # 2,000 rows/s
        assert sizer.rows == 6000  # what 3 s take, in whole units
        sizer.record(6000, 0.5)  # 7,000 rows in 1 s
        assert sizer.rows == 21_000
        sizer.record(21_000, 0.1)  # very fast: capped
        assert sizer.rows == 50_000

    def test_a_slow_run_keeps_the_smallest_chunks(self, monkeypatch):
        monkeypatch.setattr(services, "CHUNK_ROWS", 1000)
        sizer = services.ChunkSizer()
        sizer.record(1000, 5.0)  # 200 rows/s: 600 rows would take 3 s
        assert sizer.rows == 1000

    def test_a_run_takes_its_chunks_at_the_sizes_it_chose(
        self, org, monkeypatch, django_capture_on_commit_callbacks
    ):
        # given chunks of 10 rows at first, allowed to grow to 20
        monkeypatch.setattr(services, "CHUNK_ROWS", 10)
        monkeypatch.setattr(services, "CHUNK_ROWS_MAX", 20)
        seen: list[int] = []
        remember = engine.ImportContext.remember

        def spy(self, plan, contact_ids):
            remember(self, plan, contact_ids)
            seen.append(ImportJob.objects.get(pk=self.job.pk).rows_done)

        monkeypatch.setattr(engine.ImportContext, "remember", spy)
        data = csv_bytes([[f"客户{i}", f"138162{i:05d}", "", "", "", "", ""] for i in range(55)])
        # when a fast run imports 55 rows
        job = run(job_of(org.carol, data), org.carol, django_capture_on_commit_callbacks)
        # then the first chunk has 10 rows, the next ones the largest size, the last the rest
        assert seen == [10, 30, 50, 55]
        assert (job.rows_done, job.created) == (55, 55)
        assert AuditEntry.objects.get(action="import.run").after["phases"]["largest_chunk"] == 20


def test_every_lead_an_import_creates_is_routed_with_its_trace(
    org, monkeypatch, django_capture_on_commit_callbacks
):
    from tests.routing.conftest import definition, in_force, rule

    # given a region round-robin in force, and chunks of two rows
    in_force(
        org.director,
        definition(
            rule("east", 10, when={"regions": ["east"]}, regions=["east"]),
            rule("south", 20, when={"regions": ["south"]}, regions=["south"]),
        ),
    )
    monkeypatch.setattr(services, "CHUNK_ROWS", 2)
    monkeypatch.setattr(services, "CHUNK_ROWS_MAX", 2)
    known = _known_lead(org, owner=org.alice)
    rows = [
        ["甲", SHANGHAI_2, "", "", "", "", ""],  # east
        ["乙", HANGZHOU, "", "", "", "", ""],  # east
        ["丙", FOSHAN, "", "", "", "", ""],  # south
        ["甲", SHANGHAI_2, "", "", "", "", ""],  # duplicate in the file: no second lead
        ["老客户", SHANGHAI, "", "", "", "", ""],  # touch on alice's lead: not routed again
        ["丁", "13816200003", "", "", "", "", ""],  # east
    ]
    # when the file is imported
    job = run(job_of(org.carol, csv_bytes(rows)), org.carol, django_capture_on_commit_callbacks)
    # then each new lead has one assignment, with the rule set's trace, and an owner by turns
    assert (job.status, job.created, job.touches, job.duplicates_in_file) == (ImportStatus.DONE, 4, 1, 1)
    imported = Lead.objects.filter(source="import").order_by("id")
    owners = [lead.owner_id for lead in imported]
    east_reps = sorted([org.alice.pk, org.bob.pk])
    assert owners == [east_reps[0], east_reps[1], org.erin.pk, east_reps[0]]
    for lead in imported:
        (assignment,) = Assignment.objects.filter(lead=lead)
        assert assignment_explanation(assignment)["kind"] == "assignment"
        assert assignment.rule_id == ("south" if lead.owner_id == org.erin.pk else "east")
        assert lead.assigned_at is not None
    assert not Assignment.objects.filter(lead=known).exists()
    assert AuditEntry.objects.get(action="import.run").after["routed"] == 4


def _regions_in_force(org) -> None:
    from tests.routing.conftest import definition, in_force, rule

    in_force(
        org.director,
        definition(
            rule("east", 10, when={"regions": ["east"]}, regions=["east"]),
            rule("south", 20, when={"regions": ["south"]}, regions=["south"]),
        ),
    )


NEW_PEOPLE = [
    [f"新人{i}", f"138162{i:05d}" if i % 3 else f"136300{i:05d}", "", "", "", "", ""] for i in range(7)
]


def test_a_chunk_writes_its_leads_and_assignments_as_routing_hands_over_their_owners(
    org, monkeypatch, django_capture_on_commit_callbacks
):
    """Routing runs in a thread beside the chunk's writes and hands the owners over a slice at a
    time; each slice's leads are written with their owners, and its assignments after them."""
    from salesloop.routing.services import BatchRouter

    _regions_in_force(org)
    monkeypatch.setattr(engine, "ROUTE_SLICE", 2)
    written: list[int] = []
    save_assignments = BatchRouter.save_assignments

    def spy(router, *, upto, writer=None):
        written.append(upto)
        save_assignments(router, upto=upto, writer=writer)

    monkeypatch.setattr(BatchRouter, "save_assignments", spy)
    # when seven new people, east (上海) and south (佛山), are imported in one chunk
    job = run(job_of(org.carol, csv_bytes(NEW_PEOPLE)), org.carol, django_capture_on_commit_callbacks)
    # then the assignments were written two by two as routing handed them over
    assert (job.status, job.created) == (ImportStatus.DONE, 7)
    assert written[:4] == [2, 4, 6, 7]
    # and every lead has the owner its one assignment names, east by turns
    imported = list(Lead.objects.filter(source="import").order_by("id"))
    for lead in imported:
        (assignment,) = Assignment.objects.filter(lead=lead)
        assert assignment.assignee_id == lead.owner_id is not None
    east = [lead.owner_id for lead in imported if lead.owner_id != org.erin.pk]
    assert east == [sorted([org.alice.pk, org.bob.pk])[i % 2] for i in range(len(east))]


def test_a_routing_failure_fails_its_chunk_and_keeps_nothing_of_it(
    org, monkeypatch, django_capture_on_commit_callbacks
):
    import threading

    from salesloop.routing.services import BatchRouter

    _regions_in_force(org)
    monkeypatch.setattr(engine, "ROUTE_SLICE", 2)
    decide = BatchRouter.decide
    calls = {"n": 0}

    def breaking(router, lead_id, facts):
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("the rule engine broke")
        return decide(router, lead_id, facts)

    monkeypatch.setattr(BatchRouter, "decide", breaking)
    # when routing fails on the fourth lead of the chunk (in its thread, in its second slice)
    job = run(job_of(org.carol, csv_bytes(NEW_PEOPLE)), org.carol, django_capture_on_commit_callbacks)
    # then the run failed saying why, nothing of the chunk stayed, and no routing thread is left
    assert job.status == ImportStatus.FAILED and "the rule engine broke" in job.error
    assert (job.rows_done, job.created) == (0, 0)
    assert not Lead.objects.filter(source="import").exists()
    assert not Contact.objects.filter(phone__in=[phone_parse(row[1]).e164 for row in NEW_PEOPLE]).exists()
    assert not Assignment.objects.exists()
    assert not [t for t in threading.enumerate() if t.name == "import-routing"]


def test_a_failed_write_stops_its_chunks_routing(org, monkeypatch, django_capture_on_commit_callbacks):
    import threading

    from salesloop.intake.imports.bulk import BulkWriter

    _regions_in_force(org)
    monkeypatch.setattr(engine, "ROUTE_SLICE", 1)
    insert = BulkWriter.insert

    def failing(writer, spec, rows):
        if spec.name == "crm_contact":
            raise IntegrityError("the disk is full")
        insert(writer, spec, rows)

    monkeypatch.setattr(BulkWriter, "insert", failing)
    # when writing the chunk's contacts fails, every attempt
    job = run(job_of(org.carol, csv_bytes(NEW_PEOPLE)), org.carol, django_capture_on_commit_callbacks)
    # then the run failed saying why, and each attempt's routing thread was stopped and waited for
    assert job.status == ImportStatus.FAILED and "the disk is full" in job.error
    assert not [t for t in threading.enumerate() if t.name == "import-routing"]
    assert not Lead.objects.filter(source="import").exists()


def test_an_imported_lead_is_routed_on_the_facts_it_is_written_with(
    org, monkeypatch, django_capture_on_commit_callbacks
):
    """The import routes a lead before writing it, from its plan: each trace's facts must be what
    routing reads of the lead once written (`routing.roster.lead_facts`) — above all the facts of
    a customer the database already knows, which the file may contradict."""
    from salesloop.core import clock
    from salesloop.crm.models import LeadStatus
    from salesloop.routing.roster import lead_facts
    from tests.routing.conftest import definition, in_force, rule

    # given a rule for 制造 leads (bob) before a fallback over east and south (alice, erin …)
    in_force(
        org.director,
        definition(
            rule("make", 10, when={"industries": ["制造"]}, users=[org.bob.username]),
            fallback={"pool": {"regions": ["east", "south"]}, "strategy": "round_robin"},
        ),
    )
    monkeypatch.setattr(services, "CHUNK_ROWS", 2)
    monkeypatch.setattr(services, "CHUNK_ROWS_MAX", 2)
    # and a customer the database knows as 制造 in 上海 — and a known person whose lead is closed
    factories.customer_make(province="31", name="上海已知制造有限公司", industry="制造", city="上海")
    closed = _known_lead(org)
    Customer.objects.filter(pk=closed.customer_id).update(industry="制造", city="嘉定")
    Lead.objects.filter(pk=closed.pk).update(status=LeadStatus.LOST)
    headers = ["姓名", "手机号", "公司名称", "省份", "城市", "行业"]
    rows = [
        ["新客户", HANGZHOU, "杭州新来科技有限公司", "浙江", "杭州", "软件"],  # all from the file
        ["已知公司的新人", FOSHAN, "上海已知制造有限公司", "广东", "佛山", "教育"],  # the customer's
        ["老客户", SHANGHAI, "", "江苏", "苏州", "物流"],  # known person, closed lead: their customer's
        ["没有公司", SHANGHAI_2, "", "", "", "制造"],  # a personal customer, from the file
    ]
    # when the file is imported
    job = run(job_of(org.carol, csv_bytes(rows, headers)), org.carol, django_capture_on_commit_callbacks)
    # then every new lead was routed on the facts routing reads of it as written
    assert (job.status, job.created) == (ImportStatus.DONE, 4)
    imported = (
        Lead.objects.filter(source="import")
        .select_related("customer__province__region", "region")
        .order_by("id")
    )
    traced = []
    for lead in imported:
        (assignment,) = Assignment.objects.filter(lead=lead)
        seen = assignment_explanation(assignment)["lead"]
        facts = lead_facts(lead, at=clock.now())
        expected = {
            "source": facts.source, "province": facts.province, "region": facts.region,
            "industry": facts.industry, "city": facts.city, "fields": facts.fields,
        }  # fmt: skip
        assert {key: value for key, value in seen.items() if key != "at"} == expected
        assert lead.assigned_at is not None and lead.owner_id == assignment.assignee_id
        traced.append((seen["industry"], seen["city"], assignment.rule_id, lead.owner_id))
    # and the known customer's facts won over the file's: 制造 leads went to bob's rule
    assert traced[1][:3] == ("制造", "上海", "make") and traced[2][:3] == ("制造", "嘉定", "make")
    assert traced[0][:3] == ("软件", "杭州", "fallback") and traced[3][0] == "制造"
    assert traced[1][3] == traced[2][3] == org.bob.pk


def test_a_large_file_is_read_by_a_reader_process_with_the_same_outcome(
    org, monkeypatch, django_capture_on_commit_callbacks
):
    from salesloop.intake.imports import pipeline

    # given files large enough for a reader process, and chunks of 4 rows
    monkeypatch.setattr(pipeline, "PROCESS_MIN_ROWS", 1)
    monkeypatch.setattr(services, "CHUNK_ROWS", 4)
    monkeypatch.setattr(services, "CHUNK_ROWS_MAX", 4)
    rows = [[f"客户{i}", f"138162{i:05d}", f"公司{i % 3}有限公司", "", "", "", ""] for i in range(9)]
    rows += [["客户0", "13816200000", "", "", "", "", ""], ["号码错", "123", "", "", "", "", ""]]
    # when it is imported
    timings = services.RunTimings()
    job = job_of(org.carol, csv_bytes(rows))
    services.import_start(actor=org.carol, job=job, enqueue=False)
    job = services.import_run(job_id=job.pk, timings=timings)
    # then the rows were read in the other process and imported as in place
    assert timings.reader_process is True
    assert (job.status, job.rows_done, job.created, job.duplicates_in_file, job.rejected) == (
        ImportStatus.DONE, 11, 9, 1, 1,
    )  # fmt: skip
    assert timings.chunks == 3
    assert Customer.objects.filter(name__startswith="公司").count() == 3
    assert ImportRejectedRow.objects.get(job=job).row_number == 12


@pytest.mark.parametrize("first_chunk", [1, 10], ids=["read-by-the-reader-process", "read-in-place"])
def test_a_file_that_cannot_be_read_any_more_fails_the_job_with_the_reason(
    org, monkeypatch, django_capture_on_commit_callbacks, first_chunk
):
    from salesloop.intake.imports import pipeline

    # given a file large enough for a reader process (which starts after the first chunk)
    monkeypatch.setattr(pipeline, "PROCESS_MIN_ROWS", 1)
    monkeypatch.setattr(services, "CHUNK_ROWS", first_chunk)
    job = job_of(org.carol, csv_bytes([["甲", SHANGHAI, "", "", "", "", ""]]))
    # and the file replaced by one that is no longer UTF-8 after the upload checked it
    with open(job.file.path, "ab") as handle:
        handle.write(b"\xff\xfe,\xff\n")
    # when it runs
    services.import_start(actor=org.carol, job=job, enqueue=False)
    job = services.import_run(job_id=job.pk)
    # then the job fails, saying why, whichever process read the bad row
    assert job.status == ImportStatus.FAILED
    assert "no longer readable as utf-8" in job.error
    assert Lead.objects.filter(source="import").count() == job.rows_done  # nothing half-imported


def _foreign_keys_enforced() -> bool | None:
    """SQLite: whether this connection checks foreign keys (None on PostgreSQL)."""
    if connection.vendor != "sqlite":
        return None
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA foreign_keys")
        return bool(cursor.fetchone()[0])


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_row_referring_to_a_record_that_is_gone_fails_its_chunk():
    """The import's inserts skip the database's foreign-key checks (PostgreSQL's triggers where the
    role may, SQLite's look-ups for the whole run); it then checks the references itself. Either
    way, a dangling reference never commits, and a good one does."""
    from salesloop.intake.imports.bulk import BulkWriter, table

    writer = BulkWriter(connection)
    contacts = table(
        Contact,
        ["customer_id", "name", "phone", "created_at", "updated_at"],
        connection,
        database_assigns_id=True,
    )
    customer = factories.customer_make()
    at = connection.ops.adapt_datetimefield_value(timezone_now())
    with writer.session():
        # SQLite checks nothing itself during the run
        assert _foreign_keys_enforced() in (False, None)
        with pytest.raises(IntegrityError, match=r"crm_customer\.id \['987654321'\]"), transaction.atomic():
            writer.chunk_begin()
            writer.insert(contacts, [(customer.pk, "有主", "+8613816299998", at, at)])
            writer.insert(contacts, [(987_654_321, "无主", "+8613816299999", at, at)])
            writer.references_confirm()
        with transaction.atomic():
            writer.chunk_begin()
            writer.insert(contacts, [(customer.pk, "有主", "+8613816299998", at, at)])
            writer.references_confirm()
    assert not Contact.objects.filter(phone="+8613816299999").exists()
    assert Contact.objects.get(phone="+8613816299998").customer_id == customer.pk
    # and afterwards the connection checks them again
    assert _foreign_keys_enforced() in (True, None)


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_chunks_assignments_have_their_references_checked_with_its_rows(org):
    """Routing writes an import chunk's assignments through the chunk's writer, so a reference
    the database did not check (an assignee gone) fails the chunk too."""
    from salesloop.intake.imports.bulk import BulkWriter
    from salesloop.routing import services as routing_services

    lead = factories.lead_make()
    writer = BulkWriter(connection)
    at = connection.ops.adapt_datetimefield_value(timezone_now())

    def assignment(assignee_id: int) -> tuple:
        return (
            lead.pk, assignee_id, "manual", None, "", "", "", org.carol.pk, "{}", at, None, "",
        )  # fmt: skip

    with writer.session():
        with pytest.raises(IntegrityError, match=r"accounts_user\.id \['987654321'\]"), transaction.atomic():
            writer.chunk_begin()
            routing_services._assignments_insert([assignment(987_654_321)], writer)
            writer.references_confirm()
        with transaction.atomic():
            writer.chunk_begin()
            routing_services._assignments_insert([assignment(org.carol.pk)], writer)
            writer.references_confirm()
    assert list(Assignment.objects.filter(lead=lead).values_list("assignee_id", flat=True)) == [org.carol.pk]


def _plans_watched(monkeypatch) -> list:
    """What each chunk of a run is planned with (`after`, None for a plan made in its own
    transaction), in the order of the plans."""
    planned_with: list = []
    plan = engine.chunk_plan

    def watched(prepared, ctx, *, outcomes=False, after=None):
        planned_with.append(after)
        return plan(prepared, ctx, outcomes=outcomes, after=after)

    monkeypatch.setattr(services, "chunk_plan", watched)
    return planned_with


def _run_outside_a_transaction(user, rows: list[list[str]]) -> tuple[ImportJob, services.RunTimings]:
    job = job_of(user, csv_bytes(rows))
    services.import_start(actor=user, job=job, enqueue=False)
    timings = services.RunTimings()
    return services.import_run(job_id=job.pk, timings=timings), timings


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_chunks_planned_while_the_one_before_commits_decide_as_if_planned_after_it(org, monkeypatch):
    """Outside a transaction each chunk is planned on another connection while the chunk before
    commits, which that connection may not see yet: the plan is made with what that chunk made
    known, and decides every row as a plan made after the commit would — no collision, no
    second customer or lead for someone the chunk before created."""
    monkeypatch.setattr(services, "CHUNK_ROWS", 2)
    monkeypatch.setattr(services, "CHUNK_ROWS_MAX", 2)
    # given a person known with an open lead (K) and one whose only lead is lost (C)
    known = factories.lead_make(contact=factories.contact_make(phone="+8613816288801"))
    closed = factories.lead_make(contact=factories.contact_make(phone="+8613816288802"))
    Lead.objects.filter(pk=closed.pk).update(status="lost")
    K, C, A, B = "13816288801", "13816288802", "13816288803", "13816288804"
    rows = [
        ["甲", A, "星河科技", "", "", "", ""], ["丙", C, "", "", "", "", ""],  # A new; C a new lead
        ["甲", A, "星河科技", "", "", "", ""], ["乙", B, "星河科技", "", "", "", ""],  # A again; B, same firm
        ["丙", C, "", "", "", "", ""], ["丁", K, "", "", "", "", ""],  # C again; K touches their lead
        ["丁", K, "", "", "", "", ""], ["乙", B, "星河科技", "", "", "", ""],  # K and B again
    ]  # fmt: skip
    planned_with = _plans_watched(monkeypatch)
    # when it runs, outside any transaction
    job, timings = _run_outside_a_transaction(org.carol, rows)
    # then every chunk after the first was planned ahead, and none collided
    assert job.status == ImportStatus.DONE, job.error
    assert (timings.chunks, timings.chunks_planned_ahead, timings.retries) == (4, 3, 0)
    # and the rows were decided as one after another
    assert (job.created, job.touches, job.duplicates_in_file) == (3, 1, 4)
    assert Customer.objects.filter(name="星河科技").count() == 1
    assert {lead.contact.phone for lead in Lead.objects.filter(customer__name="星河科技")} == {
        f"+86{A}",
        f"+86{B}",
    }
    c_open = Lead.objects.get(contact__phone=f"+86{C}", status="open")
    assert Lead.objects.filter(contact__phone=f"+86{C}").count() == 2
    events = InboundEvent.objects.filter(external_id__startswith=f"import:{job.pk}:")
    assert sorted(events.values_list("lead_id", flat=True)) == sorted(
        [Lead.objects.get(contact__phone=f"+86{A}").pk, c_open.pk, known.pk, known.pk,
         Lead.objects.get(contact__phone=f"+86{B}").pk]
    )  # fmt: skip
    assert planned_with[0] is None and all(planned_with[1:])


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_chunk_that_does_not_commit_drops_the_plan_made_after_it_and_keeps_its_rows(org, monkeypatch):
    """A chunk that fails as it commits is written again; the next chunk, planned meanwhile with
    what the failed chunk would have made known, is planned again after it, and no row is lost."""
    monkeypatch.setattr(services, "CHUNK_ROWS", 2)
    monkeypatch.setattr(services, "CHUNK_ROWS_MAX", 2)
    rows = [[f"客户{i}", f"1381628{i:04d}", "", "", "", "", ""] for i in range(6)]
    start = services.PlanAhead.start
    calls = {"n": 0}
    planned_with = _plans_watched(monkeypatch)

    def collides_once(ahead, rows, after):
        calls["n"] += 1
        start(ahead, rows, after)
        if calls["n"] == 2:  # the second chunk fails as it commits, as a deferred check would
            raise IntegrityError("a concurrent write took one of the chunk's people")

    monkeypatch.setattr(services.PlanAhead, "start", collides_once)
    job, timings = _run_outside_a_transaction(org.carol, rows)
    assert job.status == ImportStatus.DONE, job.error
    assert (job.rows_done, job.created, timings.retries) == (6, 6, 1)
    assert Lead.objects.filter(source="import").count() == 6
    # chunk 1 in its transaction; 2 ahead; 3 ahead, dropped with 2; 2 again in its transaction;
    # 3 ahead again, after it
    assert [after is not None for after in planned_with] == [False, True, True, False, True]
    assert timings.chunks_planned_ahead == 2


@pytest.mark.django_db(transaction=True, serialized_rollback=True)
def test_a_chunk_planned_ahead_takes_the_ids_drawn_while_it_was_planned(org, monkeypatch):
    """PostgreSQL: the ids of a chunk's new customers, contacts and leads are drawn from their
    sequences while the chunk is planned ahead, on the planning thread's connection — off the
    writer's path; the writer draws only for a chunk planned in its own transaction (the first).
    SQLite: the writer reserves them in its write transaction, as before."""
    import threading

    from salesloop.intake.imports.bulk import BulkWriter

    monkeypatch.setattr(services, "CHUNK_ROWS", 2)
    monkeypatch.setattr(services, "CHUNK_ROWS_MAX", 2)
    drawn: list[tuple[bool, dict[str, list[int]]]] = []  # (on the planning thread, ids by table)
    draw = BulkWriter.ids_draw

    def watched(self, wanted):
        ids = draw(self, wanted)
        drawn.append((threading.current_thread().name.startswith("import-plan"), ids))
        return ids

    monkeypatch.setattr(BulkWriter, "ids_draw", watched)
    rows = [[f"客户{i}", f"1381628{i:04d}", f"公司{i}", "", "", "", ""] for i in range(6)]
    job, timings = _run_outside_a_transaction(org.carol, rows)
    assert job.status == ImportStatus.DONE, job.error
    assert (job.created, timings.chunks, timings.chunks_planned_ahead) == (6, 3, 2)
    if connection.vendor != "postgresql":
        assert drawn == []
        return
    assert [ahead for ahead, _ in drawn].count(True) == 2
    assert [ahead for ahead, _ in drawn].count(False) == 1  # the first chunk, by the writer
    for model, written in (
        (Lead, Lead.objects.filter(source="import")),
        (Contact, Contact.objects.filter(phone__startswith="+861381628")),
        (Customer, Customer.objects.filter(name__startswith="公司")),
    ):
        used = sorted(i for _, ids in drawn for i in ids[model._meta.db_table])
        assert sorted(written.values_list("id", flat=True)) == used


def test_an_imported_lead_has_its_fields_defaults_as_json(org, django_capture_on_commit_callbacks):
    """The import fills the columns it does not set with the model's defaults; a JSON default is
    sent as its JSON text (encoded once, not per row) and reads back as the value itself."""
    job = run(job_of(org.carol, csv_bytes(NEW_PEOPLE[:2])), org.carol, django_capture_on_commit_callbacks)
    assert job.created == 2
    assert [lead.custom_fields for lead in Lead.objects.filter(source="import")] == [{}, {}]
    assert Lead.objects.filter(source="import", custom_fields={}).count() == 2


@pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's inserts (PostgreSQL copies)")
def test_sqlite_inserts_many_rows_a_statement_and_loses_none(monkeypatch):
    """An import's rows go to SQLite as few statements as its limit on bound values allows, not one
    execution per row (which, with another thread routing meanwhile, waited a switch interval per
    row: see `BulkWriter._sqlite_insert`). A statement that fails still fails as Django's error."""
    from salesloop.intake.imports import bulk

    monkeypatch.setattr(bulk, "SQLITE_VARIABLES_MAX", 100)
    writer = bulk.BulkWriter(connection)
    contacts = bulk.table(
        Contact, ["customer_id", "name", "phone", "created_at", "updated_at"], connection,
        database_assigns_id=True,
    )  # fmt: skip
    customer = factories.customer_make()
    at = connection.ops.adapt_datetimefield_value(timezone_now())
    rows = [(customer.pk, f"联系人{i}", f"+86138{i:08d}", at, at) for i in range(45)]
    inserts: list[str] = []
    connection.ensure_connection()
    connection.connection.set_trace_callback(
        lambda sql: inserts.append(sql) if sql.startswith('INSERT INTO "crm_contact"') else None
    )
    try:
        with transaction.atomic():
            writer.insert(contacts, rows)
    finally:
        connection.connection.set_trace_callback(None)
    width = len(contacts.columns) + len(contacts.default_columns)  # title, WeCom id, e-mail by default
    per = 100 // width
    assert len(rows) % per  # so the last statement has fewer rows than the others
    assert len(inserts) == -(-len(rows) // per)
    stored = Contact.objects.filter(customer=customer).order_by("phone")
    assert [(c.name, c.phone) for c in stored] == [(name, phone) for _, name, phone, _, _ in rows]
    # and a row the table refuses fails its statement as the IntegrityError imports retry on
    with pytest.raises(IntegrityError), transaction.atomic():
        writer.insert(contacts, [(customer.pk, "重复", rows[0][2], at, at)])


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's triggers")
def test_the_only_triggers_an_import_may_skip_are_foreign_keys_and_routings_loads():
    """Skipping triggers (session_replication_role) is safe only while the import does what each
    skipped trigger would have done: it checks the foreign keys (`references_confirm`) and adds
    routing's loads (`loads_add`, compared with a count after an import in test_import_loads). A
    new trigger on the import's tables must be handled by the import first, or fire whatever the
    role (`ENABLE ALWAYS`)."""
    from salesloop.intake.imports.bulk import BulkWriter
    from salesloop.routing.loads import PG_TRIGGERS

    tables = [
        "crm_customer", "crm_contact", "crm_lead", "pipeline_stagemove", "intake_inboundevent",
        "intake_importrejectedrow", "routing_assignment",
    ]  # fmt: skip
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.tgname, t.tgenabled FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "LEFT JOIN pg_constraint k ON k.oid = t.tgconstraint "
            "WHERE c.relname = ANY(%s) AND k.contype IS DISTINCT FROM 'f' AND t.tgenabled <> 'A'",
            [tables],
        )
        skipped = dict(cursor.fetchall())
    # routing's loads' triggers, fired by every writer but the import's replica-mode inserts
    assert skipped == dict.fromkeys(PG_TRIGGERS, "O")
    writer = BulkWriter(connection)
    with transaction.atomic():
        writer.chunk_begin()
        writer.references_confirm()
        with connection.cursor() as cursor:
            cursor.execute("SHOW session_replication_role")
            assert cursor.fetchone()[0] == "origin"  # what runs next in the chunk (routing) is checked


@pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's write-ahead log")
class TestWalCompression:
    """A chunk compresses the full-page images it writes into the WAL, where the role may and the
    server does not already (`BulkWriter.wal_compression`); only for the chunk's transaction."""

    @staticmethod
    def setting() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW wal_compression")
            return cursor.fetchone()[0]

    @staticmethod
    def methods() -> list[str]:
        with connection.cursor() as cursor:
            cursor.execute("SELECT enumvals FROM pg_settings WHERE name = 'wal_compression'")
            return cursor.fetchone()[0] or ["on"]

    @pytest.mark.django_db(transaction=True, serialized_rollback=True)  # its own transaction
    def test_a_chunk_compresses_them_for_its_transaction_only(self):
        from salesloop.intake.imports.bulk import BulkWriter

        assert self.setting() == "off"  # the server's default
        expected = next(m for m in ("lz4", "pglz", "on") if m in self.methods())
        with transaction.atomic():
            BulkWriter(connection).chunk_begin()
            assert self.setting() == expected
        assert self.setting() == "off"

    def test_a_server_that_compresses_already_keeps_its_method(self):
        from salesloop.intake.imports.bulk import BulkWriter

        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL wal_compression = pglz")
        writer = BulkWriter(connection)
        with transaction.atomic():
            writer.chunk_begin()
            assert (writer.wal_compression(), self.setting()) == ("", "pglz")

    def test_a_role_that_may_not_set_it_leaves_it_and_checks_its_foreign_keys(self):
        from salesloop.intake.imports.bulk import BulkWriter

        with connection.cursor() as cursor:
            cursor.execute("CREATE ROLE salesloop_test_importer")  # undone with the test's transaction
            cursor.execute("GRANT ALL ON ALL TABLES IN SCHEMA public TO salesloop_test_importer")
            cursor.execute("SET LOCAL ROLE salesloop_test_importer")
        writer = BulkWriter(connection)
        with transaction.atomic():
            writer.chunk_begin()
            assert (writer.wal_compression(), writer.may_skip_triggers()) == ("", False)
            assert self.setting() == "off"
            with connection.cursor() as cursor:
                cursor.execute("SHOW session_replication_role")
                assert cursor.fetchone()[0] == "origin"


def test_a_duplicate_across_chunks_is_still_a_duplicate(org, monkeypatch, django_capture_on_commit_callbacks):
    monkeypatch.setattr(services, "CHUNK_ROWS", 2)
    rows = [
        ["甲", SHANGHAI, "", "", "", "", ""],
        ["乙", HANGZHOU, "", "", "", "", ""],
        ["甲", SHANGHAI, "", "", "", "", ""],
    ]
    job = run(job_of(org.carol, csv_bytes(rows)), org.carol, django_capture_on_commit_callbacks)
    assert (job.created, job.touches, job.duplicates_in_file) == (2, 0, 1)


def test_a_failed_run_resumes_where_it_stopped(org, monkeypatch, django_capture_on_commit_callbacks):
    # given a run that fails in its second chunk
    monkeypatch.setattr(services, "CHUNK_ROWS", 3)
    write = engine.chunk_write
    calls = {"n": 0}

    def failing_write(plan, ctx, writer, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("the disk is full")
        return write(plan, ctx, writer, *args, **kwargs)

    monkeypatch.setattr(services, "chunk_write", failing_write)
    data = csv_bytes([[f"客户{i}", f"138162{i:05d}", "", "", "", "", ""] for i in range(8)])
    job = run(job_of(org.carol, data), org.carol, django_capture_on_commit_callbacks)
    assert (job.status, job.rows_done, job.error) == (ImportStatus.FAILED, 3, "the disk is full")
    assert Lead.objects.count() == 3  # the first chunk, whole; nothing of the second
    # when it is started again
    job = run(job, org.carol, django_capture_on_commit_callbacks)
    # then it carries on from row 4 and imports every row once
    assert (job.status, job.rows_done, job.created) == (ImportStatus.DONE, 8, 8)
    assert Lead.objects.count() == 8


def test_a_chunk_that_collides_with_a_concurrent_write_is_retried(
    org, monkeypatch, django_capture_on_commit_callbacks
):
    write = engine.chunk_write
    calls = {"n": 0}

    def colliding_write(plan, ctx, writer, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise IntegrityError("UNIQUE constraint failed: crm_contact.phone")
        return write(plan, ctx, writer, *args, **kwargs)

    monkeypatch.setattr(services, "chunk_write", colliding_write)
    job = run(
        job_of(org.carol, csv_bytes([["甲", SHANGHAI, "", "", "", "", ""]])),
        org.carol,
        django_capture_on_commit_callbacks,
    )
    assert (job.status, job.created, calls["n"]) == (ImportStatus.DONE, 1, 2)


def test_queries_per_chunk_do_not_grow_with_its_rows(org, monkeypatch, django_assert_max_num_queries):
    """50 rows or 500: the same queries (look-ups in bulk, one insert per table, one progress update)."""
    monkeypatch.setattr(services, "CHUNK_ROWS", 1000)
    known = _known_lead(org, owner=org.alice)
    services.import_source()

    def file_of(size: int, series: int) -> bytes:
        """A known person, new people (some of one company), a duplicate and a bad number."""
        rows = [["老客户", SHANGHAI, "", "", "", "", ""]]
        for i in range(size - 3):
            rows.append(
                [f"客户{i}", f"1580{series}71{i:04d}", f"公司{series}-{i % 7}有限公司", "", "", "", ""]
            )
        rows += [["重复", f"1580{series}710000", "", "", "", "", ""], ["错", "123", "", "", "", "", ""]]
        return csv_bytes(rows)

    def queries_of_run(size: int, series: int) -> list[str]:
        job = job_of(org.carol, file_of(size, series))
        services.import_start(actor=org.carol, job=job, enqueue=False)
        with CaptureQueriesContext(connection) as queries:
            job = services.import_run(job_id=job.pk)
        assert (job.status, job.rows_done, job.created) == (ImportStatus.DONE, size, size - 3)
        return [query["sql"][:60] for query in queries]

    small, large = queries_of_run(50, 1), queries_of_run(500, 2)
    assert len(small) == len(large), "\n".join(sorted(set(small) ^ set(large)))
    job = services.import_start(actor=org.carol, job=job_of(org.carol, file_of(900, 3)), enqueue=False)
    with django_assert_max_num_queries(len(small)):
        services.import_run(job_id=job.pk)
    assert InboundEvent.objects.filter(lead=known).count() == 3


# ---- who may ------------------------------------------------------------------------------


class TestPermissions:
    def test_a_rep_cannot_import(self, org):
        with pytest.raises(PermissionDenied):
            job_of(org.alice, csv_bytes([["甲", SHANGHAI, "", "", "", "", ""]]))

    def test_pages_refuse_a_rep_and_hide_a_job_from_another_manager(self, org, client):
        job = job_of(org.carol, csv_bytes([["甲", SHANGHAI, "", "", "", "", ""]]))
        client.force_login(org.alice)
        assert client.get("/intake/imports/").status_code == 403
        client.force_login(org.dave)
        assert client.get(f"/intake/imports/{job.pk}/").status_code == 404
        assert client.get(f"/intake/imports/{job.pk}/rejected.csv").status_code == 404
        client.force_login(org.director)
        assert client.get(f"/intake/imports/{job.pk}/").status_code == 200

    def test_the_api_refuses_a_rep_and_hides_a_job_from_another_manager(self, org, api_as, client):
        job = job_of(org.carol, csv_bytes([["甲", SHANGHAI, "", "", "", "", ""]]))
        rep = api_as(org.alice)
        response = client.post(
            API, {"file": upload(csv_bytes([["甲", SHANGHAI, "", "", "", "", ""]]))}, headers=rep.headers
        )
        assert response.status_code == 403
        assert api_as(org.dave).get(f"{API}/{job.pk}").status_code == 404
        assert api_as(org.admin).get(f"{API}/{job.pk}").status_code == 200


# ---- pages ----------------------------------------------------------------------------------


def test_the_pages_take_a_file_through_mapping_preview_start_and_progress(
    org, client, django_capture_on_commit_callbacks
):
    client.force_login(org.carol)
    data = csv_bytes(
        [["甲", SHANGHAI, "某公司", "", "", "", ""]],
        headers=["称呼", "号码", "公司名称", "省份", "需求", "广告计划", "预计金额"],
    )
    # upload: 「称呼」 and 「号码」 are not recognised, so nothing says who the person is yet
    response = client.post("/intake/imports/", {"file": upload(data)})
    assert response.status_code == 302
    job = ImportJob.objects.get()
    page = client.get(response["Location"]).content.decode()
    assert 'name="column-1"' in page and "disabled" in page
    # the user maps the columns
    mapping = {"column-0": "name", "column-1": "mobile", "column-2": "company"}
    response = client.post(f"/intake/imports/{job.pk}/mapping/", mapping, headers={"HX-Request": "true"})
    assert response.status_code == 200 and "outcome--new" in response.content.decode()
    # start: queued until the transaction commits, and the progress polls itself
    response = client.post(f"/intake/imports/{job.pk}/start/")
    assert response.status_code == 302
    fragment = client.get(f"/intake/imports/{job.pk}/progress/").content.decode()
    assert 'hx-trigger="every 1s"' in fragment
    # the worker runs it; the fragment stops polling and shows the counts
    services.import_run(job_id=job.pk)
    fragment = client.get(f"/intake/imports/{job.pk}/progress/").content.decode()
    assert "hx-trigger" not in fragment and "<progress" in fragment
    assert Lead.objects.filter(source="import").count() == 1


def test_a_finished_import_page_shows_its_counts_reasons_and_report(
    org, client, django_capture_on_commit_callbacks
):
    data = csv_bytes([["甲", SHANGHAI, "", "", "", "", ""], ["乙", "12345", "", "", "", "", ""]])
    job = run(job_of(org.carol, data), org.carol, django_capture_on_commit_callbacks)
    client.force_login(org.carol)
    page = client.get(f"/intake/imports/{job.pk}/").content.decode()
    assert f"/intake/imports/{job.pk}/rejected.csv" in page
    assert "号码无效" in page and "hx-trigger" not in page
    listing = client.get("/intake/imports/").content.decode()
    assert f"/intake/imports/{job.pk}/" in listing


def test_the_mapping_editor_refuses_a_field_on_two_columns_and_says_so(org, client):
    client.force_login(org.carol)
    job = job_of(org.carol, csv_bytes([["甲", SHANGHAI, "某公司", "", "", "", ""]]))
    choices = {f"column-{i}": field for i, field in enumerate(job.mapping)} | {"column-0": "company"}
    response = client.post(f"/intake/imports/{job.pk}/mapping/", choices, headers={"HX-Request": "true"})
    assert response.status_code == 422
    assert "only one column may be company" in response.content.decode()
    job.refresh_from_db()
    assert job.mapping[0] == "name"  # unchanged


def test_the_upload_page_names_the_problem_with_a_bad_file(org, client):
    client.force_login(org.carol)
    response = client.post("/intake/imports/", {"file": upload(b"%PDF-1.4", name="leads.pdf")})
    assert response.status_code == 422
    assert "CSV and Excel" in response.content.decode()


# ---- API ------------------------------------------------------------------------------------


class TestApi:
    def test_a_dry_run_answers_with_the_guessed_mapping_and_the_preview(self, org, api_as, client):
        token = api_as(org.carol)
        data = csv_bytes([["甲", SHANGHAI, "某公司", "", "", "", ""], ["乙", "123", "", "", "", "", ""]])
        response = client.post(API, {"file": upload(data), "dry_run": "true"}, headers=token.headers)
        assert response.status_code == 201, response.content
        body = response.json()
        assert body["status"] == "previewed" and body["mapping"][:3] == ["name", "mobile", "company"]
        assert [row["outcome"] for row in body["preview"]] == ["new", "rejected"]
        assert body["preview"][0]["phone"] == "+86" + SHANGHAI and body["preview"][0]["province"] == "31"
        assert not Lead.objects.exists()

    def test_an_xls_workbook_is_previewed_like_any_file(self, org, api_as, client):
        token = api_as(org.carol)
        data = xls_bytes({"名单": [["姓名", "手机号", "公司名称"], ["甲", int(SHANGHAI), "某公司"]]})
        upload_xls = SimpleUploadedFile("名单.xls", data, content_type="application/vnd.ms-excel")
        response = client.post(API, {"file": upload_xls, "dry_run": "true"}, headers=token.headers)
        assert response.status_code == 201, response.content
        body = response.json()
        assert (body["format"], body["rows_total"]) == ("xls", 1)
        assert body["mapping"] == ["name", "mobile", "company"]
        assert body["preview"][0]["outcome"] == "new" and body["preview"][0]["phone"] == "+86" + SHANGHAI

    def test_a_director_sees_someone_elses_preview_with_phones_masked(self, org, api_as, client):
        data = csv_bytes([["甲", SHANGHAI, "", "", "", "", ""]])
        created = client.post(
            API, {"file": upload(data), "dry_run": "true"}, headers=api_as(org.carol).headers
        )
        body = api_as(org.director).get(f"{API}/{created.json()['id']}").json()
        assert body["preview"][0]["phone"] == "138****0001"
        assert created.json()["preview"][0]["phone"] == "+86" + SHANGHAI  # the uploader's own file

    def test_an_upload_starts_and_reports_progress_counts_and_the_report(
        self, org, api_as, client, django_capture_on_commit_callbacks
    ):
        token = api_as(org.director)
        data = csv_bytes([["甲", SHANGHAI, "", "", "", "", ""], ["乙", "123", "", "", "", "", ""]])
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(API, {"file": upload(data)}, headers=token.headers)
        assert response.status_code == 201, response.content
        job_id = response.json()["id"]
        body = token.get(f"{API}/{job_id}").json()
        assert (body["status"], body["rows_done"], body["rows_total"], body["progress_percent"]) == (
            "done",
            2,
            2,
            100,
        )
        assert (body["created"], body["rejected"]) == (1, 1)
        assert body["report_url"] == f"/api/v1/imports/{job_id}/rejected.csv"
        report = client.get(f"{API}/{job_id}/rejected.csv", headers=token.headers)
        assert report.status_code == 200
        assert "原因" in b"".join(report.streaming_content).decode("utf-8-sig")

    def test_start_takes_a_corrected_mapping(self, org, api_as, client, django_capture_on_commit_callbacks):
        token = api_as(org.carol)
        data = csv_bytes([["甲", SHANGHAI]], headers=["称呼", "号码"])
        created = client.post(API, {"file": upload(data), "dry_run": "true"}, headers=token.headers).json()
        assert created["mapping_problem"]
        with django_capture_on_commit_callbacks(execute=True):
            response = token.post(
                f"{API}/{created['id']}/start", {"mapping": {"称呼": "name", "号码": "mobile"}}
            )
        assert response.status_code == 202, response.content
        assert Lead.objects.get().contact.name == "甲"

    @pytest.mark.parametrize(
        ("data", "name", "status"),
        [
            (b"", "empty.csv", 400),
            (b"%PDF-1.4", "x.pdf", 415),
            ("称呼,号码\n甲,13816200001\n".encode(), "x.csv", 422),  # nothing names a person
        ],
    )
    def test_a_bad_file_is_a_4xx_naming_the_problem(self, org, api_as, client, data, name, status):
        token = api_as(org.carol)
        response = client.post(API, {"file": upload(data, name)}, headers=token.headers)
        assert response.status_code == status, response.content
        assert response.json()["detail"][0]["loc"] == ["body", "file"]


def test_the_import_command_imports_a_file_and_prints_the_counts(org, tmp_path):
    from django.core.management import call_command

    path_ = tmp_path / "leads.csv"
    path_.write_bytes(csv_bytes([["甲", SHANGHAI, "", "", "", "", ""], ["甲", SHANGHAI, "", "", "", "", ""]]))
    out = io.StringIO()
    call_command("import", str(path_), "--json", "--user", "carol", stdout=out)
    result = json.loads(out.getvalue())
    assert (result["status"], result["created"], result["duplicates_in_file"]) == ("done", 1, 1)


def test_a_run_switches_threads_sooner_while_it_writes_and_gives_the_interval_back(org, monkeypatch):
    """The run's writer waits for the GIL after each statement until the routing or planning
    thread yields it: the switch interval is shortened for the run (bench/README.md measures it),
    then given back, even when the run fails."""
    import sys

    from salesloop.intake.imports import engine

    seen: list[float] = []
    written = engine.chunk_write

    def chunk_write(*args, **kwargs):
        seen.append(sys.getswitchinterval())
        return written(*args, **kwargs)

    monkeypatch.setattr(services, "chunk_write", chunk_write)
    before = sys.getswitchinterval()
    job = job_of(org.carol, csv_bytes([["客户", SHANGHAI, "", "", "", "", ""]]))
    services.import_start(actor=org.carol, job=job, enqueue=False)
    assert services.import_run(job_id=job.pk).status == ImportStatus.DONE
    assert seen == [services.IMPORT_SWITCH_INTERVAL] and before > services.IMPORT_SWITCH_INTERVAL
    assert sys.getswitchinterval() == before
    _run_failing(org, monkeypatch)
    assert sys.getswitchinterval() == before


def _run_failing(org, monkeypatch) -> None:
    """A run whose chunk cannot be written (the disk is full): the job fails."""

    def failing(*args, **kwargs):
        raise RuntimeError("the disk is full")

    monkeypatch.setattr(services, "chunk_write", failing)
    job = job_of(org.carol, csv_bytes([["客户乙", HANGZHOU, "", "", "", "", ""]]))
    services.import_start(actor=org.carol, job=job, enqueue=False)
    assert services.import_run(job_id=job.pk).status == ImportStatus.FAILED


def test_a_run_pauses_the_cyclic_collector_and_turns_it_back_on(org, monkeypatch):
    """A run keeps a chunk's millions of small objects alive, which the collector walked again
    and again (bench/README.md measures it): no collection runs during a run, and the collector
    is on again after it, even when the run fails."""
    import gc

    collections: list[int] = []
    on_during: list[bool] = []
    during: list[int] = []  # collections while a chunk was written
    written = services.chunk_write

    def chunk_write(*args, **kwargs):
        on_during.append(gc.isenabled())
        before = len(collections)
        try:
            return written(*args, **kwargs)
        finally:
            during.extend(collections[before:])

    def collected(phase, info):
        if phase == "start":
            collections.append(info["generation"])

    monkeypatch.setattr(services, "chunk_write", chunk_write)
    assert gc.isenabled()
    gc.callbacks.append(collected)
    try:
        job = job_of(org.carol, csv_bytes([[f"客户{i}", SHANGHAI, "", "", "", "", ""] for i in range(200)]))
        services.import_start(actor=org.carol, job=job, enqueue=False)
        assert services.import_run(job_id=job.pk).status == ImportStatus.DONE
        assert (on_during, during) == ([False], [])
        assert gc.isenabled()
        _run_failing(org, monkeypatch)
        assert gc.isenabled()
    finally:
        gc.callbacks.remove(collected)
