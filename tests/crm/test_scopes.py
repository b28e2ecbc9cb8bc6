from __future__ import annotations

import pytest

from salesloop.crm.selectors import lead_get, leads_visible_to
from tests.factories import lead_make

pytestmark = pytest.mark.django_db


def test_each_role_sees_exactly_its_scope(org):
    # given a lead per rep, one in the 华东 pool and one in the 华南 pool
    alices = lead_make(owner=org.alice, province="31")
    bobs = lead_make(owner=org.bob, province="32")
    erins = lead_make(owner=org.erin, province="44")
    east_pool = lead_make(owner=None, province="33")
    south_pool = lead_make(owner=None, province="44")
    everything = {alices.pk, bobs.pk, erins.pk, east_pool.pk, south_pool.pk}

    def ids(user):
        return set(leads_visible_to(user).values_list("id", flat=True))

    # then
    assert ids(org.alice) == {alices.pk}
    assert ids(org.bob) == {bobs.pk}
    assert ids(org.carol) == {alices.pk, bobs.pk, east_pool.pk}
    assert ids(org.dave) == {erins.pk, south_pool.pk}
    assert ids(org.director) == everything
    assert ids(org.pm) == everything
    assert ids(org.admin) == everything


def test_manager_sees_a_lead_from_another_province_owned_by_their_rep(org):
    # a 华东 rep was handed a 广东 customer: her manager still oversees it
    lead = lead_make(owner=org.alice, province="44")
    assert lead_get(user=org.carol, lead_id=lead.pk) == lead
    assert lead_get(user=org.dave, lead_id=lead.pk) == lead  # it is a 华南 lead too


def test_out_of_scope_lead_is_not_found(org):
    from django.http import Http404

    lead = lead_make(owner=org.alice)
    with pytest.raises(Http404):
        lead_get(user=org.bob, lead_id=lead.pk)
