# ruff: noqa: RUF001 - the Cyrillic word list is meant to contain Cyrillic letters
"""Deterministic benchmark corpus: Markdown articles with YAML front matter, some with images.

Usage::

    python bench/corpus.py OUT_DIR --articles 10000 --seed 1 [--target-mb 300]

The same arguments always produce byte-identical files (everything comes from
``random.Random(seed)``). About half the articles are ``language: ru`` and
written mostly in Cyrillic, the rest mostly in Latin script, each 5-15 KB of
Markdown with several paragraphs, headings and lists. About 20% reference one
image; images are random bytes framed by JPEG SOI/EOI markers, so they do not
compress, like real JPEGs. Image sizes are scaled so that the whole corpus is
about ``--target-mb`` megabytes (10**6 bytes): a bigger corpus means bigger
images, never more articles.
"""

from __future__ import annotations

import argparse
import random
import sys
from dataclasses import dataclass
from pathlib import Path


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


LATIN_WORDS = _words(
    "the city council met on tuesday to discuss budget reform while residents gathered "
    "outside demanding answers about water prices schools hospitals roads and public "
    "transport officials said the plan would be published next week but critics argued "
    "that independent journalists were denied access to the meeting minutes report "
    "government minister parliament election court judge ruling protest police border "
    "energy market inflation wages pension health vaccine climate river forest harvest "
    "village region province capital mayor governor opposition coalition treaty sanction "
    "export import factory workers union strike negotiation agreement investigation "
    "evidence document source witness interview statement archive history memory family "
    "children teacher student university library museum theatre festival music film "
    "author editor newspaper radio broadcast internet censorship mirror access freedom "
    "rights law decree tax subsidy loan bank currency price fuel gas electricity winter "
    "summer morning evening yesterday today tomorrow quickly slowly carefully openly "
    "quietly again still already never always often rarely new old large small local "
    "national foreign official independent regional urban rural public private"
)

CYRILLIC_WORDS = _words(
    "городской совет собрался во вторник чтобы обсудить бюджет пока жители стояли у "
    "здания и требовали ответов о ценах на воду школы больницы дороги и общественный "
    "транспорт чиновники заявили что план опубликуют на следующей неделе но критики "
    "отметили что независимых журналистов не пустили на заседание доклад правительство "
    "министр парламент выборы суд судья решение протест полиция граница энергия рынок "
    "инфляция зарплата пенсия здоровье вакцина климат река лес урожай деревня область "
    "губерния столица мэр губернатор оппозиция коалиция договор санкции экспорт импорт "
    "завод рабочие профсоюз забастовка переговоры соглашение расследование доказательства "
    "документ источник свидетель интервью заявление архив история память семья дети "
    "учитель студент университет библиотека музей театр фестиваль музыка фильм автор "
    "редактор газета радио эфир интернет цензура зеркало доступ свобода права закон указ "
    "налог субсидия кредит банк валюта цена топливо газ электричество зима лето утром "
    "вечером вчера сегодня завтра быстро медленно осторожно открыто тихо снова ещё уже "
    "никогда всегда часто редко новый старый большой малый местный национальный "
    "иностранный официальный независимый региональный городской сельский публичный"
)

AUTHORS = (
    "Anna Petrova", "Иван Смирнов", "Maria Kowalska", "Ольга Кузнецова", "John Carter",
    "Редакция", "Newsroom", "Дмитрий Волков", "Elena Sokolova", "Алексей Морозов",
)  # fmt: skip

TAGS = (
    "news", "politics", "economy", "culture", "новости", "политика", "экономика",
    "культура", "регионы", "society",
)  # fmt: skip

SOI = b"\xff\xd8\xff\xe0"
"""JPEG start-of-image marker followed by an APP0 marker."""
EOI = b"\xff\xd9"
"""JPEG end-of-image marker."""
MIN_IMAGE_BYTES = 2048
WRITE_CHUNK = 1 << 20


@dataclass(frozen=True)
class CorpusStats:
    """What was generated."""

    articles: int
    images: int
    article_bytes: int
    image_bytes: int

    @property
    def total_bytes(self) -> int:
        """Bytes of all files together."""
        return self.article_bytes + self.image_bytes


class _Prose:
    """Sentences and paragraphs in one main alphabet, with words from the other mixed in."""

    def __init__(self, rng: random.Random, *, cyrillic: bool) -> None:
        self._rng = rng
        main, other = (CYRILLIC_WORDS, LATIN_WORDS) if cyrillic else (LATIN_WORDS, CYRILLIC_WORDS)
        # One word in ten from the other alphabet: names, brands and quotes in real copy.
        self._pool = list(main) * 9 + list(other)

    def words(self, count: int) -> list[str]:
        return self._rng.choices(self._pool, k=count)

    def sentence(self) -> str:
        words = self.words(self._rng.randint(6, 18))
        if len(words) > 8 and self._rng.random() < 0.3:
            words[self._rng.randrange(2, len(words) - 2)] += ","
        text = " ".join(words)
        return text[0].upper() + text[1:] + self._rng.choice((".", ".", ".", "!", "?"))

    def title(self) -> str:
        text = " ".join(self.words(self._rng.randint(4, 9)))
        return text[0].upper() + text[1:]

    def paragraph(self) -> str:
        return " ".join(self.sentence() for _ in range(self._rng.randint(3, 8)))


