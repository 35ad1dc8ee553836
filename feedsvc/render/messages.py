"""Every word a page or an embed shows, per language: the message catalogue.

Pages speak the language of what they show (a commentary's page its ``lang``, a digest's
page its ``lang``, the index and the embed the ``lang`` asked for). Labels come from
``MESSAGES`` in English, Belarusian and Russian; any other language gets the English
labels. Dates, month names and trend words come from ``feedsvc.digest``, which holds the
words the service itself needs for digest titles, so a page and a digest's title write a
date the same way ("2 – 8 March 2026", "2 – 8 сакавіка 2026", "2 – 8 марта 2026").

A small module rather than gettext catalogues: three languages of short labels, read by
renderers that are pure functions; a test checks every message exists in every language
and that no English label is left on a Belarusian or Russian page.
"""

from __future__ import annotations

from datetime import date, datetime
from html import escape

from feedsvc.digest import date_range, month_names, trend_label, trend_text

LANGUAGES = ("en", "be", "ru")
"""The languages the catalogue speaks; labels for any other language are English."""
SCRIPT_MESSAGES = ("no_commentaries", "not_loaded", "nothing_matches", "categories_are", "languages_are")
"""The messages ``embed.js`` shows (it gets them from ``script_words``)."""
FEED_PAGE_MESSAGES = ("feed_in_title", "web_feed", "feed_copy_before", "feed_copy_after", "visit_website")
"""The messages of a feed opened in a browser (``static/feed.xsl``; ``stylesheet_words``)."""

