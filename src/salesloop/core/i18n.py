"""Translation catalogs without GNU gettext (which the machines here do not have).

`python -m salesloop.core.i18n` (what `make messages` runs) compiles every `.po` under
`src/salesloop/locale` to its `.mo` with polib. Two more modes keep the catalogs honest:

- `--check` exits 1 when a `.mo` is older than its `.po` in content, or when a message the code
  uses (templates and Python) has no translation in a catalog;
- `--update` adds the messages the code uses but a catalog lacks, untranslated, for a translator
  to fill in — the part of `makemessages` we need.

Messages are found the way `makemessages` finds them: templates go through Django's own
`templatize` (so `{% blocktranslate %}` yields the same msgid Django looks up at run time), and
the result, like Python source, is scanned for gettext calls with string-literal arguments.
"""

from __future__ import annotations

import argparse
import ast
import io
import sys
import tokenize
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import polib

PACKAGE_DIR = Path(__file__).resolve().parent.parent
LOCALE_DIR = PACKAGE_DIR / "locale"

# gettext function → positions of (context, singular, plural) among its arguments, None if absent.
_KEYWORDS: dict[str, tuple[int | None, int, int | None]] = {
    "_": (None, 0, None),
    "gettext": (None, 0, None),
    "gettext_lazy": (None, 0, None),
    "gettext_noop": (None, 0, None),
    "ngettext": (None, 0, 1),
    "ngettext_lazy": (None, 0, 1),
    "pgettext": (0, 1, None),
    "pgettext_lazy": (0, 1, None),
    "npgettext": (0, 1, 2),
    "npgettext_lazy": (0, 1, 2),
}


@dataclass(frozen=True, order=True)
class Message:
    msgid: str
    context: str | None = None
    plural: str | None = None
    where: str = ""

    @property
    def key(self) -> tuple[str | None, str]:
        return (self.context, self.msgid)


def catalogs(locale_dir: Path | None = None) -> list[Path]:
    return sorted((locale_dir or LOCALE_DIR).glob("*/LC_MESSAGES/*.po"))


def compile_catalog(po_path: Path, mo_path: Path | None = None) -> Path:
    """Write the .mo beside the .po (or to `mo_path`). Fuzzy and empty entries are left out, as
    msgfmt does, so a half-done translation falls back to the English source text."""
    target = mo_path or po_path.with_suffix(".mo")
    polib.pofile(str(po_path)).save_as_mofile(str(target))
    return target


def catalog_entries(path: Path) -> dict[tuple[str | None, str], str | tuple[str, ...]]:
    """(context, msgid) → translation of a .po (translated entries only) or a .mo, comparable."""
    catalog = polib.mofile(str(path)) if path.suffix == ".mo" else polib.pofile(str(path))
    entries = catalog if path.suffix == ".mo" else catalog.translated_entries()
    result: dict[tuple[str | None, str], str | tuple[str, ...]] = {}
    for entry in entries:
        if not entry.msgid:
            continue  # the header
        if entry.msgid_plural:
            result[(entry.msgctxt, entry.msgid)] = tuple(
                entry.msgstr_plural[i] for i in sorted(entry.msgstr_plural)
            )
        else:
            result[(entry.msgctxt, entry.msgid)] = entry.msgstr
    return result


def stale_catalogs(locale_dir: Path | None = None) -> list[Path]:
    """The .po files whose .mo is missing or says something else."""
    import tempfile

    stale = []
    for po_path in catalogs(locale_dir):
        mo_path = po_path.with_suffix(".mo")
        if not mo_path.exists():
            stale.append(po_path)
            continue
        with tempfile.TemporaryDirectory() as tmp:
            fresh = compile_catalog(po_path, Path(tmp) / "fresh.mo")
            if catalog_entries(fresh) != catalog_entries(mo_path):
                stale.append(po_path)
    return stale


def messages_in_python(source: str, where: str = "") -> Iterator[Message]:
    """gettext calls whose message is a string literal (f-strings and variables are skipped:
    they cannot be translated by lookup anyway)."""
    try:
        tokens = [
            t
            for t in tokenize.generate_tokens(io.StringIO(source).readline)
            if t.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.COMMENT)
        ]
    except (tokenize.TokenError, SyntaxError):
        return
    for i, token in enumerate(tokens[:-1]):
        if token.type != tokenize.NAME or token.string not in _KEYWORDS:
            continue
        if tokens[i + 1].string != "(" or (i > 0 and tokens[i - 1].string in {".", "def"}):
            continue
        arguments = _literal_arguments(tokens, i + 2)
        context_at, msgid_at, plural_at = _KEYWORDS[token.string]
        wanted = [at for at in (context_at, msgid_at, plural_at) if at is not None]
        if len(arguments) <= max(wanted) or any(arguments[at] is None for at in wanted):
            continue
        msgid = arguments[msgid_at]
        if msgid:
            yield Message(
                msgid=msgid,
                context=arguments[context_at] if context_at is not None else None,
                plural=arguments[plural_at] if plural_at is not None else None,
                where=f"{where}:{token.start[0]}",
            )