def _article_body(rng: random.Random, prose: _Prose, target_bytes: int, image: str | None) -> str:
    """Markdown of about `target_bytes` UTF-8 bytes: paragraphs, headings, a list, an image."""
    blocks: list[str] = []
    size = 0
    image_at = rng.randint(1, 3) if image else -1
    while size < target_bytes:
        roll = rng.random()
        index = len(blocks)
        if index == image_at and image is not None:
            block = f"![{prose.title()}]({image})"
        elif index > 1 and roll < 0.12:
            block = "## " + prose.title()
        elif index > 1 and roll < 0.2:
            marker = "-" if rng.random() < 0.5 else "1."
            items = [f"{marker} {prose.sentence()}" for _ in range(rng.randint(2, 5))]
            block = "\n".join(items)
        elif roll < 0.25:
            words = prose.words(3)
            block = f"{prose.paragraph()} **{words[0]}** *{words[1]}* `{words[2]}`"
        else:
            block = prose.paragraph()
        blocks.append(block)
        size += len(block.encode("utf-8")) + 2
    if image is not None and image_at >= len(blocks):
        blocks.append(f"![{prose.title()}]({image})")
    return "\n\n".join(blocks) + "\n"


def _front_matter(rng: random.Random, prose: _Prose, slug: str, number: int, language: str) -> str:
    day = 1 + number % 28
    hour = number % 24
    minute = (number * 7) % 60
    tags = sorted(set(rng.sample(TAGS, rng.randint(1, 3))))
    title = prose.title().replace('"', "")
    return (
        "---\n"
        f'title: "{title}"\n'
        f"date: 2026-11-{day:02d}T{hour:02d}:{minute:02d}:00Z\n"
        f'author: "{rng.choice(AUTHORS)}"\n'
        f"language: {language}\n"
        f"slug: {slug}\n"
        f"tags: [{', '.join(tags)}]\n"
        "---\n\n"
    )


def _write_image(path: Path, rng: random.Random, size: int) -> None:
    """Random bytes between SOI and EOI markers: `size` bytes that do not compress."""
    remaining = size - len(SOI) - len(EOI)
    with path.open("wb", buffering=WRITE_CHUNK) as file:
        file.write(SOI)
        while remaining > 0:
            chunk = min(remaining, WRITE_CHUNK)
            file.write(rng.randbytes(chunk))
            remaining -= chunk
        file.write(EOI)


def generate(out_dir: Path, *, articles: int, seed: int, target_mb: float) -> CorpusStats:
    """Write the corpus into `out_dir` (created; existing files with the same names replaced)."""
    rng = random.Random(seed)  # noqa: S311 - reproducible test data, not secrets
    out_dir.mkdir(parents=True, exist_ok=True)
    image_numbers: list[int] = []
    article_bytes = 0
    for number in range(1, articles + 1):
        slug = f"a-{number:05d}"
        cyrillic = rng.random() < 0.5
        prose = _Prose(rng, cyrillic=cyrillic)
        image = f"img-{number:05d}.jpg" if rng.random() < 0.2 else None
        if image is not None:
            image_numbers.append(number)
        front = _front_matter(rng, prose, slug, number, "ru" if cyrillic else "en")
        body = _article_body(rng, prose, rng.randint(5000, 14500) - len(front), image)
        data = (front + body).encode("utf-8")
        (out_dir / f"{slug}.md").write_bytes(data)
        article_bytes += len(data)

    image_budget = max(0, int(target_mb * 1_000_000) - article_bytes)
    # Sizes vary 0.5x-1.5x around the mean, then are scaled to fill the budget exactly.
    weights = [rng.uniform(0.5, 1.5) for _ in image_numbers]
    total_weight = sum(weights) or 1.0
    image_bytes = 0
    for number, weight in zip(image_numbers, weights, strict=True):
        size = max(MIN_IMAGE_BYTES, int(image_budget * weight / total_weight))
        _write_image(out_dir / f"img-{number:05d}.jpg", rng, size)
        image_bytes += size
    return CorpusStats(
        articles=articles,
        images=len(image_numbers),
        article_bytes=article_bytes,
        image_bytes=image_bytes,
    )


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("out_dir", type=Path, help="folder to write the corpus into")
    parser.add_argument("--articles", type=int, default=10_000, help="number of articles")
    parser.add_argument("--seed", type=int, default=1, help="random seed")
    parser.add_argument(
        "--target-mb", type=float, default=300.0, help="total corpus size in MB (10**6 bytes)"
    )
    args = parser.parse_args(argv)
    stats = generate(args.out_dir, articles=args.articles, seed=args.seed, target_mb=args.target_mb)
    print(
        f"{stats.articles} articles ({stats.article_bytes / 1e6:.1f} MB), "
        f"{stats.images} images ({stats.image_bytes / 1e6:.1f} MB), "
        f"total {stats.total_bytes / 1e6:.1f} MB in {args.out_dir}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