# Each message is a str.format template; the names in braces are filled by the caller.
MESSAGES: dict[str, dict[str, str]] = {
    # the publication's default name and subtitle (FEEDSVC_TITLE, FEEDSVC_DESCRIPTION unset)
    "site_name": {"en": "Commentaries", "be": "Каментарыі", "ru": "Комментарии"},
    "site_description": {
        "en": "Analytical commentaries on security and foreign policy.",
        "be": "Аналітычныя каментарыі пра бяспеку і знешнюю палітыку.",
        "ru": "Аналитические комментарии о безопасности и внешней политике.",
    },
    "all_commentaries": {"en": "All commentaries", "be": "Усе каментарыі", "ru": "Все комментарии"},
    # a commentary's page
    "period": {"en": "Period: {period}", "be": "Перыяд: {period}", "ru": "Период: {period}"},
    "originally_published": {
        "en": "Originally published in {source}.",
        "be": "Упершыню апублікавана ў выданні {source}.",
        "ru": "Впервые опубликовано в издании {source}.",
    },
    "other_languages": {"en": "In other languages:", "be": "На іншых мовах:", "ru": "На других языках:"},
    "related": {"en": "Related commentaries", "be": "Звязаныя каментарыі", "ru": "Связанные комментарии"},
    "follow": {"en": "Follow:", "be": "Падпісацца:", "ru": "Подписаться:"},
    "everything_in": {
        "en": "Everything in {language}",
        "be": "Усё на мове: {language}",
        "ru": "Всё на языке: {language}",
    },
    # a digest's page
    "digest_all_languages": {
        "en": "{digest}, every language",
        "be": "{digest}, усе мовы",
        "ru": "{digest}, все языки",
    },
    "this_week_in": {"en": "This week in other languages:", "be": "Гэты тыдзень на іншых мовах:",
                     "ru": "Эта неделя на других языках:"},
    # the index
    "feeds": {"en": "Feeds", "be": "Стужкі", "ru": "Ленты"},
    "feeds_help": {
        "en": "Copy a feed's address into your feed reader, or import {opml}.",
        "be": "Скапіруйце адрас стужкі ў праграму для чытання стужак або імпартуйце {opml}.",
        "ru": "Скопируйте адрес ленты в программу для чтения лент или импортируйте {opml}.",
    },
    "feeds_as_opml": {"en": "all feeds as OPML", "be": "файл OPML з усімі стужкамі",
                      "ru": "файл OPML со всеми лентами"},
    "all_feeds_opml": {"en": "All feeds (OPML)", "be": "Усе стужкі (OPML)", "ru": "Все ленты (OPML)"},
    "feed": {"en": "Feed", "be": "Стужка", "ru": "Лента"},
    "formats": {"en": "Formats", "be": "Фарматы", "ru": "Форматы"},
    "by_category": {"en": "By category", "be": "Па рубрыках", "ru": "По рубрикам"},
    "by_language": {"en": "By language", "be": "Па мовах", "ru": "По языкам"},
    "latest": {"en": "Latest commentaries", "be": "Апошнія каментарыі", "ru": "Последние комментарии"},
    "api": {"en": "API", "be": "API", "ru": "API"},
    # every page: masthead, footer, lists
    "skip_to_content": {"en": "Skip to content", "be": "Да зместу", "ru": "К содержанию"},
    "search": {"en": "Search", "be": "Пошук", "ru": "Поиск"},
    "search_placeholder": {"en": "Words to find", "be": "Словы для пошуку", "ru": "Слова для поиска"},
    "sections": {"en": "Sections", "be": "Раздзелы", "ru": "Разделы"},
    "home": {"en": "Home page", "be": "Галоўная", "ru": "Главная"},
    "api_reference": {"en": "API reference", "be": "Даведнік па API", "ru": "Справочник по API"},
    "about_site": {"en": "About the publication", "be": "Пра выданне", "ru": "О издании"},
    "nothing_here": {"en": "Nothing published here yet.", "be": "Тут пакуль нічога не апублікавана.",
                     "ru": "Здесь пока ничего не опубликовано."},
    "newest": {"en": "← Newest", "be": "← Найноўшыя", "ru": "← Самые новые"},
    "older": {"en": "Older →", "be": "Раней →", "ru": "Ранее →"},
    "pages": {"en": "More pages", "be": "Іншыя старонкі", "ru": "Другие страницы"},
    "tags": {"en": "Tags", "be": "Тэгі", "ru": "Теги"},
    "authors": {"en": "Authors", "be": "Аўтары", "ru": "Авторы"},
    "archive": {"en": "Archive by month", "be": "Архіў па месяцах", "ru": "Архив по месяцам"},
    # the listing pages
    "in_language": {"en": "Commentaries in {language}", "be": "Каментарыі: {language}",
                    "ru": "Комментарии: {language}"},
    "tag_heading": {"en": "Tagged “{tag}”", "be": "З тэгам «{tag}»", "ru": "С тегом «{tag}»"},
    "author_heading": {"en": "Commentaries by {author}", "be": "{author}: каментарыі", "ru": "{author}: комментарии"},
    "search_heading": {"en": "Search results for “{q}”", "be": "Вынікі пошуку «{q}»", "ru": "Результаты поиска «{q}»"},
    "search_empty": {"en": "Type the words to look for.", "be": "Увядзіце словы, якія трэба знайсці.",
                     "ru": "Введите слова, которые нужно найти."},
    "no_results": {"en": "Nothing matches these words.", "be": "Па гэтых словах нічога не знойдзена.",
                   "ru": "По этим словам ничего не найдено."},
    "this_weeks_digest": {"en": "The latest weekly digest", "be": "Апошні агляд тыдня",
                          "ru": "Последний обзор недели"},
    "previous_week": {"en": "← Previous week", "be": "← Папярэдні тыдзень", "ru": "← Предыдущая неделя"},
    "next_week": {"en": "Next week →", "be": "Наступны тыдзень →", "ru": "Следующая неделя →"},
    "weeks": {"en": "Other weeks", "be": "Іншыя тыдні", "ru": "Другие недели"},
    "subscribe": {"en": "Subscribe", "be": "Падпіска", "ru": "Подписка"},
    # error pages
    "error_404": {"en": "Page not found", "be": "Старонка не знойдзена", "ru": "Страница не найдена"},
    "error_400": {"en": "This address is not quite right", "be": "Гэты адрас няправільны",
                  "ru": "Этот адрес неправильный"},
    "error_405": {"en": "This page cannot be used that way", "be": "Гэтую старонку нельга выкарыстаць так",
                  "ru": "Эту страницу нельзя использовать так"},
    "error_429": {"en": "Too many requests: wait a moment", "be": "Занадта шмат запытаў: пачакайце",
                  "ru": "Слишком много запросов: подождите"},
    "error_5xx": {"en": "Something went wrong on our side", "be": "Нешта пайшло не так у нас",
                  "ru": "Что-то пошло не так у нас"},
    "error_other": {"en": "This page cannot be shown", "be": "Гэтую старонку нельга паказаць",
                    "ru": "Эту страницу нельзя показать"},
    "error_help": {"en": "Try the home page or search for what you were looking for.",
                   "be": "Перайдзіце на галоўную старонку або знайдзіце патрэбнае праз пошук.",
                   "ru": "Перейдите на главную страницу или найдите нужное через поиск."},
    "error_code": {"en": "Error {code}", "be": "Памылка {code}", "ru": "Ошибка {code}"},
    # the embed
    "embed_title": {
        "en": "{site}: latest commentaries",
        "be": "{site}: апошнія каментарыі",
        "ru": "{site}: последние комментарии",
    },
    "no_commentaries": {"en": "No commentaries yet.", "be": "Каментарыяў пакуль няма.",
                        "ru": "Комментариев пока нет."},
    "not_loaded": {"en": "Commentaries could not be loaded.", "be": "Не ўдалося загрузіць каментарыі.",
                   "ru": "Не удалось загрузить комментарии."},
    # the embed's empty state: what was asked for, and what there is to ask for instead
    "nothing_matches": {"en": "No commentaries match {filters}.", "be": "Няма каментарыяў для {filters}.",
                        "ru": "Нет комментариев для {filters}."},
    "categories_are": {"en": "Categories: {list}.", "be": "Рубрыкі: {list}.", "ru": "Рубрики: {list}."},
    "languages_are": {"en": "Languages: {list}.", "be": "Мовы: {list}.", "ru": "Языки: {list}."},
    # a feed opened in a browser (static/feed.xsl)
    "feed_in_title": {"en": "{title} (feed)", "be": "{title} (стужка)", "ru": "{title} (лента)"},
    "web_feed": {"en": "This is a web feed.", "be": "Гэта стужка навін.", "ru": "Это лента новостей."},
    "feed_copy_before": {
        "en": "Copy this page's address",
        "be": "Скапіруйце адрас гэтай старонкі",
        "ru": "Скопируйте адрес этой страницы",
    },
    "feed_copy_after": {
        "en": "into your feed reader to get new commentaries as they are published.",
        "be": "у праграму для чытання стужак, каб атрымліваць новыя каментарыі, як толькі яны выходзяць.",
        "ru": "в программу для чтения лент, чтобы получать новые комментарии, как только они выходят.",
    },
    "visit_website": {"en": "Visit the website.", "be": "Перайсці на сайт.", "ru": "Перейти на сайт."},
    # the index's "Embed on your site" section
    "embed_heading": {"en": "Embed on your site", "be": "На вашым сайце", "ru": "На вашем сайте"},
    "embed_intro": {
        "en": "Show the latest commentaries on your own pages. Both forms take the same options: "
        "{category} (a slug: {slugs}), {lang} ({langs}), {limit} (1–20, default 5), {thumbnails} "
        "(small images beside the titles) and {theme} ({light} or {dark}). Links open in the top window.",
        "be": "Паказвайце апошнія каментарыі на сваіх старонках. Абедзве формы прымаюць адны і тыя ж "
        "параметры: {category} (слаг: {slugs}), {lang} ({langs}), {limit} (1–20, прадвызначана 5), "
        "{thumbnails} (маленькія выявы побач з загалоўкамі) і {theme} ({light} або {dark}). Спасылкі "
        "адкрываюцца ў галоўным акне.",
        "ru": "Показывайте последние комментарии на своих страницах. Обе формы принимают одни и те же "
        "параметры: {category} (слаг: {slugs}), {lang} ({langs}), {limit} (1–20, по умолчанию 5), "
        "{thumbnails} (маленькие изображения рядом с заголовками) и {theme} ({light} или {dark}). "
        "Ссылки открываются в главном окне.",
    },
    "none_yet": {"en": "none yet", "be": "пакуль няма", "ru": "пока нет"},
    "embed_iframe": {"en": "An iframe", "be": "Iframe", "ru": "Iframe"},
    "embed_iframe_help": {
        "en": "Self-contained: no cookies, nothing loaded from elsewhere. The script beside it makes "
        "the frame as tall as its content; without it the frame keeps its height.",
        "be": "Самадастатковы: ні cookie, нічога не загружаецца з іншых месцаў. Скрыпт побач робіць "
        "рамку такой жа вышыні, як яе змесціва; без яго рамка захоўвае сваю вышыню.",
        "ru": "Самодостаточный: ни cookie, ничего не загружается из других мест. Скрипт рядом делает "
        "рамку такой же высоты, как её содержимое; без него рамка сохраняет свою высоту.",
    },
    "embed_script": {"en": "A script tag", "be": "Тэг script", "ru": "Тег script"},
    "embed_script_help": {
        "en": "Renders the list into your page in your page's font and colours; set the {data} "
        "attributes you need and remove the others. It only ever inserts text, never markup.",
        "be": "Выводзіць спіс у вашу старонку яе шрыфтам і колерамі; пакіньце патрэбныя вам атрыбуты "
        "{data}, астатнія выдаліце. Устаўляе толькі тэкст, ніколі не разметку.",
        "ru": "Выводит список в вашу страницу её шрифтом и цветами; оставьте нужные вам атрибуты {data}, "
        "остальные удалите. Вставляет только текст, никогда не разметку.",
    },
    "embed_oembed": {"en": "oEmbed", "be": "oEmbed", "ru": "oEmbed"},
    "embed_oembed_help": {
        "en": "Paste a commentary's page address here into a tool that speaks oEmbed (a CMS, a chat "
        "app); it asks for the embed code like this:",
        "be": "Устаўце адрас старонкі каментарыя ў праграму, якая разумее oEmbed (CMS, мэсэнджар); "
        "яна запытае код для ўстаўкі так:",
        "ru": "Вставьте адрес страницы комментария в программу, которая понимает oEmbed (CMS, "
        "мессенджер); она запросит код для вставки так:",
    },
}

