"""The verdicts `reader.html` shows, in English and Russian: one table, built from `mirror.errors`.

The page must say what `mirror verify` says about the same file. The verdict
*classes* are not copied: `verdict_table` walks the error tree of
`mirror/errors.py` (everything a file check can raise: `VerificationError`
and its leaves, `StorageError`, and the "internal error" root) and takes
each verdict's name, exit code and English hint from the classes
themselves. Only what the CLI does not have lives here: a short headline per
verdict, the Russian hint, and the two sentences of a verified edition.

A new verdict is therefore one new leaf in `mirror/errors.py` plus its
headline and Russian hint in `PAGE_TEXTS` (tests/test_reader_page.py fails
until both exist), and the page's check that raises it.
"""

from __future__ import annotations

from typing import Any, Literal

from mirror.errors import MirrorError, StorageError, VerificationError

Language = Literal["en", "ru"]

PAGE_ROOTS: tuple[type[MirrorError], ...] = (VerificationError, StorageError)
"""The families of errors checking a file can raise (plus `MirrorError` itself: a bug)."""

INTERNAL_HINT: dict[Language, str] = {
    "en": "This is a bug in mirror's reader page; please tell the publisher which file you opened.",
    "ru": "Это ошибка страницы проверки mirror; сообщите издателю, какой файл вы открыли.",
}

PAGE_TEXTS: dict[str, dict[str, dict[Language, str]]] = {
    "verified": {
        "title": {"en": "Genuine and current", "ru": "Подлинный и актуальный выпуск"},
        "sentence": {
            "en": "verified: {publisher}, edition {eid} (version {version}) of {date}",
            "ru": "проверено: {publisher}, выпуск {eid} (версия {version}) от {date}",
        },
        "hint": {
            "en": "Every file was checked against the publisher's signatures. You can read it now.",
            "ru": "Каждый файл сверен с подписями издателя. Можно читать.",
        },
    },
    "superseded": {
        "title": {
            "en": "Genuine, but signed with a key since retired",
            "ru": "Подлинный, но подписан ключом, который с тех пор заменён",
        },
        "sentence": {
            "en": "genuine, but superseded: signed under root version {root_version} with a key "
            "the publisher retired on {retired} (your root is version {newest_root_version}); "
            "newer editions are signed with newer keys",
            "ru": "подлинный, но устаревший: подписан при корне версии {root_version} ключом, "
            "который издатель заменил {retired} (ваш корень — версия {newest_root_version}); "
            "новые выпуски подписаны новыми ключами",
        },
        "hint": {
            "en": "It is the publisher's: you can read it. Look for a newer edition too.",
            "ru": "Это выпуск издателя, его можно читать. Поищите и более новый выпуск.",
        },
    },
    "expired-allowed": {
        "title": {"en": "Genuine but expired", "ru": "Подлинный, но просроченный выпуск"},
        "sentence": {
            "en": "EXPIRED BUT READ ANYWAY: {publisher}, edition {eid} (version {version}) of "
            "{date} expired {expires}; it is {days} days old and may be out of date.",
            "ru": "ПРОСРОЧЕН, НО ОТКРЫТ: {publisher}, выпуск {eid} (версия {version}) от {date} "
            "действовал до {expires}; ему {days} дн., он может быть устаревшим.",
        },
        "hint": {
            "en": "It is the publisher's, but newer editions may exist; look for one.",
            "ru": "Это выпуск издателя, но могут быть более новые; поищите их.",
        },
    },
    "tampered": {
        "title": {
            "en": "Forged or changed: do not read it",
            "ru": "Подделка или изменённый файл: не читайте",
        },
        "hint": {
            "ru": "Не читайте эту копию; возьмите выпуск с другого зеркала или у другого человека "
            "и проверьте снова.",
        },
    },
    "expired": {
        "title": {"en": "Expired", "ru": "Срок действия истёк"},
        "hint": {
            "ru": "Проверьте часы или найдите более новый выпуск; можно открыть и этот, "
            "отметив «Открыть просроченный выпуск», на свой риск.",
        },
    },
    "not-yet-valid": {
        "title": {
            "en": "Not yet valid: your clock or a forgery",
            "ru": "Ещё не действителен: неверные часы или подделка",
        },
        "hint": {
            "ru": "Проверьте, что часы и часовой пояс вашего устройства верны, и проверьте снова.",
        },
    },
    "rollback": {
        "title": {
            "en": "Older than an edition you already checked",
            "ru": "Старше выпуска, который вы уже проверили",
        },
        "hint": {
            "ru": "Возможно, вам намеренно подсовывают старый выпуск; возьмите последний "
            "с другого зеркала.",
        },
    },
    "stale": {
        "title": {"en": "Behind what was published", "ru": "Отстаёт от опубликованного"},
        "hint": {"ru": "Зеркало или кеш перед ним всё ещё отдаёт старую версию."},
    },
    "unsafe-archive": {
        "title": {
            "en": "Hostile or broken archive: do not open it",
            "ru": "Опасный или повреждённый архив: не открывайте",
        },
        "hint": {
            "ru": "Не распаковывайте этот файл другими программами; возьмите выпуск из другого "
            "источника.",
        },
    },
    "other-publisher": {
        "title": {
            "en": "Another publisher's edition",
            "ru": "Выпуск другого издателя",
        },
        "hint": {
            "ru": "Проверьте его файлом root.json того издателя, который его выпустил (если вы "
            "ему доверяете), или возьмите выпуски этого издателя с его зеркал.",
        },
    },
    "incomplete": {
        "title": {
            "en": "Not a whole edition: download it again",
            "ru": "Файл не является полным выпуском: скачайте его снова",
        },
        "hint": {
            "ru": "Скачайте его снова или возьмите с другого зеркала или у другого человека, "
            "затем проверьте.",
        },
    },
    "compromised-key": {
        "title": {
            "en": "Signed with a key the publisher declared stolen",
            "ru": "Подписан ключом, который издатель объявил украденным",
        },
        "hint": {
            "ru": "Этим ключом может владеть кто-то другой: не читайте эту копию. Новые выпуски "
            "подписаны новыми ключами издателя.",
        },
    },
    "io": {
        "title": {"en": "The file could not be read", "ru": "Файл не удалось прочитать"},
        "hint": {
            "ru": "Проверьте, что файл на месте и доступен для чтения, и выберите его снова.",
        },
    },
    "error": {
        "title": {"en": "Internal error", "ru": "Внутренняя ошибка"},
        "hint": INTERNAL_HINT,
    },
}
"""Per verdict: a headline, and the hint in the languages the error classes do not carry."""


