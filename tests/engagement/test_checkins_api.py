"""Check-ins through the API (SPEC C4.1, C4.3; issue 6 items 1, 2, 4, 5): recording with evidence and
a gated stage move, idempotent resubmits, resumable uploads, 422 naming the field, and the scope of
every endpoint — a rep never reaches another rep's check-in or evidence."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from django.core.files.storage import default_storage

from salesloop.core import clock
from salesloop.core.models import AuditEntry
from salesloop.crm.models import Attachment
from salesloop.engagement import checkin_services as services
from salesloop.engagement.checkin_models import Checkin, CheckinActionType, CheckinEvidence, EvidenceUpload
from salesloop.pipeline.models import StageMove
from tests.engagement.checkin_helpers import checkin_make, jpeg_bytes, uploaded
from tests.engagement.conftest import pdf_bytes
from tests.factories import lead_make, lead_ready_for

pytestmark = pytest.mark.django_db

T0 = dt.datetime(2026, 3, 2, 2, 0, tzinfo=dt.UTC)  # 10:00 in Shanghai


@pytest.fixture
def lead(org):
    clock.set_now(T0)
    return lead_make(owner=org.alice, title="星河新能源 MES")


def error_fields(response) -> list[str]:
    assert response.status_code == 422, response.content
    return [item["loc"][-1] for item in response.json()["detail"]]


def body(lead, **extra):
    return {
        "client_key": extra.pop("client_key", uuid.uuid4().hex),
        "lead_id": lead.pk,
        "action_type": "visit",
        "result_type": "progressed",
        "result_text": "拜访了IT总监，确认预算",
        **extra,
    }


def stored_attachment_files() -> list[str]:
    """Every file under the attachments' storage folders (not the upload slots' part files)."""
    from pathlib import Path

    from django.conf import settings

    root = Path(settings.MEDIA_ROOT)
    return sorted(
        str(path.relative_to(root))
        for path in root.rglob("*")
        if path.is_file() and "evidence-uploads" not in path.parts
    )


def put_chunk(client, api, upload_id, offset: int, data: bytes):
    return client.put(
        f"/api/v1/checkins/uploads/{upload_id}?offset={offset}",
        data,
        content_type="application/octet-stream",
        headers=api.headers,
    )


class TestRecording:
    def test_a_checkin_keeps_action_result_stage_place_and_evidence_as_lead_attachments(
        self, org, lead, api_as, django_capture_on_commit_callbacks
    ):
        # given a site photo uploaded by the rep
        photo = uploaded(org.alice, jpeg_bytes())
        api = api_as(org.alice)

        # when she checks in with it
        with django_capture_on_commit_callbacks(execute=True):
            response = api.post(
                "/api/v1/checkins",
                body(
                    lead,
                    evidence=[str(photo.pk)],
                    latitude="31.230416",
                    longitude="121.473701",
                    location_text="上海 浦东",
                ),
            )

        # then the check-in holds what happened, the stage the lead was in, and the photo is a lead
        # attachment of kind site_photo (stage gates and OCR see it)
        assert response.status_code == 201, response.content
        out = response.json()
        assert (out["action_type"], out["result_type"], out["stage"], out["moved_to"]) == (
            "visit", "progressed", "screening", None,
        )  # fmt: skip
        assert (out["day"], out["location_text"], out["latitude"]) == ("2026-03-02", "上海 浦东", "31.230416")
        [evidence] = out["evidence"]
        attachment = Attachment.objects.get(pk=evidence["attachment_id"])
        assert (attachment.lead_id, attachment.kind, attachment.content_type) == (
            lead.pk,
            "site_photo",
            "image/jpeg",
        )
        with default_storage.open(attachment.file.name, "rb") as stored:
            assert stored.read() == jpeg_bytes()
        # and the upload slot is used up: its bytes live in the attachment now
        photo.refresh_from_db()
        assert photo.checkin_id == out["id"]
        assert not services.upload_path(photo).exists()

    def test_a_resubmit_after_a_lost_answer_creates_nothing_twice(self, org, lead, api_as):
        # given a check-in sent, whose answer the phone never got
        photo = uploaded(org.alice)
        api = api_as(org.alice)
        payload = body(lead, evidence=[str(photo.pk)])
        first = api.post("/api/v1/checkins", payload)
        assert first.status_code == 201

        # when the phone sends the same check-in again
        again = api.post("/api/v1/checkins", payload)

        # then it gets the same check-in back, and there is one check-in with one photo
        assert again.status_code == 200
        assert again.json()["id"] == first.json()["id"]
        assert Checkin.objects.count() == 1
        assert CheckinEvidence.objects.count() == 1
        assert Attachment.objects.filter(kind="site_photo").count() == 1

    def test_the_day_is_counted_in_shanghai_time(self, org, lead, api_as):
        # given 23:30 in Shanghai is 15:30 UTC, still the same local day
        clock.set_now(dt.datetime(2026, 3, 2, 15, 30, tzinfo=dt.UTC))
        response = api_as(org.alice).post("/api/v1/checkins", body(lead))
        assert response.json()["day"] == "2026-03-02"
        # and 00:30 the next morning in Shanghai (16:30 UTC) is the next day
        clock.set_now(dt.datetime(2026, 3, 2, 16, 30, tzinfo=dt.UTC))
        response = api_as(org.alice).post("/api/v1/checkins", body(lead))
        assert response.json()["day"] == "2026-03-03"

    def test_bad_input_is_refused_naming_the_field(self, org, lead, api_as):
        api = api_as(org.alice)
        assert error_fields(api.post("/api/v1/checkins", body(lead, result_type="great"))) == ["result_type"]
        assert error_fields(api.post("/api/v1/checkins", body(lead, result_text="   "))) == ["result_text"]
        assert error_fields(api.post("/api/v1/checkins", body(lead, action_type="golf"))) == ["action_type"]
        assert error_fields(api.post("/api/v1/checkins", body(lead, client_key="short"))) == ["client_key"]
        assert error_fields(api.post("/api/v1/checkins", body(lead, latitude="31.2"))) == ["latitude"]
        assert error_fields(api.post("/api/v1/checkins", body(lead, latitude="95", longitude="1"))) == [
            "latitude"
        ]
        future = (T0 + dt.timedelta(hours=2)).isoformat()
        assert error_fields(api.post("/api/v1/checkins", body(lead, at=future))) == ["at"]
        unknown = str(uuid.uuid4())
        assert error_fields(api.post("/api/v1/checkins", body(lead, evidence=[unknown]))) == ["evidence"]
        assert Checkin.objects.count() == 0

    def test_a_retired_action_type_is_no_longer_accepted(self, org, lead, api_as):
        CheckinActionType.objects.filter(code="call").update(active=False)
        assert error_fields(api_as(org.alice).post("/api/v1/checkins", body(lead, action_type="call"))) == [
            "action_type"
        ]


class TestStageMove:
    def test_a_move_in_the_same_step_goes_through_the_gate(self, org, lead, api_as):
        # given a lead that meets what 需求确认 requires
        lead_ready_for(lead, "needs_confirmed")

        # when the rep checks in and moves it
        response = api_as(org.alice).post("/api/v1/checkins", body(lead, to_stage="needs_confirmed"))

        # then the check-in records the stage it was in and the move it made
        assert response.status_code == 201, response.content
        out = response.json()
        assert (out["stage"], out["moved_to"]) == ("screening", "needs_confirmed")
        move = StageMove.objects.get(pk=out["stage_move_id"])
        assert move.to_stage.code == "needs_confirmed" and move.actor_id == org.alice.pk
        lead.refresh_from_db()
        assert lead.stage.code == "needs_confirmed"

    def test_a_refused_move_saves_nothing_and_says_what_is_missing(self, org, lead, api_as):
        # given a photo uploaded, and a lead without the attachments 方案演示 requires
        photo = uploaded(org.alice)
        api = api_as(org.alice)
        payload = body(lead, evidence=[str(photo.pk)], to_stage="solution_demo")

        # when the rep checks in and asks for the move
        response = api.post("/api/v1/checkins", payload)

        # then the whole step is refused with what is missing, and nothing was half-saved
        assert response.status_code == 422
        assert "attachment.pain_points" in error_fields(response)
        assert response.json()["explanation"]["kind"] == "stage_move_refused"
        assert Checkin.objects.count() == 0
        assert Attachment.objects.count() == 0
        assert StageMove.objects.filter(lead=lead, to_stage__code="solution_demo").count() == 0
        # and no attachment file the refused step wrote is left in storage
        assert stored_attachment_files() == []
        photo.refresh_from_db()
        assert photo.checkin_id is None and services.upload_path(photo).exists()

        # and the same check-in (same key, same photo) goes through once the move is dropped
        del payload["to_stage"]
        again = api.post("/api/v1/checkins", payload)
        assert again.status_code == 201, again.content
        assert len(again.json()["evidence"]) == 1


class TestUploads:
    def test_an_interrupted_upload_resumes_from_the_bytes_received(self, org, api_as, client):
        # given a PDF of minutes being uploaded in chunks
        data = pdf_bytes("meeting minutes " * 40)
        api = api_as(org.alice)
        key = uuid.uuid4().hex
        start = {"client_key": key, "kind": "meeting_minutes", "file_name": "纪要.pdf", "size": len(data)}
        slot = api.post("/api/v1/checkins/uploads", start)
        assert slot.status_code == 201
        upload_id = slot.json()["id"]
        assert put_chunk(client, api, upload_id, 0, data[:300]).json()["received"] == 300

        # when the connection drops mid-way and the phone asks the slot again (same client key)
        again = api.post("/api/v1/checkins/uploads", start)
        assert (again.status_code, again.json()["id"], again.json()["received"]) == (200, upload_id, 300)
        # a chunk beyond what arrived is refused, naming the offset to resume from
        assert error_fields(put_chunk(client, api, upload_id, 600, data[600:])) == ["offset"]
        # a chunk resent because its answer was lost is harmless
        assert put_chunk(client, api, upload_id, 0, data[:300]).json()["received"] == 300
        done = put_chunk(client, api, upload_id, 300, data[300:])

        # then the upload is complete, and a check-in with it stores exactly the bytes sent
        assert done.json()["complete"] is True
        assert client.get(f"/api/v1/checkins/uploads/{upload_id}", headers=api.headers).json()[
            "received"
        ] == len(data)
        lead = lead_make(owner=org.alice)
        checkin = api.post("/api/v1/checkins", body(lead, evidence=[upload_id]))
        attachment = Attachment.objects.get(pk=checkin.json()["evidence"][0]["attachment_id"])
        with default_storage.open(attachment.file.name, "rb") as stored:
            assert stored.read() == data
        assert attachment.kind == "meeting_minutes" and attachment.content_type == "application/pdf"

    def test_a_partly_uploaded_file_cannot_be_checked_in(self, org, lead, api_as, client):
        data = jpeg_bytes()
        api = api_as(org.alice)
        slot = api.post(
            "/api/v1/checkins/uploads",
            {"client_key": uuid.uuid4().hex, "kind": "site_photo", "file_name": "a.jpg", "size": len(data)},
        ).json()
        put_chunk(client, api, slot["id"], 0, data[:100])
        response = api.post("/api/v1/checkins", body(lead, evidence=[slot["id"]]))
        assert error_fields(response) == ["evidence"]
        assert "not fully uploaded" in response.json()["detail"][0]["msg"]

    def test_only_photos_and_pdfs_of_limited_size_are_accepted(self, org, api_as, client):
        api = api_as(org.alice)

        def start(**extra):
            return api.post(
                "/api/v1/checkins/uploads",
                {
                    "client_key": uuid.uuid4().hex,
                    "kind": "site_photo",
                    "file_name": "a.jpg",
                    "size": 10,
                    **extra,
                },
            )

        assert error_fields(start(file_name="报价.xlsx")) == ["file_name"]
        assert error_fields(start(size=services.EVIDENCE_MAX_BYTES + 1)) == ["size"]
        assert error_fields(start(kind="selfie")) == ["kind"]
        # the content must be what the name says
        fake = b"not a jpeg at all"
        slot = start(size=len(fake)).json()
        response = put_chunk(client, api, slot["id"], 0, fake)
        assert error_fields(response) == ["file"]
        assert EvidenceUpload.objects.get(pk=slot["id"]).completed_at is None


class TestScope:
    @pytest.fixture
    def alices(self, org, lead):
        return checkin_make(org.alice, lead, upload_ids=[uploaded(org.alice).pk])

    def test_a_rep_cannot_see_another_reps_checkin_or_evidence(self, org, alices, api_as, client):
        evidence = alices.evidence.get()
        bob = api_as(org.bob)
        assert bob.get(f"/api/v1/checkins/{alices.pk}").status_code == 404
        assert bob.get(f"/api/v1/checkins/evidence/{evidence.pk}/file").status_code == 404
        assert bob.get(f"/api/v1/attachments/{evidence.attachment_id}/file").status_code == 404
        assert bob.get("/api/v1/checkins").json()["items"] == []
        # nor her unfinished uploads
        slot = EvidenceUpload.objects.create(
            owner=org.alice, client_key="k" * 10, kind="site_photo", file_name="a.jpg", size=5
        )
        assert bob.get(f"/api/v1/checkins/uploads/{slot.pk}").status_code == 404
        assert put_chunk(client, bob, slot.pk, 0, b"\xff\xd8\xff").status_code == 404
        # nor check in on her lead
        assert bob.post("/api/v1/checkins", body(alices.lead)).status_code == 404

    def test_managers_see_their_regions_checkins_and_directors_all(self, org, alices, api_as):
        evidence = alices.evidence.get()
        for user, status in (
            (org.alice, 200),
            (org.carol, 200),
            (org.director, 200),
            (org.dave, 404),
            (org.erin, 404),
        ):
            api = api_as(user)
            assert api.get(f"/api/v1/checkins/{alices.pk}").status_code == status, user
            assert api.get(f"/api/v1/checkins/evidence/{evidence.pk}/file").status_code == status, user

    def test_the_list_pages_by_keyset_in_a_fixed_number_of_queries(
        self, org, lead, api_as, django_assert_num_queries
    ):
        for _ in range(3):
            checkin_make(org.alice, lead, upload_ids=[uploaded(org.alice).pk])
        api = api_as(org.alice)
        # token, user, check-ins page, evidence prefetch (whatever the number of rows)
        with django_assert_num_queries(4):
            first = api.get("/api/v1/checkins", limit=2, date="2026-03-02").json()
        assert len(first["items"]) == 2 and first["next_cursor"]
        rest = api.get("/api/v1/checkins", limit=2, cursor=first["next_cursor"]).json()
        assert len(rest["items"]) == 1 and rest["next_cursor"] is None


class TestWithdraw:
    def test_a_withdrawn_checkin_stays_but_stops_counting(self, org, lead, api_as):
        checkin = checkin_make(org.alice, lead)
        api = api_as(org.alice)
        assert error_fields(api.post(f"/api/v1/checkins/{checkin.pk}/withdraw", {"reason": ""})) == ["reason"]
        response = api.post(f"/api/v1/checkins/{checkin.pk}/withdraw", {"reason": "记错了客户"})
        assert response.status_code == 200 and response.json()["withdrawn_reason"] == "记错了客户"
        assert AuditEntry.objects.filter(action="checkin.withdraw", target_id=str(checkin.pk)).exists()
        daily = api_as(org.carol).get("/api/v1/checkins/daily", date="2026-03-02").json()
        assert daily["checkins"] == 0 and org.alice.pk in daily["reps_without_checkin"]
        # bob may not withdraw it (and cannot even see it)
        assert (
            api_as(org.bob).post(f"/api/v1/checkins/{checkin.pk}/withdraw", {"reason": "x"}).status_code
            == 404
        )


class TestSweep:
    def test_abandoned_slots_and_stray_part_files_are_swept_waiting_ones_kept(self, org, lead):
        import os

        from django.core.management import call_command

        # given a slot abandoned 8 days ago, one started yesterday, and one a check-in claimed
        clock.set_now(T0 - dt.timedelta(days=8))
        abandoned = uploaded(org.alice)
        clock.set_now(T0 - dt.timedelta(days=1))
        waiting = uploaded(org.bob)
        clock.set_now(T0)
        claimed = uploaded(org.alice)
        checkin_make(org.alice, lead, upload_ids=[claimed.pk])
        # …whose part file a dying process failed to delete, and an orphan file with no slot at all
        leftover, orphan = services.upload_path(claimed), services.upload_path(claimed).with_name("feed.part")
        leftover.write_bytes(b"x")
        orphan.write_bytes(b"y")
        old = (T0 - dt.timedelta(days=9)).timestamp()
        for path in (leftover, orphan, services.upload_path(waiting)):
            os.utime(path, (old, old))  # even a waiting slot's file may be old: its slot decides

        # when the daily sweep runs
        call_command("evidence_sweep")

        # then the abandoned slot and its bytes are gone, the stray files too
        assert not EvidenceUpload.objects.filter(pk=abandoned.pk).exists()
        assert not services.upload_path(abandoned).exists()
        assert not leftover.exists() and not orphan.exists()
        # and the waiting slot is kept, bytes and all, as is the claimed slot's row
        assert services.upload_path(waiting).exists()
        assert EvidenceUpload.objects.filter(pk__in=[waiting.pk, claimed.pk]).count() == 2
        # a second run finds nothing more
        swept = services.evidence_uploads_sweep()
        assert (swept.slots, swept.files) == (0, 0)

    def test_the_sweep_refuses_to_keep_less_than_a_day(self, org):
        from django.core.management import call_command
        from django.core.management.base import CommandError

        with pytest.raises(CommandError, match="--days"):
            call_command("evidence_sweep", "--days", "0")