# Language names as each catalogue language writes them, for "In other languages:" and
# the index's "By language". A tag not listed is shown as it is.
LANGUAGE_NAMES: dict[str, dict[str, str]] = {
    "en": {"en": "English", "be": "Belarusian", "ru": "Russian", "uk": "Ukrainian", "pl": "Polish",
           "lt": "Lithuanian", "de": "German"},
    "be": {"en": "англійская", "be": "беларуская", "ru": "руская", "uk": "украінская", "pl": "польская",
           "lt": "літоўская", "de": "нямецкая"},
    "ru": {"en": "английский", "be": "белорусский", "ru": "русский", "uk": "украинский", "pl": "польский",
           "lt": "литовский", "de": "немецкий"},
}


# Month names standing alone ("March 2026" over a monthly archive), as against the forms
# that follow a day number in feedsvc.digest ("7 сакавіка").
MONTHS: dict[str, tuple[str, ...]] = {
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"),
    "be": ("студзень", "люты", "сакавік", "красавік", "май", "чэрвень", "ліпень", "жнівень", "верасень",
           "кастрычнік", "лістапад", "снежань"),
    "ru": ("январь", "февраль", "март", "апрель", "май", "июнь", "июль", "август", "сентябрь", "октябрь",
           "ноябрь", "декабрь"),
}