def page_error_classes() -> list[type[MirrorError]]:
    """Every error class a file check can raise, breadth first from `PAGE_ROOTS`."""
    found: list[type[MirrorError]] = []
    queue: list[type[MirrorError]] = list(PAGE_ROOTS)
    while queue:
        cls = queue.pop(0)
        if cls not in found:
            found.append(cls)
            queue.extend(cls.__subclasses__())
    return found


def verdict_table() -> list[dict[str, Any]]:
    """The page's verdicts: name, exit code, headline and hint in every language.

    For each verdict name the hint is the ``default_hint`` of the most general
    class carrying that verdict with a hint, exactly the text the CLI prints.
    """
    entries: dict[str, dict[str, Any]] = {}
    for cls in page_error_classes():
        entry = entries.setdefault(
            cls.verdict, {"verdict": cls.verdict, "exit_code": cls.exit_code}
        )
        if entry["exit_code"] != cls.exit_code:
            raise ValueError(f"verdict {cls.verdict} has two exit codes in mirror/errors.py")
        if "hint_en" not in entry and cls.default_hint:
            entry["hint_en"] = cls.default_hint
            entry["error_class"] = cls.__name__
    entries["error"] = {
        "verdict": "error",
        "exit_code": MirrorError.exit_code,
        "hint_en": INTERNAL_HINT["en"],
        "error_class": MirrorError.__name__,
    }
    for name in ("verified", "superseded", "expired-allowed"):
        entries[name] = {"verdict": name, "exit_code": 0, "hint_en": PAGE_TEXTS[name]["hint"]["en"]}
    table = []
    for name, entry in entries.items():
        texts = PAGE_TEXTS.get(name)
        if texts is None:
            raise KeyError(f"verdict {name} has no headline in mirror/reader/page_verdicts.py")
        row = {
            "verdict": name,
            "exit_code": entry["exit_code"],
            "error_class": entry.get("error_class"),
            "title": dict(texts["title"]),
            "hint": {"en": entry.get("hint_en", ""), "ru": texts["hint"]["ru"]},
        }
        if "sentence" in texts:
            row["sentence"] = dict(texts["sentence"])
        table.append(row)
    return sorted(table, key=lambda row: (row["exit_code"], row["verdict"]))
