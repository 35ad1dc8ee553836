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
    # the newsletter: its sign-up form, confirmation mail and pages
    "newsletter": {"en": "Newsletter", "be": "Рассылка", "ru": "Рассылка"},
    "newsletter_intro": {
        "en": "Get the weekly digest, or each commentary, by email. We send a link to confirm first; "
        "every mail has a link to unsubscribe at once.",
        "be": "Атрымлівайце штотыднёвы агляд або кожны каментарый па электроннай пошце. Спачатку мы "
        "дашлём спасылку для пацверджання; у кожным лісце ёсць спасылка, каб адразу адпісацца.",
        "ru": "Получайте еженедельный обзор или каждый комментарий по электронной почте. Сначала мы "
        "пришлём ссылку для подтверждения; в каждом письме есть ссылка, чтобы сразу отписаться.",
    },
    "email_address": {"en": "Email address", "be": "Адрас электроннай пошты", "ru": "Адрес электронной почты"},
    "languages_wanted": {"en": "Languages", "be": "Мовы", "ru": "Языки"},
    "how_often": {"en": "How often", "be": "Як часта", "ru": "Как часто"},
    "cadence_weekly": {"en": "The weekly digest", "be": "Штотыднёвы агляд", "ru": "Еженедельный обзор"},
    "cadence_each": {"en": "Each commentary", "be": "Кожны каментарый", "ru": "Каждый комментарий"},
    "leave_empty": {"en": "Leave this empty", "be": "Пакіньце гэта поле пустым", "ru": "Оставьте это поле пустым"},
    "subscribe_action": {"en": "Subscribe", "be": "Падпісацца", "ru": "Подписаться"},
    "subscribe_working": {
        "en": "A moment: your browser is proving it is not a robot…",
        "be": "Хвілінку: ваш браўзер даказвае, што ён не робат…",
        "ru": "Минутку: ваш браузер доказывает, что он не робот…",
    },
    "subscribe_sent": {
        "en": "Check your mailbox: open the link we sent to confirm the subscription.",
        "be": "Праверце пошту: адкрыйце спасылку, якую мы даслалі, каб пацвердзіць падпіску.",
        "ru": "Проверьте почту: откройте ссылку, которую мы прислали, чтобы подтвердить подписку.",
    },
    "subscribe_failed": {
        "en": "The subscription did not go through: {reason}",
        "be": "Падпіска не атрымалася: {reason}",
        "ru": "Подписка не удалась: {reason}",
    },
    "needs_script": {
        "en": "The form needs JavaScript: the browser solves a small puzzle instead of a CAPTCHA.",
        "be": "Форме патрэбны JavaScript: браўзер рашае невялікую задачу замест CAPTCHA.",
        "ru": "Форме нужен JavaScript: браузер решает небольшую задачу вместо CAPTCHA.",
    },
    "confirm_subject": {
        "en": "Confirm your subscription to {site}",
        "be": "Пацвердзіце падпіску на {site}",
        "ru": "Подтвердите подписку на {site}",
    },
    "confirm_mail_intro": {
        "en": "Someone, probably you, asked to receive {site} by email at this address. "
        "To confirm, open the link below and press the button:",
        "be": "Нехта, відаць вы, папрасіў атрымліваць {site} на гэты адрас. "
        "Каб пацвердзіць, адкрыйце спасылку ніжэй і націсніце кнопку:",
        "ru": "Кто-то, вероятно вы, попросил получать {site} на этот адрес. "
        "Чтобы подтвердить, откройте ссылку ниже и нажмите кнопку:",
    },
    "confirm_mail_ignore": {
        "en": "If it was not you, ignore this mail: nothing is sent to an address that was not confirmed. "
        "The link works for {days} days.",
        "be": "Калі гэта былі не вы, не зважайце на гэты ліст: на непацверджаны адрас нічога не дасылаецца. "
        "Спасылка дзейнічае {days} дзён.",
        "ru": "Если это были не вы, не обращайте внимания на это письмо: на неподтверждённый адрес ничего "
        "не отправляется. Ссылка действует {days} дней.",
    },
    "confirm_title": {"en": "Confirm your subscription", "be": "Пацвердзіце падпіску",
                      "ru": "Подтвердите подписку"},
    "confirm_text": {
        "en": "Press the button to receive {site} at {email}.",
        "be": "Націсніце кнопку, каб атрымліваць {site} на адрас {email}.",
        "ru": "Нажмите кнопку, чтобы получать {site} на адрес {email}.",
    },
    "confirm_button": {"en": "Confirm the subscription", "be": "Пацвердзіць падпіску",
                       "ru": "Подтвердить подписку"},
    "confirmed_title": {"en": "Subscribed", "be": "Падпіска пацверджана", "ru": "Подписка подтверждена"},
    "confirmed_text": {
        "en": "{email} is subscribed to {site}. Every mail has a link to unsubscribe.",
        "be": "Адрас {email} падпісаны на {site}. У кожным лісце ёсць спасылка, каб адпісацца.",
        "ru": "Адрес {email} подписан на {site}. В каждом письме есть ссылка, чтобы отписаться.",
    },
    "link_expired_title": {"en": "This link no longer works", "be": "Гэтая спасылка больш не дзейнічае",
                           "ru": "Эта ссылка больше не действует"},
    "link_expired_text": {
        "en": "It was used already, has expired, or was replaced by a newer one. Sign up again to get a new link.",
        "be": "Яна ўжо была скарыстана, тэрмін яе дзеяння скончыўся, або яе замяніла навейшая. "
        "Падпішыцеся зноў, каб атрымаць новую спасылку.",
        "ru": "Она уже была использована, срок её действия истёк, или её заменила более новая. "
        "Подпишитесь снова, чтобы получить новую ссылку.",
    },
    "unsubscribe_title": {"en": "Unsubscribe", "be": "Адпісацца", "ru": "Отписаться"},
    "unsubscribe_text": {
        "en": "Press the button to stop receiving {site} at {email}.",
        "be": "Націсніце кнопку, каб больш не атрымліваць {site} на адрас {email}.",
        "ru": "Нажмите кнопку, чтобы больше не получать {site} на адрес {email}.",
    },
    "unsubscribed_title": {"en": "Unsubscribed", "be": "Вы адпісаліся", "ru": "Вы отписались"},
    "unsubscribed_text": {
        "en": "{email} will receive no more mail from {site}.",
        "be": "На адрас {email} больш не прыйдзе ніводнага ліста ад {site}.",
        "ru": "На адрес {email} больше не придёт ни одного письма от {site}.",
    },
    "resubscribe": {"en": "Changed your mind? {link}", "be": "Перадумалі? {link}", "ru": "Передумали? {link}"},
    "subscribe_again": {"en": "Subscribe again", "be": "Падпісацца зноў", "ru": "Подписаться снова"},
    "digest_mail_intro": {
        "en": "{count} commentaries this week. The digest on the web: {link}",
        "be": "Каментарыяў за тыдзень: {count}. Агляд у сеціве: {link}",
        "ru": "Комментариев за неделю: {count}. Обзор на сайте: {link}",
    },
    "read_more": {"en": "Read", "be": "Чытаць", "ru": "Читать"},
    "why_this_mail": {
        "en": "You get this mail because {email} subscribed to {site}.",
        "be": "Вы атрымліваеце гэты ліст, бо адрас {email} падпісаны на {site}.",
        "ru": "Вы получаете это письмо, потому что адрес {email} подписан на {site}.",
    },
    "unsubscribe_line": {
        "en": "Unsubscribe with one click: {link}",
        "be": "Адпісацца адным націскам: {link}",
        "ru": "Отписаться одним нажатием: {link}",
    },
    "gone_title": {"en": "No such subscription", "be": "Такой падпіскі няма", "ru": "Такой подписки нет"},
    "gone_text": {
        "en": "Nothing is kept about this subscription any more: nothing will be sent.",
        "be": "Пра гэтую падпіску больш нічога не захоўваецца: нічога дасылацца не будзе.",
        "ru": "Об этой подписке больше ничего не хранится: ничего отправляться не будет.",
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
