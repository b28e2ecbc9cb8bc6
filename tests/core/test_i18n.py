"""Chinese first: every message the UI uses has its Chinese, and the compiled catalogs match."""

from __future__ import annotations

from pathlib import Path

import polib
import pytest
from django.utils import translation

from salesloop.core import i18n
from salesloop.core.roles import Role
from salesloop.crm.models import Channel, LeadStatus

ZH_PO = i18n.LOCALE_DIR / "zh_Hans" / "LC_MESSAGES" / "django.po"


def test_there_is_a_chinese_catalog():
    assert ZH_PO in i18n.catalogs()


@pytest.mark.parametrize("po_path", i18n.catalogs(), ids=lambda p: p.parent.parent.name)
def test_each_mo_is_up_to_date_with_its_po(po_path: Path, tmp_path: Path):
    mo_path = po_path.with_suffix(".mo")
    assert mo_path.exists(), f"{mo_path} is missing: run `make messages`"
    fresh = i18n.compile_catalog(po_path, tmp_path / "fresh.mo")
    assert i18n.catalog_entries(mo_path) == i18n.catalog_entries(fresh), "run `make messages`"


def test_every_message_the_code_uses_has_chinese():
    used = i18n.used_messages()
    # the scan itself works: it finds a template tag, a blocktranslate, a plural and a model label
    msgids = {m.msgid for m in used}
    assert {"Leads", "Hello, %(name)s", "%(total)s open lead", "Sales rep"} <= msgids
    missing = [f"{m.msgid!r} ({m.where})" for m in i18n.untranslated(ZH_PO)]
    assert not missing, "add to locale/zh_Hans/LC_MESSAGES/django.po, then `make messages`:\n" + "\n".join(
        missing
    )


def test_no_chinese_translation_is_fuzzy_or_keeps_placeholders_wrong():
    for entry in polib.pofile(str(ZH_PO)):
        if not entry.msgid:
            continue
        assert "fuzzy" not in entry.flags, entry.msgid
        translations = list(entry.msgstr_plural.values()) if entry.msgid_plural else [entry.msgstr]
        for text in translations:
            assert sorted(_placeholders(text)) == sorted(_placeholders(entry.msgid)), entry.msgid


def _placeholders(text: str) -> list[str]:
    import re

    return re.findall(r"%\(\w+\)[sdf]", text)


def test_template_messages_are_found_like_django_finds_them():
    template = (
        '{% load i18n %}<p>{% translate "Leads" %}</p>'
        "{% blocktranslate trimmed with name=user %}\n  Hello,\n  {{ name }}\n{% endblocktranslate %}"
        '{% translate "Board" context "meeting" %}'
    )
    found = {(m.context, m.msgid) for m in i18n.messages_in_template(template)}
    assert found == {(None, "Leads"), (None, "Hello, %(name)s"), ("meeting", "Board")}


def test_python_messages_are_found_with_literal_arguments_only():
    source = (
        "from django.utils.translation import gettext as _, pgettext_lazy, ngettext\n"
        'a = _("Plain")\n'
        'b = _(f"Not {a}")\n'
        'c = pgettext_lazy("month", "May")\n'
        'd = ngettext("one lead", "%(n)s leads", n)\n'
        'e = _("Split "\n      "across lines")\n'
        "for _ in range(3): pass\n"
    )
    found = {(m.context, m.msgid, m.plural) for m in i18n.messages_in_python(source)}
    assert found == {
        (None, "Plain", None),
        ("month", "May", None),
        (None, "one lead", "%(n)s leads"),
        (None, "Split across lines", None),
    }


def test_model_and_choice_labels_are_chinese_by_default_and_english_on_request():
    with translation.override("zh-hans"):
        assert str(Role.REP.label) == "销售"
        assert str(Role.MANAGER.label) == "区域经理"
        assert str(Channel.DOUYIN.label) == "抖音表单"
        assert str(Channel.CALL_400.label) == "400电话"
        assert str(LeadStatus.LOST.label) == "输单"
    with translation.override("en"):
        assert str(Role.REP.label) == "Sales rep"
        assert str(LeadStatus.LOST.label) == "Lost"


def test_the_command_compiles_and_checks(tmp_path: Path, monkeypatch, capsys):
    # given a copy of the catalogs, so the real .mo files are not rewritten by the test
    locale = tmp_path / "locale" / "zh_Hans" / "LC_MESSAGES"
    locale.mkdir(parents=True)
    (locale / "django.po").write_bytes(ZH_PO.read_bytes())
    monkeypatch.setattr(i18n, "LOCALE_DIR", tmp_path / "locale")
    # when the .mo is missing the check fails; after compiling it passes
    assert i18n.main(["--check"]) == 1
    assert i18n.main([]) == 0
    assert (locale / "django.mo").exists()
    assert i18n.main(["--check"]) == 0
    assert "compiled" in capsys.readouterr().out
