/*! feedsvc embed: the latest commentaries in a partner's page.
 *
 *   <div data-feedsvc-embed data-category="regional-security" data-lang="en"
 *        data-limit="5" data-thumbnails></div>
 *   <script src="https://FEEDSVC/embed.js" async></script>
 *
 * The list takes the page's font and colours; CSS custom properties on the element (or
 * any ancestor) change the rest: --feedsvc-accent (titles), --feedsvc-muted (dates,
 * categories), --feedsvc-line (separators), --feedsvc-gap (space between items),
 * --feedsvc-thumb (thumbnail size). data-theme="light" or "dark" gives it a box of its own.
 * data-feedsvc-src names the feedsvc to ask (default: where this script came from).
 * Commentary content is only ever inserted as text (textContent), and links and images
 * only when they are http(s), so nothing a commentary carries can run script on this page.
 *
 * On a page with feedsvc's iframe (/embed), this script also makes each such iframe as
 * tall as its content: the framed page posts its height, and a height is taken only from
 * the window of an iframe on this page, sent from that iframe's own origin.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var scriptBase = script && script.src ? script.src.replace(/\/embed\.js(?:[?#].*)?$/, "") : "";
  var STYLE_ID = "feedsvc-embed-style";
  var RESIZE_MESSAGE = "feedsvc-embed:height";
  // The widget's words per language (month names, trend words, messages), written in by
  // feedsvc from the catalogue its own pages use (feedsvc/render/messages.py), so the two
  // embeds say the same thing; English for any other language.
  var WORDS = /*@words*/{ "en": { "months": [], "trends": {}, "messages": {} } }/*words@*/;
  var TREND_ARROWS = { improved: "\u2197", worsened: "\u2198", unchanged: "\u2192" };
  // Everything inherits from the partner's page unless a --feedsvc-* property says
  // otherwise; a data-theme sets the --fe-* defaults those fall back to.
  var CSS =
    ".feedsvc-embed{font:inherit;color:inherit;text-align:start;overflow-wrap:anywhere}" +
    ".feedsvc-embed.feedsvc-theme-light,.feedsvc-embed.feedsvc-theme-dark{padding:.75rem 1rem;border-radius:6px;" +
    "color:var(--fe-fg);background:var(--fe-bg)}" +
    ".feedsvc-embed.feedsvc-theme-light{--fe-fg:#1d2330;--fe-muted:#5b6474;--fe-line:#d8dde6;--fe-accent:#1f5fbf;--fe-bg:#fff}" +
    ".feedsvc-embed.feedsvc-theme-dark{--fe-fg:#e6e9ef;--fe-muted:#9aa3b2;--fe-line:#323a48;--fe-accent:#8ab8ff;--fe-bg:#12161d}" +
    ".feedsvc-embed .feedsvc-list{list-style:none;margin:0;padding:0}" +
    ".feedsvc-embed .feedsvc-item{margin:0;padding:var(--feedsvc-gap,.6rem) 0;" +
    "border-bottom:1px solid var(--feedsvc-line,var(--fe-line,rgba(128,128,128,.35)))}" +
    ".feedsvc-embed .feedsvc-item:first-child{padding-top:0}" +
    ".feedsvc-embed .feedsvc-item:last-child{border-bottom:0;padding-bottom:0}" +
    ".feedsvc-embed .feedsvc-item::after{content:\"\";display:block;clear:both}" +
    ".feedsvc-embed .feedsvc-thumb{float:right;width:var(--feedsvc-thumb,4.5em);height:var(--feedsvc-thumb,4.5em);" +
    "object-fit:cover;margin:0 0 .3em .75em;border-radius:4px}" +
    ".feedsvc-embed .feedsvc-title{display:block;font:inherit;font-weight:600;line-height:1.3;" +
    "color:var(--feedsvc-accent,var(--fe-accent,currentColor));text-decoration:none}" +
    ".feedsvc-embed a.feedsvc-title:hover,.feedsvc-embed a.feedsvc-title:focus{text-decoration:underline}" +
    ".feedsvc-embed .feedsvc-meta{margin:.2em 0 0;font-size:.85em;color:var(--feedsvc-muted,var(--fe-muted,inherit))}" +
    ".feedsvc-embed .feedsvc-trend{font-weight:600}" +
    ".feedsvc-embed.feedsvc-theme-light .feedsvc-trend-improved{color:#1a7f37}" +
    ".feedsvc-embed.feedsvc-theme-light .feedsvc-trend-worsened{color:#c4311c}" +
    ".feedsvc-embed.feedsvc-theme-dark .feedsvc-trend-improved{color:#56d364}" +
    ".feedsvc-embed.feedsvc-theme-dark .feedsvc-trend-worsened{color:#ff7b72}" +
    ".feedsvc-embed .feedsvc-summary{margin:.3em 0 0}" +
    ".feedsvc-embed .feedsvc-empty{margin:0;color:var(--feedsvc-muted,var(--fe-muted,inherit))}" +
    ".feedsvc-embed .feedsvc-empty+.feedsvc-empty{margin-top:.4em}";

  function injectStyle() {
    if (document.getElementById(STYLE_ID)) return;
    var style = document.createElement("style");
    style.id = STYLE_ID;
    style.textContent = CSS;
    (document.head || document.documentElement).appendChild(style);
  }

  function safeHttpUrl(value, base) {
    try {
      var url = base ? new URL(String(value), base) : new URL(String(value));
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch (e) {
      return null;
    }
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function words(lang) {
    return WORDS[String(lang || "en").split("-")[0].toLowerCase()] || WORDS.en;
  }

  function trendLabel(trend, lang) {
    var labels = words(lang).trends;
    return (TREND_ARROWS[trend] ? TREND_ARROWS[trend] + " " : "") + (labels[trend] || trend);
  }

  // "7 March 2026", "7 марта 2026": the calendar date written in the timestamp (its own
  // offset), as the iframe shows it.
  function dayText(timestamp, lang) {
    var match = /^(\d{4})-(\d{2})-(\d{2})/.exec(timestamp);
    var month = match ? words(lang).months[parseInt(match[2], 10) - 1] : null;
    return month ? parseInt(match[3], 10) + " " + month + " " + match[1] : timestamp.slice(0, 10);
  }

  function categoryName(category, lang) {
    if (!category || !category.names) return null;
    var names = category.names;
    var base = String(lang || "").split("-")[0];
    return names[lang] || names[base] || names.en || null;
  }

  function renderItem(item, categories, lang, thumbnails, base) {
    var shownLang = lang || item.lang;
    var li = el("li", "feedsvc-item");
    if (typeof item.lang === "string") li.setAttribute("lang", item.lang);
    var image = thumbnails && item.image ? safeHttpUrl(item.image.url, base) : null;
    if (image) {
      var img = el("img", "feedsvc-thumb");
      img.setAttribute("src", image);
      img.setAttribute("alt", String(item.image.alt || ""));
      img.setAttribute("loading", "lazy");
      img.setAttribute("decoding", "async");
      li.appendChild(img);
    }
    var href = safeHttpUrl(item.url);
    var title;
    if (href) {
      title = el("a", "feedsvc-title", item.title);
      title.setAttribute("href", href);
      title.setAttribute("target", "_top");
      title.setAttribute("rel", "noopener");
    } else {
      title = el("span", "feedsvc-title", item.title);
    }
    li.appendChild(title);

    var meta = el("p", "feedsvc-meta");
    var published = String(item.published_at || "");
    var time = el("time", null, dayText(published, shownLang));
    time.setAttribute("datetime", published);
    meta.appendChild(time);
    var name = categoryName(categories[item.category], shownLang) || item.category;
    if (name) {
      meta.appendChild(document.createTextNode(" \u00b7 "));
      meta.appendChild(el("span", "feedsvc-category", name));
    }
    if (item.trend) {
      meta.appendChild(document.createTextNode(" \u00b7 "));
      var known = Object.prototype.hasOwnProperty.call(TREND_ARROWS, item.trend);
      meta.appendChild(el("span", "feedsvc-trend" + (known ? " feedsvc-trend-" + item.trend : ""), trendLabel(item.trend, shownLang)));
    }
    li.appendChild(meta);
    if (item.summary) li.appendChild(el("p", "feedsvc-summary", item.summary));
    return li;
  }

  // A message with one {name} filled by a list of code-formatted values, as text nodes.
  function sentence(template, name, values) {
    var p = el("p", "feedsvc-empty");
    var at = template.indexOf("{" + name + "}");
    p.appendChild(document.createTextNode(at < 0 ? template : template.slice(0, at)));
    if (at < 0) return p;
    values.forEach(function (value, i) {
      if (i) p.appendChild(document.createTextNode(", "));
      p.appendChild(el("code", null, value));
    });
    p.appendChild(document.createTextNode(template.slice(at + name.length + 2)));
    return p;
  }

  // What an empty list says: which attributes matched nothing, and what there is instead.
  function emptyState(data, lang, categories, languages) {
    var messages = words(lang).messages;
    var asked = [];
    if (data.category) asked.push('data-category="' + data.category + '"');
    if (data.lang) asked.push('data-lang="' + data.lang + '"');
    var box = document.createDocumentFragment();
    if (!asked.length) {
      box.appendChild(el("p", "feedsvc-empty", messages.no_commentaries));
      return box;
    }
    box.appendChild(sentence(messages.nothing_matches, "filters", asked));
    if (categories.length) box.appendChild(sentence(messages.categories_are, "list", categories));
    if (languages.length) box.appendChild(sentence(messages.languages_are, "list", languages));
    return box;
  }

  function getJSON(url) {
    return fetch(url, { method: "GET", mode: "cors", credentials: "omit", headers: { Accept: "application/json" } })
      .then(function (response) {
        // A 400 names the filter at fault; the empty state says what to change it to.
        if (response.status === 400) return { items: [] };
        if (!response.ok) throw new Error("feedsvc embed: " + url + " answered " + response.status);
        return response.json();
      });
  }

  function render(target) {
    if (target.getAttribute("data-feedsvc-ready")) return;
    target.setAttribute("data-feedsvc-ready", "loading");
    var data = target.dataset;
    var base = safeHttpUrl(data.feedsvcSrc || scriptBase || location.origin);
    if (!base) return;
    base = base.replace(/\/+$/, "");
    var limit = parseInt(data.limit || "5", 10);
    if (!(limit >= 1)) limit = 5;
    limit = Math.min(limit, 20);
    var params = new URLSearchParams();
    if (data.category) params.set("category", data.category);
    if (data.lang) params.set("lang", data.lang);
    params.set("limit", String(limit));
    var lang = data.lang || null;
    var thumbnails = data.thumbnails !== undefined && data.thumbnails !== "false";

    target.classList.add("feedsvc-embed");
    if (data.theme === "dark" || data.theme === "light") target.classList.add("feedsvc-theme-" + data.theme);
    target.setAttribute("aria-busy", "true");

    var categories = getJSON(base + "/api/v1/categories").catch(function () { return []; });
    Promise.all([getJSON(base + "/api/v1/commentaries?" + params.toString()), categories])
      .then(function (results) {
        var list = Array.isArray(results[1]) ? results[1] : [];
        var bySlug = Object.create(null);
        list.forEach(function (c) { bySlug[c.slug] = c; });
        var items = (results[0] && Array.isArray(results[0].items)) ? results[0].items : [];
        if (items.length) {
          var content = el("ul", "feedsvc-list");
          items.forEach(function (item) { content.appendChild(renderItem(item, bySlug, lang, thumbnails, base)); });
          return content;
        }
        return getJSON(base + "/api/v1/languages").catch(function () { return []; }).then(function (languages) {
          var tags = (Array.isArray(languages) ? languages : []).map(function (l) { return String(l.name); });
          return emptyState(data, lang, list.map(function (c) { return String(c.slug); }), tags);
        });
      })
      .then(function (content) {
        target.replaceChildren(content);
        target.setAttribute("data-feedsvc-ready", "done");
      })
      .catch(function (error) {
        target.replaceChildren(el("p", "feedsvc-empty", words(lang).messages.not_loaded));
        target.setAttribute("data-feedsvc-ready", "failed");
        if (window.console) console.warn(String(error));
      })
      .then(function () { target.removeAttribute("aria-busy"); });
  }

  // The iframe form: size each feedsvc iframe on this page to the height its page posts.
  function resize(event) {
    var message = event.data;
    if (!message || message.type !== RESIZE_MESSAGE || typeof message.height !== "number") return;
    if (!isFinite(message.height) || message.height < 0) return;
    var frames = document.getElementsByTagName("iframe");
    for (var i = 0; i < frames.length; i++) {
      var frame = frames[i];
      if (frame.contentWindow !== event.source) continue;
      var src;
      try {
        src = new URL(frame.src, location.href);
      } catch (e) {
        return;
      }
      if (src.origin !== event.origin || !/\/embed$/.test(src.pathname)) return;
      frame.style.height = Math.min(Math.ceil(message.height), 20000) + "px";
      return;
    }
  }

  function start() {
    injectStyle();
    var targets = document.querySelectorAll("[data-feedsvc-embed]");
    for (var i = 0; i < targets.length; i++) render(targets[i]);
  }

  // Once per page, however many times the script is included.
  if (!window.__feedsvcEmbedResizes) {
    window.__feedsvcEmbedResizes = true;
    window.addEventListener("message", resize);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
