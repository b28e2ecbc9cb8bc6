"""Alert endpoints (SPEC C9): every endpoint's permissions and scope, validation errors naming the
field, secrets never shown, changes audited, and a fixed number of queries for the lists."""

from __future__ import annotations

import pytest

from salesloop.accounts.models import Team
from salesloop.core.models import AuditEntry
from salesloop.notify.models import BotChannel, BotDelivery
from salesloop.notify.outbox import deliveries_deliver
from tests.notify.conftest import DINGTALK_SECRET, DINGTALK_TOKEN, WECOM_KEY, raise_alert, wecom_channel

pytestmark = pytest.mark.django_db

WECOM_URL = f"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key={WECOM_KEY}"
DINGTALK_URL = f"https://oapi.dingtalk.com/robot/send?access_token={DINGTALK_TOKEN}"


@pytest.fixture
def alerts(org):
    """An alert of 华东 addressed to carol, one of 华南 to dave, one addressed to alice (her lead)."""
    east = raise_alert(org)
    south = raise_alert(
        org,
        key="indicator:stall:week:region:south",
        kind="indicator.stall",
        region=org.south,
        recipients=[org.dave],
    )
    alices = raise_alert(org, key="health:red:lead:1", kind="health.red", recipients=[org.alice, org.carol])
    return {"east": east, "south": south, "alice": alices}


def ids(response) -> set[int]:
    assert response.status_code == 200, response.content
    return {item["id"] for item in response.json()["items"]}


class TestAlertList:
    @pytest.mark.parametrize(
        "who,visible",
        [
            ("alice", {"alice"}),
            ("bob", set()),
            ("erin", set()),
            ("carol", {"east", "alice"}),
            ("dave", {"south"}),
            ("director", {"east", "south", "alice"}),
            ("pm", {"east", "south", "alice"}),
            ("admin", {"east", "south", "alice"}),
        ],
    )
    def test_each_role_sees_its_scope(self, org, api_as, alerts, who, visible):
        assert ids(api_as(getattr(org, who)).get("/api/v1/alerts")) == {alerts[k].pk for k in visible}

    def test_a_manager_sees_the_alerts_of_teams_in_the_region(self, org, api_as):
        team = Team.objects.create(name="华东一组", region=org.east)
        alert = raise_alert(org, key="t", region=None, team=team, recipients=[])
        assert ids(api_as(org.carol).get("/api/v1/alerts")) == {alert.pk}
        assert ids(api_as(org.dave).get("/api/v1/alerts")) == set()

    def test_an_alert_carries_explanation_link_and_response(self, org, api_as, alerts):
        body = api_as(org.carol).get(f"/api/v1/alerts/{alerts['east'].pk}").json()
        assert body["open"] is True and body["kind"] == "indicator.conversion"
        assert body["explanation"]["summary"].startswith("转化率")
        assert body["link"] == "/insights/funnel/?region=east"
        assert body["suggested_response"].startswith("复盘渠道质量")

    @pytest.mark.parametrize("who", ["alice", "bob", "dave"])
    def test_an_alert_out_of_scope_is_404(self, org, api_as, alerts, who):
        assert api_as(getattr(org, who)).get(f"/api/v1/alerts/{alerts['east'].pk}").status_code == 404

    def test_status_filter_and_keyset_pages(self, org, api_as, alerts):
        raise_alert(org, active=False)
        api = api_as(org.admin)
        assert ids(api.get("/api/v1/alerts", status="open")) == {alerts["south"].pk, alerts["alice"].pk}
        assert ids(api.get("/api/v1/alerts", status="cleared")) == {alerts["east"].pk}
        first = api.get("/api/v1/alerts", limit=2).json()
        assert len(first["items"]) == 2 and first["next_before"] == first["items"][-1]["id"]
        rest = api.get("/api/v1/alerts", limit=2, before=first["next_before"]).json()
        assert [i["id"] for i in rest["items"]] == [alerts["east"].pk] and rest["next_before"] is None

    def test_a_bad_status_is_a_422_naming_it(self, org, api_as):
        answer = api_as(org.admin).get("/api/v1/alerts", status="bogus")
        assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["query", "status"]

    def test_the_list_takes_a_fixed_number_of_queries(self, org, api_as, robot, django_assert_num_queries):
        wecom_channel(robot, actor=org.admin, region=org.east)
        api = api_as(org.carol)
        raise_alert(org, key="a")
        api.get("/api/v1/alerts")  # the token's first use stamps it; later ones do not
        for n in range(5):
            raise_alert(org, key=f"more{n}")
        # the token with its user, the alerts, their deliveries with their channels
        with django_assert_num_queries(3):
            assert len(api.get("/api/v1/alerts").json()["items"]) == 6