def _literal_arguments(tokens: list[tokenize.TokenInfo], start: int) -> list[str | None]:
    """The leading arguments of a call: each a string literal (implicitly concatenated) or None."""
    arguments: list[str | None] = []
    parts: list[str] = []
    literal = True
    for token in tokens[start:]:
        if token.string in {",", ")"}:
            arguments.append("".join(parts) if literal and parts else None)
            if token.string == ")":
                break
            parts, literal = [], True
        elif token.type == tokenize.STRING and literal:
            try:
                value = ast.literal_eval(token.string)
            except (ValueError, SyntaxError):
                literal = False
                continue
            if isinstance(value, str):
                parts.append(value)
            else:
                literal = False
        else:
            literal = False
            if token.string == "(":  # a nested call: stop at what we have, it is not a literal
                arguments.append(None)
                break
    return arguments


def messages_in_template(source: str, where: str = "") -> Iterator[Message]:
    from django.utils.translation.template import templatize

    # templatize keeps the template's indentation, which Python's tokenizer would reject.
    code = "\n".join(line.lstrip() for line in templatize(source, origin=where).splitlines())
    yield from messages_in_python(code, where)


def used_messages(package_dir: Path = PACKAGE_DIR) -> list[Message]:
    """Every message our templates and Python code ask to translate, first occurrence of each."""
    found: dict[tuple[str | None, str], Message] = {}

    def add(messages: Iterable[Message]) -> None:
        for message in messages:
            found.setdefault(message.key, message)

    for path in sorted(package_dir.rglob("*.html")):
        if "templates" in path.parts:
            add(messages_in_template(path.read_text(encoding="utf-8"), _relative(path, package_dir)))
    for path in sorted(package_dir.rglob("*.py")):
        if "migrations" in path.parts:
            continue  # migrations freeze plain strings; they never show in the UI
        add(messages_in_python(path.read_text(encoding="utf-8"), _relative(path, package_dir)))
    return sorted(found.values())


def untranslated(po_path: Path, package_dir: Path = PACKAGE_DIR) -> list[Message]:
    translated = catalog_entries(po_path)
    return [m for m in used_messages(package_dir) if m.key not in translated]


def update_catalog(po_path: Path, package_dir: Path = PACKAGE_DIR) -> int:
    """Append each used message the catalog lacks, untranslated. Returns how many were added."""
    catalog = polib.pofile(str(po_path), wrapwidth=0)
    known = {(entry.msgctxt, entry.msgid) for entry in catalog}
    added = 0
    for message in used_messages(package_dir):
        if message.key in known:
            continue
        entry = polib.POEntry(
            msgid=message.msgid,
            msgctxt=message.context,
            occurrences=[tuple(message.where.rsplit(":", 1))] if message.where else [],
        )
        if message.plural is not None:
            entry.msgid_plural = message.plural
            entry.msgstr_plural = {0: ""}  # Chinese has one plural form (see Plural-Forms)
        catalog.append(entry)
        added += 1
    if added:
        catalog.save(str(po_path))
    return added


def _relative(path: Path, root: Path) -> str:
    try:
        return str(path.relative_to(root.parent))
    except ValueError:
        return str(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m salesloop.core.i18n", description=__doc__.split("\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--check", action="store_true", help="fail if a .mo is stale or a message lacks Chinese"
    )
    mode.add_argument("--update", action="store_true", help="add missing messages to the .po files")
    args = parser.parse_args(argv)

    po_paths = catalogs()
    if not po_paths:
        print(f"no .po files under {LOCALE_DIR}", file=sys.stderr)
        return 1
    if args.update:
        for po_path in po_paths:
            print(f"{_relative(po_path, PACKAGE_DIR)}: {update_catalog(po_path)} messages added")
        return 0
    if args.check:
        failed = False
        for po_path in stale_catalogs():
            failed = True
            print(f"{_relative(po_path, PACKAGE_DIR)}: .mo is out of date; run `make messages`")
        for po_path in po_paths:
            for message in untranslated(po_path):
                failed = True
                where = _relative(po_path, PACKAGE_DIR)
                print(f"{where}: no translation for {message.msgid!r} ({message.where})")
        return 1 if failed else 0
    for po_path in po_paths:
        mo_path = compile_catalog(po_path)
        print(f"compiled {_relative(mo_path, PACKAGE_DIR)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