def catalogue_lang(lang: str | None) -> str:
    """The catalogue language for a BCP 47 tag: its primary subtag when the catalogue has
    it, else English."""
    primary = (lang or "en").split("-")[0].lower()
    return primary if primary in LANGUAGES else "en"


class Messages:
    """The words of one page, in one language: ``m("follow")``, ``m.day(d)``, …"""

    def __init__(self, lang: str | None) -> None:
        self.tag = lang or "en"
        """The language of the page's content (its ``<html lang>``)."""
        self.lang = catalogue_lang(lang)
        """The language the labels are in."""

    def __call__(self, key: str, **values: str) -> str:
        """Message ``key`` in this language, its ``{names}`` filled with ``values``
        (as given: escape them first when the result goes into HTML)."""
        template = MESSAGES[key][self.lang]
        return template.format(**values) if values else template

    def html(self, key: str, **markup: str) -> str:
        """Message ``key`` as HTML: its own words escaped, ``markup`` (already HTML, such as
        a link) put in its ``{names}`` as given."""
        return escape(MESSAGES[key][self.lang]).format(**markup)

    def day(self, value: date | datetime) -> str:
        """"7 March 2026", "7 сакавіка 2026", "7 марта 2026": the calendar date written in
        ``value`` (a datetime's own offset, as its ISO form shows it)."""
        day = value.date() if isinstance(value, datetime) else value
        return date_range(day, day, self.tag)

    def period(self, start: date, end: date) -> str:
        """"2 – 8 March 2026", and the like, in this language."""
        return date_range(start, end, self.tag)

    def month(self, year: int, month: int) -> str:
        """"March 2026", "Сакавік 2026", "Март 2026": a month as an archive names it."""
        return f"{capitalised(MONTHS[self.lang][month - 1])} {year}"

    def trend(self, trend: str) -> str:
        """"↘ worsened" (an arrow and the word) in this language."""
        return trend_text(trend, self.tag)

    def trend_word(self, trend: str) -> str:
        """"worsened", without the arrow."""
        return trend_label(trend, self.tag)

    def language(self, tag: str) -> str:
        """The name of language ``tag`` in this language ("русский" on a Russian page), or
        the tag itself when the catalogue has no name for it."""
        names = LANGUAGE_NAMES[self.lang]
        return names.get(tag) or names.get(tag.split("-")[0].lower()) or tag

    def site_name(self, title: str) -> str:
        """The publication's name: the default one in this language, a configured one as
        the publisher wrote it."""
        return self("site_name") if title == MESSAGES["site_name"]["en"] else title

    def site_description(self, description: str) -> str:
        """The publication's subtitle: the default one in this language, a configured one as
        the publisher wrote it."""
        return self("site_description") if description == MESSAGES["site_description"]["en"] else description


def script_words() -> dict[str, dict[str, object]]:
    """What ``embed.js`` needs to write like the iframe, per catalogue language: month names
    as they follow a day number, trend words and its messages."""
    out: dict[str, dict[str, object]] = {}
    for lang in LANGUAGES:
        m = Messages(lang)
        out[lang] = {
            "months": list(month_names(lang)),
            "trends": {t: m.trend_word(t) for t in ("improved", "worsened", "unchanged")},
            "messages": {key: m(key) for key in SCRIPT_MESSAGES},
        }
    return out


def stylesheet_words() -> dict[str, dict[str, str]]:
    """The words of a feed opened in a browser, by key (``month1``…``month12`` included),
    per catalogue language."""
    return {
        lang: {
            **{key: MESSAGES[key][lang] for key in FEED_PAGE_MESSAGES},
            **{f"month{n}": name for n, name in enumerate(month_names(lang), start=1)},
        }
        for lang in LANGUAGES
    }


def capitalised(text: str) -> str:
    """``text`` with its first letter in upper case (language names start a list item)."""
    return text[:1].upper() + text[1:]