class TestDeliveries:
    @pytest.fixture
    def failed(self, org, robot, alerts):
        from salesloop.notify.alerts import deliveries_enqueue

        wecom_channel(robot, actor=org.admin, region=org.east)
        deliveries_enqueue(alert=alerts["east"])
        delivery = BotDelivery.objects.get()
        BotDelivery.objects.filter(pk=delivery.pk).update(status="failed", attempts=6, last_error="HTTP 500")
        return delivery

    @pytest.mark.parametrize(
        "who,code", [("alice", 403), ("bob", 403), ("dave", 200), ("carol", 200), ("admin", 200)]
    )
    def test_who_may_list(self, org, api_as, failed, who, code):
        answer = api_as(getattr(org, who)).get("/api/v1/alerts/deliveries", status="failed")
        assert answer.status_code == code
        if code == 200:
            expected = set() if who == "dave" else {failed.pk}
            assert ids(answer) == expected

    @pytest.mark.parametrize("who,code", [("alice", 403), ("dave", 404), ("carol", 200), ("director", 200)])
    def test_who_may_retry(self, org, api_as, failed, who, code):
        assert (
            api_as(getattr(org, who)).post(f"/api/v1/alerts/deliveries/{failed.pk}/retry").status_code == code
        )

    def test_retry_is_audited(self, org, api_as, failed):
        api_as(org.carol).post(f"/api/v1/alerts/deliveries/{failed.pk}/retry")
        entry = AuditEntry.objects.get(action="notify.delivery_retry")
        assert (
            entry.actor == org.carol
            and entry.before["status"] == "failed"
            and entry.after["status"] == "pending"
        )

    def test_only_a_failed_delivery_can_be_retried(self, org, api_as, robot, failed):
        api = api_as(org.carol)
        api.post(f"/api/v1/alerts/deliveries/{failed.pk}/retry")
        deliveries_deliver()
        answer = api.post(f"/api/v1/alerts/deliveries/{failed.pk}/retry")  # sent now
        assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["body", "status"]
        assert len(robot.delivered()) == 1

    def test_a_bad_status_filter_is_a_422(self, org, api_as):
        for bad in ("dead", "failed,dead", "failed,", "x" * 101):
            answer = api_as(org.admin).get("/api/v1/alerts/deliveries", status=bad)
            assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["query", "status"]

    def test_failed_and_uncertain_together(self, org, api_as, failed, alerts):
        other = BotDelivery.objects.create(alert=alerts["south"], channel=failed.channel, message={})
        BotDelivery.objects.filter(pk=other.pk).update(status="uncertain", last_error="no answer: timed out")
        api = api_as(org.carol)
        assert ids(api.get("/api/v1/alerts/deliveries", status="failed")) == {failed.pk}
        assert ids(api.get("/api/v1/alerts/deliveries", status="uncertain")) == {other.pk}
        both = api.get("/api/v1/alerts/deliveries", status="failed,uncertain")
        assert ids(both) == {failed.pk, other.pk}
        assert {d["status"] for d in both.json()["items"]} == {"failed", "uncertain"}


def channel(**extra):
    return {"kind": "wecom", "name": "华东销售群", "webhook_url": WECOM_URL, **extra}


