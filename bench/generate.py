"""Deterministic synthetic commentaries, and cached SQLite databases full of them.

``generate(n, seed)`` yields import records (the fields of a POST plus ``id``,
``created_at`` and ``updated_at``, as ``feedsvc import`` reads them), shaped like
data/commentaries.jsonl: languages en/be/ru in its proportions, its five categories,
titles of 40-120 characters, ~300-character summaries, 1.5-6 KB HTML bodies mixing
English and Cyrillic words, 1-3 authors of 200, 1-5 tags of 60, a period and trend on
60 %, an image on 30 %, translation groups, a few drafts, publication times spread over
ten years with varied UTC offsets. Same (n, seed), same records, byte for byte.

``populate(path, n)`` writes them into an SQLite database through the store's bulk
import, the path ``feedsvc import`` takes; ``database(n)`` caches that file as
bench/out/db-{n}.sqlite.

    python -m bench.generate 100000              # build (or reuse) bench/out/db-100000.sqlite
    python -m bench.generate 1000 --jsonl x.jsonl  # the records as JSON Lines, for feedsvc import
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import concurrent.futures
import json
import multiprocessing
import os
import random
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import msgspec
from ulid import ULID

OUT = Path(__file__).resolve().parent / "out"
SEED = 20250601
GENERATOR_VERSION = 2
"""Bump when the records change, so cached databases are rebuilt."""

# data/commentaries.jsonl: 31 en, 5 be, 4 ru.
LANGUAGES = ("en", "be", "ru")
LANGUAGE_WEIGHTS = (31, 5, 4)
# The sample's categories, with its spread (13/8/7/6/6).
CATEGORIES: dict[str, tuple[dict[str, str], dict[str, str]]] = {
    "regional-security": (
        {"en": "Regional security", "be": "Рэгіянальная бяспека", "ru": "Региональная безопасность"},
        {"en": "Military activity, borders and alliances in the region."},
    ),
    "economy-and-energy": (
        {"en": "Economy and energy", "be": "Эканоміка і энергетыка", "ru": "Экономика и энергетика"},
        {"en": "Trade, sanctions, energy supply and prices."},
    ),
    "domestic-politics": (
        {"en": "Domestic politics", "be": "Унутраная палітыка", "ru": "Внутренняя политика"},
        {"en": "Institutions, elections, repression and society."},
    ),
    "foreign-policy": (
        {"en": "Foreign policy", "be": "Знешняя палітыка", "ru": "Внешняя политика"},
        {"en": "Diplomacy, treaties and relations with neighbours."},
    ),
    "information-space": (
        {"en": "Information space", "be": "Інфармацыйная прастора", "ru": "Информационная среда"},
        {"en": "Media, propaganda and disinformation."},
    ),
}
CATEGORY_WEIGHTS = (13, 8, 7, 6, 6)
START = datetime(2015, 6, 1, tzinfo=UTC)
END = datetime(2025, 6, 1, tzinfo=UTC)
"""Publication times fall in [START, END): fixed, so databases do not depend on the day."""
OFFSETS = ((0, 25), (60, 20), (120, 15), (180, 30), (-300, 4), (330, 2), (-240, 2), (540, 2))
"""(UTC offset in minutes, weight); offset 0 is written as ``Z`` half of the time."""

def _split(text: str) -> list[str]:
    return text.split()


EN_WORDS = _split("""
security border ministry defence exercise drills troops alliance sanctions energy gas oil
prices trade exports imports government parliament election campaign opposition protest
court sentence prisoners release dialogue diplomacy negotiations summit statement council
union neighbours region regional capital officials agency report analysis indicators week
month year trend signal rhetoric messaging audience media television propaganda narrative
disinformation network platform channel economy growth inflation budget debt loans credit
currency reserves bank industry potash fertiliser refinery pipeline transit railway port
logistics migration refugees crossing checkpoint visa regime policy reform constitution
referendum law decree amnesty repression arrests detention civil society independent
journalists editors readers survey poll public opinion support pressure leverage
concessions incentives partners allies strategic deterrence nuclear missiles airspace
military units brigade battalion rotation deployment withdrawal equipment reservists
mobilisation training grounds observers monitoring evidence sources interviews documents
cooperation agreement treaty framework integration standards market competition private
sector state enterprises ownership privatisation wages pensions unemployment labour
households consumption harvest agriculture grain exports prices volatility risks scenario
baseline outlook forecast uncertainty escalation de-escalation stability continuity change
""")
BE_WORDS = _split("""
бяспека мяжа міністэрства абароны вучэнні войскі саюз санкцыі энергетыка газ нафта кошты
гандаль экспарт імпарт урад парламент выбары кампанія апазіцыя пратэст суд вырак палітвязні
вызваленне дыялог дыпламатыя перамовы саміт заява рада суседзі рэгіён сталіца чыноўнікі
агенцтва справаздача аналіз індыкатары тыдзень месяц год тэндэнцыя сігнал рыторыка медыя
тэлебачанне прапаганда наратыў дэзынфармацыя эканоміка рост інфляцыя бюджэт доўг крэдыт
валюта рэзервы банк прамысловасць калій угнаенні транзіт чыгунка лагістыка міграцыя
ўцекачы пераход віза рэжым палітыка рэформа канстытуцыя рэферэндум закон указ амністыя
рэпрэсіі арышты грамадства незалежныя журналісты чытачы апытанне грамадская думка ціск
саюзнікі стрымліванне ракеты паветраная прастора вайсковыя часткі ратацыя разгортванне
назіральнікі маніторынг доказы крыніцы дакументы супрацоўніцтва пагадненне дагавор рынак
""")
RU_WORDS = _split("""
безопасность граница министерство обороны учения войска союз санкции энергетика газ нефть
цены торговля экспорт импорт правительство парламент выборы кампания оппозиция протест
суд приговор политзаключённые освобождение диалог дипломатия переговоры саммит заявление
совет соседи регион столица чиновники агентство доклад анализ индикаторы неделя месяц год
тенденция сигнал риторика медиа телевидение пропаганда нарратив дезинформация экономика
рост инфляция бюджет долг кредит валюта резервы банк промышленность калий удобрения
транзит железная дорога логистика миграция беженцы переход виза режим политика реформа
конституция референдум закон указ амнистия репрессии аресты общество независимые
журналисты читатели опрос общественное мнение давление союзники сдерживание ракеты
воздушное пространство воинские части ротация развертывание наблюдатели мониторинг
доказательства источники документы сотрудничество соглашение договор рынок
""")
VOCABULARY = {"en": (EN_WORDS, BE_WORDS + RU_WORDS), "be": (BE_WORDS, EN_WORDS), "ru": (RU_WORDS, EN_WORDS)}
"""Per language: (its own words, the other script's), mixed about 9:1."""

_FIRST = _split("""Anna Olga Tomas Konrad Maria Iryna Pavel Jan Katsiaryna Andrei Lena Mikalai Ewa
Dmitri Sofia Ales Marta Viktor Hanna Piotr""")
_LAST = _split("""Wielgosz Adamkus Kowalczyk Hrytsevich Novik Lindqvist Petrauskas Sokal Baranova
Zhuk Melnik Kasperovich Nowak Berzins Tamm""")
_INSTITUTES = (
    "Vistula Centre for Security Studies", "Nemunas Institute for Regional Studies",
    "Baltic Policy Forum", "Centre for Eastern Economies", "Media Monitoring Lab",
)
AUTHORS: list[dict[str, str]] = [
    {
        "name": f"{_FIRST[j % 20]} {_LAST[j // 20]}",
        "affiliation": f"{('Senior Fellow', 'Research Fellow', 'Analyst')[i % 3]}, {_INSTITUTES[i % 5]}",
        "url": f"https://example.org/people/{j}",
    }
    for i in range(200)
    for j in [i * 7 % 300]  # a stride through the 20 x 15 name pairs: 200 distinct names
]
TAGS: list[str] = [
    "military-exercises", "border", "nato", "sanctions", "eu", "diplomacy", "elections", "energy",
    "gas", "oil", "potash", "trade", "inflation", "budget", "russia", "ukraine", "poland",
    "lithuania", "latvia", "china", "migration", "political-prisoners", "repression", "courts",
    "media", "propaganda", "disinformation", "telegram", "opposition", "protests", "constitution",
    "referendum", "nuclear", "missiles", "airspace", "railways", "transit", "agriculture",
    "grain", "banks", "currency", "debt", "wages", "labour", "education", "church", "culture",
    "language", "diaspora", "visas", "human-rights", "osce", "un", "cis", "eaeu",
    "union-state", "security-services", "cyber", "satellites", "weather-balloons",
]
assert len({a["name"] for a in AUTHORS}) == 200 and len(set(TAGS)) == 60
# Popularity falls off with rank, as tags and bylines do.
AUTHOR_WEIGHTS = [1 / (r + 1) ** 0.7 for r in range(len(AUTHORS))]
TAG_WEIGHTS = [1 / (r + 1) ** 0.8 for r in range(len(TAGS))]
TRENDS = ("improved", "worsened", "unchanged")
BLOCK = 64
"""Records are made in blocks, each from its own seeded generator (so blocks can be made in
parallel); translations are paired within a block."""


# --- records ------------------------------------------------------------------------------


def generate(n: int, seed: int = SEED) -> Iterator[dict[str, Any]]:
    """``n`` import records, deterministic in (n, seed); a prefix of a longer run."""
    for block in range((n + BLOCK - 1) // BLOCK):
        yield from make_block(seed, block)[: n - block * BLOCK]


def make_block(seed: int, block: int) -> list[dict[str, Any]]:
    rng = random.Random(f"{seed}:{block}")
    langs = rng.choices(LANGUAGES, LANGUAGE_WEIGHTS, k=BLOCK)
    records = [_record(rng, lang) for lang in langs]
    # About half the be/ru records translate an English one of the same block.
    originals = [r for r in records if r["lang"] == "en"]
    rng.shuffle(originals)
    for i, record in enumerate(records):
        if record["lang"] != "en" and originals and rng.random() < 0.5:
            original = originals.pop()
            key = original.setdefault("translation_key", f"tk-{seed}-{block}-{i}")
            record["translation_key"] = key
            for field in ("category", "tags", "authors", "period", "trend", "status"):
                if field in original:
                    record[field] = original[field]
                else:
                    record.pop(field, None)
            published = datetime.fromisoformat(original["published_at"]) + timedelta(minutes=rng.randint(0, 180))
            record["published_at"] = _iso(published)
            record["created_at"] = record["updated_at"] = _iso(published.astimezone(UTC))
    for record in records:
        created = datetime.fromisoformat(record["created_at"])
        record["id"] = str(ULID.from_bytes(int(created.timestamp() * 1000).to_bytes(6) + rng.randbytes(10)))
        if rng.random() < 0.3:  # revised later
            updated = max(created, min(created + timedelta(seconds=rng.randint(600, 400 * 86400)), END))
            record["updated_at"] = _iso(updated)
    return records


def _record(rng: random.Random, lang: str) -> dict[str, Any]:
    words = _Words(rng, lang)
    utc = START + timedelta(seconds=rng.randrange(int((END - START).total_seconds()) // 60) * 60)
    minutes = rng.choices([o for o, _ in OFFSETS], [w for _, w in OFFSETS])[0]
    published = utc.astimezone(timezone(timedelta(minutes=minutes)))
    record: dict[str, Any] = {
        "lang": lang,
        "title": _title(rng, words),
        "summary": _sentences(rng, words, rng.randint(260, 340)),
        "body_html": _body(rng, words, rng.randint(1500, 6000)),
        "category": rng.choices(list(CATEGORIES), CATEGORY_WEIGHTS)[0],
        "tags": _distinct(rng, TAGS, TAG_WEIGHTS, rng.randint(1, 5)),
        "authors": _distinct(rng, AUTHORS, AUTHOR_WEIGHTS, rng.choices((1, 2, 3), (70, 22, 8))[0]),
        "published_at": _iso(published),
        "status": "draft" if rng.random() < 0.03 else "published",
        "created_at": _iso(utc),
        "updated_at": _iso(utc),
    }
    if rng.random() < 0.6:
        end = published.date() - timedelta(days=published.weekday() + 1)
        record["period"] = {"start": (end - timedelta(days=6)).isoformat(), "end": end.isoformat()}
        record["trend"] = rng.choice(TRENDS)
    if rng.random() < 0.3:
        n = rng.randrange(500)
        record["image"] = {
            "url": f"/media/img-{n}.jpg" if n % 2 else f"https://images.example.org/{n}.jpg",
            "alt": _sentences(rng, words, 60).rstrip("."),
            "caption": _sentences(rng, words, 90),
            "credit": f"Photo: {rng.choice(AUTHORS)['name']}",
        }
    if rng.random() < 0.1:
        record["source"] = {"name": rng.choice(_INSTITUTES), "url": f"https://example.org/s/{rng.randrange(10**6)}"}
    return record


def _iso(value: datetime) -> str:
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") and value.minute % 2 else text


class _Words:
    """Words of one language, about one in ten from the other script: runs of a fixed
    pseudo-random text, so a record costs a few random draws, not one per word."""

    def __init__(self, rng: random.Random, lang: str) -> None:
        self._rng = rng
        self._text = _TEXTS[lang]

    def take(self, k: int) -> list[str]:
        start = self._rng.randrange(len(self._text) - k)
        return self._text[start : start + k]

    def one(self) -> str:
        return self._text[self._rng.randrange(len(self._text))]


def _names(syllables: list[str], n: int, seed: str) -> list[str]:
    """``n`` distinct made-up proper names (places, people, outlets), the rare words of the text."""
    rng = random.Random(seed)
    names: dict[str, None] = {}
    while len(names) < n:
        names["".join(rng.choices(syllables, k=rng.randint(2, 4))).capitalize()] = None
    return list(names)


NAMES = {
    "latin": _names(_split("ka ro vi na lo de mi sa tu ber len grad ov sk ha ze pol mar"), 3000, "names:latin"),
    "cyrillic": _names(_split("ка ро ві на ло дзе мі са ту бер лен град аў ск ха зе пол мар"), 3000, "names:cyrillic"),
}


def _text(lang: str, size: int = 200_000) -> list[str]:
    """A fixed pseudo-random text: the vocabulary with Zipf-like frequencies (the first
    words of each list are the most common), 10 % words of the other script, 2 % names."""
    own, other = VOCABULARY[lang]
    names = NAMES["latin" if lang == "en" else "cyrillic"]
    pool = own + other + names
    weights = (
        [0.88 * w for w in _zipf(len(own), 0.6)]
        + [0.10 / len(other)] * len(other)
        + [0.02 * w for w in _zipf(len(names), 1.0)]
    )
    return random.Random(f"text:{lang}").choices(pool, weights, k=size)


def _zipf(n: int, s: float) -> list[float]:
    raw = [1 / (r + 1) ** s for r in range(n)]
    total = sum(raw)
    return [w / total for w in raw]


_TEXTS = {lang: _text(lang) for lang in VOCABULARY}
COMMON_WORD = "sanctions"
"""An English word in nearly every English body (rank 8 of the vocabulary)."""
RARE_NAME = next(
    name
    for name in NAMES["latin"]
    if len(name) >= 7
    and _TEXTS["en"].count(name) == 3
    and not any(o.startswith(name) and o != name for o in NAMES["latin"])
)
"""A made-up name three times in the English text, so in about 1 % of English records (a
search for it is not also a prefix search for a longer name)."""


def _title(rng: random.Random, words: _Words) -> str:
    target = rng.randint(40, 120)
    text = _upper_first(words.one())
    while len(text) < target:
        word = words.one()
        if len(text) + 1 + len(word) > 120:
            break
        text += " " + word
    if len(text) < 40:
        text = (text + " and the regional outlook for the coming year")[:120].rstrip()
    return text


def _sentence(rng: random.Random, words: _Words) -> str:
    return _upper_first(" ".join(words.take(rng.randint(6, 22)))) + "."


def _upper_first(text: str) -> str:
    return text[:1].upper() + text[1:]


def _sentences(rng: random.Random, words: _Words, chars: int) -> str:
    text = _sentence(rng, words)
    while len(text) < chars:
        text += " " + _sentence(rng, words)
    if len(text) > chars + 40:
        text = text[: text.rfind(" ", 0, chars + 1)].rstrip(",;:") + "."
    return text


def _paragraph(rng: random.Random, words: _Words) -> str:
    sentences = [_sentence(rng, words) for _ in range(rng.randint(2, 6))]
    if rng.random() < 0.3:
        i = rng.randrange(len(sentences))
        head, _, tail = sentences[i].partition(" ")  # bold the first word
        sentences[i] = f"<strong>{head}</strong> {tail}"
    if rng.random() < 0.2:
        i = rng.randrange(len(sentences))
        sentences[i] = (
            sentences[i][:-1] + f' (<a href="https://example.org/r/{rng.randrange(10**5)}">{words.one()}</a>).'
        )
    return "<p>" + " ".join(sentences) + "</p>"


def _body(rng: random.Random, words: _Words, size: int) -> str:
    """HTML of about ``size`` bytes of UTF-8: paragraphs, now and then a heading, a list
    or a quotation."""
    parts: list[str] = []
    length = 0
    while length < size:
        roll = rng.random()
        if parts and roll < 0.08:
            part = f"<h2>{_sentence(rng, words)[:-1]}</h2>"
        elif parts and roll < 0.14:
            items = "".join(f"<li>{_sentence(rng, words)}</li>" for _ in range(rng.randint(2, 4)))
            part = f"<ul>{items}</ul>"
        elif parts and roll < 0.18:
            part = f"<blockquote><p>{_sentence(rng, words)}</p></blockquote>"
        else:
            part = _paragraph(rng, words)
        if length + len(part.encode()) > 6000:
            break  # keeps 1.5-6 KB: a part is under ~1.3 KB, so this leaves at least ~4.7 KB
        parts.append(part)
        length += len(part.encode()) + 1
    return "\n".join(parts)


def _distinct(rng: random.Random, pool: list[Any], weights: list[float], k: int) -> list[Any]:
    chosen: list[Any] = []
    while len(chosen) < k:
        pick = rng.choices(pool, weights)[0]
        if pick not in chosen:
            chosen.append(pick)
    return chosen


# --- databases ----------------------------------------------------------------------------

CHUNK = 2000
"""Records built (generated, validated, sanitised) per task, and written per transaction."""


def _build_chunk(seed: int, start: int, stop: int) -> bytes:
    """Records [start, stop) as the rows SqliteStore's bulk import stores (MessagePack of
    ``bulk_rows.ImportRow``), each commentary built as the service would store it.

    Runs in a worker process, as ``feedsvc import`` builds its rows: generating, sanitising
    and building rows cost about as much as writing them.
    """
    from feedsvc.commentary import ImportedCommentary, body_of, build_commentary
    from feedsvc.model import Commentary
    from feedsvc.store.bulk_rows import encode_rows, import_rows

    first, last = start // BLOCK, (stop - 1) // BLOCK
    out: list[Commentary] = []
    for block in range(first, last + 1):
        for i, record in enumerate(make_block(seed, block), block * BLOCK):
            if start <= i < stop:
                rec = msgspec.convert(record, ImportedCommentary)
                # As Service.import_commentary builds it (feedsvc.commentary.build_imported).
                out.append(build_commentary(
                    rec, body=body_of(rec.body_html, rec.body_markdown), id=rec.id, created_at=rec.created_at,
                    updated_at=rec.updated_at, previous=None,
                ))
    return encode_rows(import_rows((item, True) for item in out))


async def _populate(path: str, n: int, seed: int, workers: int, log: Any = None) -> dict[str, float]:
    from feedsvc.errors import FeedsvcError
    from feedsvc.model import CategoryIn
    from feedsvc.service import Service
    from feedsvc.store import as_row_import, open_store
    from feedsvc.store.bulk_rows import ImportRow

    decode = msgspec.msgpack.Decoder(list[ImportRow]).decode
    stats = {"waiting for records": 0.0, "writing": 0.0}
    started, done = time.perf_counter(), 0
    store = open_store(path)
    await store.open()
    try:
        service = Service(store, base_url="http://127.0.0.1")
        for slug, (names, descriptions) in CATEGORIES.items():
            await service.put_category(slug, CategoryIn(names=names, descriptions=descriptions))
        rows_store = as_row_import(store)
        if rows_store is None:
            raise SystemExit("bench.generate needs a store with RowImport (SQLite's bulk import)")
        loop = asyncio.get_running_loop()
        # spawn: the parent has aiosqlite threads running, which fork must not copy.
        context = multiprocessing.get_context("spawn")
        with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
            starts = iter(range(0, n, CHUNK))
            window: collections.deque[asyncio.Future[bytes]] = collections.deque()

            def submit() -> None:
                start = next(starts, None)
                if start is not None:
                    window.append(loop.run_in_executor(pool, _build_chunk, seed, start, min(start + CHUNK, n)))

            for _ in range(2 * workers):
                submit()
            while window:
                t = time.perf_counter()
                items = decode(await window.popleft())
                submit()
                stats["waiting for records"] += time.perf_counter() - t
                t = time.perf_counter()
                results = await rows_store.import_rows(items, now=service.clock())
                stats["writing"] += time.perf_counter() - t
                done += len(items)
                if log is not None and done % 50_000 < len(items):
                    took = time.perf_counter() - started
                    log(f"  {done:,} of {n:,} commentaries written, {done / took:,.0f}/s")
                failed = [r for r in results if isinstance(r, FeedsvcError)]
                if failed:
                    raise SystemExit(f"bench.generate: {len(failed)} records failed, first: {failed[0]!r}")
    finally:
        await store.close()
    return stats


def populate(
    db_path: str | os.PathLike[str], n: int, seed: int = SEED, *, workers: int | None = None, log: Any = None
) -> dict[str, float]:
    """Fill a new SQLite database at ``db_path`` with ``generate(n, seed)`` (and the five
    categories) through the store's bulk import. Written beside and renamed into place, so
    an interrupted run leaves no half-filled file. Returns seconds spent waiting for records
    and writing them."""
    path = Path(db_path)
    tmp = path.with_name(path.name + ".tmp")
    for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
        leftover.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    stats = asyncio.run(_populate(str(tmp), n, seed, workers or max(1, min(4, (os.cpu_count() or 2) - 1)), log))
    os.replace(tmp, path)
    return stats


def database(n: int, seed: int = SEED, *, log: Any = None) -> Path:
    """bench/out/db-{n}.sqlite with ``n`` generated commentaries, built on first use."""
    path = OUT / f"db-{n}.sqlite"
    stamp = OUT / f"db-{n}.json"
    want = {"n": n, "seed": seed, "generator": GENERATOR_VERSION}
    if path.exists() and stamp.exists() and json.loads(stamp.read_text()) == want:
        return path
    started = time.perf_counter()
    stamp.unlink(missing_ok=True)
    stats = populate(path, n, seed, log=log)
    stamp.write_text(json.dumps(want))
    if log is not None:
        parts = ", ".join(f"{k} {v:.1f} s" for k, v in stats.items())
        log(f"built {path.name}: {n} commentaries in {time.perf_counter() - started:.1f} s ({parts})")
    return path


def write_jsonl(path: str | os.PathLike[str], n: int, seed: int = SEED) -> None:
    """The five categories, then ``generate(n, seed)``, as JSON Lines for ``feedsvc import``."""
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(
            json.dumps({"kind": "category", "slug": slug, "names": names, "descriptions": descriptions},
                       ensure_ascii=False) + "\n"
            for slug, (names, descriptions) in CATEGORIES.items()
        )
        f.writelines(json.dumps(record, ensure_ascii=False) + "\n" for record in generate(n, seed))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.generate", description=__doc__.split("\n\n")[0])
    parser.add_argument("n", type=int, help="how many commentaries")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--jsonl", metavar="PATH", help="write the records as JSON Lines instead of a database")
    args = parser.parse_args(argv)
    if args.jsonl:
        write_jsonl(args.jsonl, args.n, args.seed)
        return 0
    print(database(args.n, args.seed, log=lambda m: print(m, file=sys.stderr)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
