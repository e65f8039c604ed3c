"""Reader verdicts in plain language, in English and Russian.

A reader in a censored country must understand at a glance whether what
they got is genuine and current, and if not, who is to blame: a mirror that
lags, a mirror that forges, a clock that is wrong, or a network that blocks.
"""

from __future__ import annotations

import os

from mirror.errors import MirrorError
from mirror.reader.page_verdicts import PAGE_TEXTS, Language

__all__ = [
    "LANGUAGES",
    "Language",
    "default_language",
    "failure",
    "localized",
    "mirror_line",
    "say",
    "sentence",
]

LANGUAGES: tuple[Language, ...] = ("en", "ru")

_TEXT: dict[str, dict[Language, str]] = {
    "verified": {
        "en": "verified: {publisher}, edition {eid} (version {version}) of {date}, from {mirror}",
        "ru": (
            "проверено: {publisher}, выпуск {eid} (версия {version}) от {date}, с зеркала {mirror}"
        ),
    },
    "already": {
        "en": "you already had this edition; nothing new was published",
        "ru": "этот выпуск у вас уже был; новых нет",
    },
    "open": {"en": "open: {url}", "ru": "открыть: {url}"},
    "latest-only": {
        "en": "the newest articles only so far; `mirror fetch` again gets the whole edition",
        "ru": "пока только новые статьи; `mirror fetch` ещё раз загрузит весь выпуск",
    },
    "mirror.ok": {"en": "verified", "ru": "проверено"},
    "mirror.stale": {"en": "behind the others ({detail})", "ru": "отстаёт от других ({detail})"},
    "mirror.other-publisher": {
        "en": "serves another publisher's editions ({detail})",
        "ru": "отдаёт выпуски другого издателя ({detail})",
    },
    "mirror.rollback": {
        "en": "serves an older edition than you already have",
        "ru": "отдаёт более старый выпуск, чем уже есть у вас",
    },
    "mirror.tampered": {
        "en": "FORGED data, rejected ({detail})",
        "ru": "ПОДДЕЛЬНЫЕ данные, отклонены ({detail})",
    },
    "mirror.expired": {
        "en": "serves expired data, or your clock is wrong",
        "ru": "отдаёт просроченные данные, или у вас неверные часы",
    },
    "mirror.unreachable": {"en": "unreachable ({detail})", "ru": "недоступно ({detail})"},
    "fail.tampered": {
        "en": "no mirror served a genuine edition: forged data from {count} of them was rejected",
        "ru": (
            "ни одно зеркало не отдало подлинный выпуск: "
            "поддельные данные с {count} зеркал отклонены"
        ),
    },
    "fail.rollback": {
        "en": "every mirror serves an older edition than the one you already have",
        "ru": "все зеркала отдают более старый выпуск, чем уже есть у вас",
    },
    "fail.expired": {
        "en": "every mirror serves expired data; your clock says {now}",
        "ru": "все зеркала отдают просроченные данные; ваши часы показывают {now}",
    },
    "fail.other-publisher": {
        "en": "these mirrors serve another publisher's editions, not the one whose root you pinned",
        "ru": "эти зеркала отдают выпуски другого издателя, а не того, чей корень вы закрепили",
    },
    "hint.other-publisher": {
        "en": "Check that you pinned the right root.json, or ask for this publisher's mirrors.",
        "ru": "Проверьте, тот ли root.json вы закрепили, или узнайте адреса зеркал этого издателя.",
    },
    "fail.unreachable": {
        "en": "no mirror could be reached ({count} tried)",
        "ru": "ни одно зеркало недоступно (проверено: {count})",
    },
    "hint.tampered": {
        "en": "Someone between you and the mirrors is altering data; try other mirrors or a VPN.",
        "ru": "Кто-то между вами и зеркалами подменяет данные; попробуйте другие зеркала или VPN.",
    },
    "hint.rollback": {
        "en": "You may be shown an old edition on purpose; try other mirrors later.",
        "ru": "Возможно, вам намеренно показывают старый выпуск; попробуйте другие зеркала позже.",
    },
    "hint.expired": {
        "en": "Check your clock and time zone; if they are right, the mirrors are frozen.",
        "ru": "Проверьте часы и часовой пояс; если они верны, зеркала «заморожены».",
    },
    "hint.unreachable": {
        "en": "Try again later, from another network, or ask for another mirror address.",
        "ru": "Попробуйте позже, из другой сети, или узнайте адрес другого зеркала.",
    },
}


def default_language() -> Language:
    """Russian when the locale says so, English otherwise."""
    for variable in ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE"):
        value = os.environ.get(variable, "")
        if value:
            return "ru" if value.lower().startswith("ru") else "en"
    return "en"


def say(key: str, language: Language, **values: object) -> str:
    """The text ``key`` in ``language`` with ``values`` filled in."""
    return _TEXT[key][language].format(**values)


def mirror_line(url: str, verdict: str, detail: str, language: Language) -> str:
    """One line about one mirror that did not give the edition."""
    return f"  {url}: {say(f'mirror.{verdict}', language, detail=detail)}"


def failure(verdict: str, language: Language, *, count: int, now: str) -> tuple[str, str]:
    """(sentence, hint) when no mirror gave a verified edition."""
    known = ("tampered", "rollback", "expired", "other-publisher")
    key = verdict if verdict in known else "unreachable"
    return (
        say(f"fail.{key}", language, count=count, now=now),
        say(f"hint.{key}", language),
    )


HINT_LABEL: dict[Language, str] = {"en": "hint", "ru": "подсказка"}
"""The word before a hint, in each language."""

_OTHER_HINTS: dict[str, dict[Language, str]] = {
    "usage": {"ru": "Запустите команду с --help, чтобы увидеть, как ею пользоваться."},
    "keys": {"ru": "Проверьте ключи и ссылку на пароль в конфигурации."},
}


def sentence(verdict: str, language: Language, **values: object) -> str:
    """The sentence of a good verdict (verified, superseded, expired-allowed), filled in."""
    return PAGE_TEXTS[verdict]["sentence"][language].format(**values)


def localized(error: MirrorError, language: Language) -> MirrorError:
    """``error`` as the reader should read it: the verdict's headline and hint in ``language``.

    The detail stays as the check wrote it (it names files, versions and
    keys); the headline before it and the hint after it come from the one
    table of verdict texts that `reader.html` uses too (`page_verdicts`).
    """
    if language == "en":
        return error
    texts = PAGE_TEXTS.get(error.verdict)
    if texts is not None:
        return error.reworded(
            f"{texts['title'][language]}: {error.message}",
            texts["hint"][language],
            hint_label=HINT_LABEL[language],
        )
    hint = _OTHER_HINTS.get(error.verdict, {}).get(language)
    return error.reworded(error.message, hint or error.hint, hint_label=HINT_LABEL[language])