class TestChannels:
    @pytest.mark.parametrize("who", ["alice", "bob", "pm"])
    def test_reps_may_not_touch_channels(self, org, api_as, who):
        api = api_as(getattr(org, who))
        assert api.get("/api/v1/alerts/channels").status_code == 403
        assert api.post("/api/v1/alerts/channels", channel(region_id=org.east.pk)).status_code == 403
        made = wecom_channel_for(org)
        assert api.get(f"/api/v1/alerts/channels/{made.pk}").status_code == 403
        assert api.patch(f"/api/v1/alerts/channels/{made.pk}", {"enabled": False}).status_code == 403

    def test_a_manager_sets_up_a_robot_for_the_region(self, org, api_as):
        answer = api_as(org.carol).post("/api/v1/alerts/channels", channel(region_id=org.east.pk))
        assert answer.status_code == 201, answer.content
        body = answer.json()
        assert body["region_id"] == org.east.pk and body["enabled"] is True and body["secret_set"] is False
        assert WECOM_KEY not in body["webhook_url"] and "key=693***aaa" in body["webhook_url"]
        entry = AuditEntry.objects.get(action="notify.channel_create")
        assert entry.actor == org.carol and WECOM_KEY not in str(entry.after)

    @pytest.mark.parametrize("scope", ["south", "org"])
    def test_a_manager_may_not_set_up_a_robot_elsewhere(self, org, api_as, scope):
        body = channel(region_id=org.south.pk) if scope == "south" else channel()
        answer = api_as(org.carol).post("/api/v1/alerts/channels", body)
        assert answer.status_code == 422 and answer.json()["detail"][0]["loc"] == ["body", "region_id"]

    def test_an_admin_sets_up_a_signed_dingtalk_robot_whose_secret_never_shows(self, org, api_as):
        api = api_as(org.admin)
        body = {"kind": "dingtalk", "name": "全国群", "webhook_url": DINGTALK_URL, "secret": DINGTALK_SECRET}
        made = api.post("/api/v1/alerts/channels", body).json()
        assert made["secret_set"] is True and made["region_id"] is None
        assert DINGTALK_SECRET not in str(made) and DINGTALK_TOKEN not in str(made)
        assert DINGTALK_SECRET not in str(api.get("/api/v1/alerts/channels").json())
        assert DINGTALK_SECRET not in str(AuditEntry.objects.get(action="notify.channel_create").after)
        assert BotChannel.objects.get().secret == DINGTALK_SECRET

    @pytest.mark.parametrize(
        "body,field",
        [
            (channel(kind="slack"), "kind"),
            (channel(name=""), "name"),
            (channel(webhook_url="https://evil.example.com/cgi-bin/webhook/send?key=x"), "webhook_url"),
            (channel(webhook_url="http://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=x"), "webhook_url"),
            (channel(webhook_url="https://qyapi.weixin.qq.com/cgi-bin/webhook/send"), "webhook_url"),
            (channel(webhook_url=DINGTALK_URL), "webhook_url"),
            (channel(secret="SEC123"), "secret"),
            ({**channel(kind="dingtalk", webhook_url=DINGTALK_URL), "secret": "abc"}, "secret"),
            (channel(region_id=1, team_id=1), "team_id"),
            (channel(region_id=987654), "region_id"),
            (channel(alert_kinds=["indicator.nope"]), "alert_kinds"),
        ],
    )
    def test_validation_errors_name_the_field(self, org, api_as, body, field):
        answer = api_as(org.admin).post("/api/v1/alerts/channels", body)
        assert answer.status_code == 422, answer.content
        assert [e["loc"] for e in answer.json()["detail"]] == [["body", field]]
        assert BotChannel.objects.count() == 0

    def test_an_update_is_audited_and_keeps_the_secret(self, org, api_as):
        api = api_as(org.admin)
        body = {"kind": "dingtalk", "name": "群", "webhook_url": DINGTALK_URL, "secret": DINGTALK_SECRET}
        made = api.post("/api/v1/alerts/channels", body).json()
        changed = api.patch(
            f"/api/v1/alerts/channels/{made['id']}", {"enabled": False, "alert_kinds": ["health.red"]}
        )
        assert changed.status_code == 200 and changed.json()["enabled"] is False
        stored = BotChannel.objects.get()
        assert stored.secret == DINGTALK_SECRET and stored.alert_kinds == ["health.red"]
        entry = AuditEntry.objects.get(action="notify.channel_update")
        assert entry.before["enabled"] is True and entry.after["enabled"] is False
        cleared = api.patch(f"/api/v1/alerts/channels/{made['id']}", {"secret_clear": True}).json()
        assert cleared["secret_set"] is False

    def test_a_manager_manages_only_the_region_s_robots(self, org, api_as):
        made = wecom_channel_for(org)
        assert api_as(org.carol).get(f"/api/v1/alerts/channels/{made.pk}").status_code == 200
        dave = api_as(org.dave)
        assert dave.get(f"/api/v1/alerts/channels/{made.pk}").status_code == 404
        assert dave.patch(f"/api/v1/alerts/channels/{made.pk}", {"enabled": False}).status_code == 404
        assert dave.get("/api/v1/alerts/channels").json() == []
        # nor may carol move her robot to 华南
        moved = api_as(org.carol).patch(f"/api/v1/alerts/channels/{made.pk}", {"region_id": org.south.pk})
        assert moved.status_code == 422 and moved.json()["detail"][0]["loc"] == ["body", "region_id"]


def wecom_channel_for(org) -> BotChannel:
    from salesloop.notify.channels import channel_create

    return channel_create(
        actor=org.admin, kind="wecom", name="华东群", webhook_url=WECOM_URL, region_id=org.east.pk
    )
