/*! feedsvc embed: the latest commentaries in a partner's page.
 *
 *   <div data-feedsvc-embed data-category="regional-security" data-lang="en"
 *        data-limit="5" data-theme="light"></div>
 *   <script src="https://FEEDSVC/embed.js" async></script>
 *
 * data-feedsvc-src names the feedsvc to ask (default: where this script came from).
 * Commentary content is only ever inserted as text (textContent), and links only when
 * they are http(s), so nothing a commentary carries can run script on this page.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  var scriptBase = script && script.src ? script.src.replace(/\/embed\.js(?:[?#].*)?$/, "") : "";
  var STYLE_ID = "feedsvc-embed-style";
  // The widget's words per language (month names, trend words, messages), written in by
  // feedsvc from the catalogue its own pages use (feedsvc/render/messages.py), so the two
  // embeds say the same thing; English for any other language.
  var WORDS = /*@words*/{ "en": { "months": [], "trends": {}, "messages": {} } }/*words@*/;
  var TREND_ARROWS = { improved: "\u2197", worsened: "\u2198", unchanged: "\u2192" };
  var CSS =
    ".feedsvc-embed{--fe-fg:#1d2330;--fe-muted:#5b6474;--fe-line:#d8dde6;--fe-accent:#1f5fbf;--fe-bg:#fff;" +
    "font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:var(--fe-fg);background:var(--fe-bg);" +
    "padding:.75rem 1rem;border-radius:6px;text-align:left}" +
    ".feedsvc-embed.feedsvc-theme-dark{--fe-fg:#e6e9ef;--fe-muted:#9aa3b2;--fe-line:#323a48;--fe-accent:#8ab8ff;--fe-bg:#12161d}" +
    ".feedsvc-embed .feedsvc-list{list-style:none;margin:0;padding:0}" +
    ".feedsvc-embed .feedsvc-item{margin:0;padding:.6rem 0;border-bottom:1px solid var(--fe-line)}" +
    ".feedsvc-embed .feedsvc-item:last-child{border-bottom:0}" +
    ".feedsvc-embed .feedsvc-title{display:block;font-weight:600;font-size:1.05em;line-height:1.3;color:var(--fe-accent);text-decoration:none}" +
    ".feedsvc-embed a.feedsvc-title:hover,.feedsvc-embed a.feedsvc-title:focus{text-decoration:underline}" +
    ".feedsvc-embed .feedsvc-meta{margin:.2rem 0 0;font-size:.85em;color:var(--fe-muted)}" +
    ".feedsvc-embed .feedsvc-trend{font-weight:600}" +
    ".feedsvc-embed .feedsvc-trend-improved{color:#1a7f37}.feedsvc-embed .feedsvc-trend-worsened{color:#c4311c}" +
    ".feedsvc-embed.feedsvc-theme-dark .feedsvc-trend-improved{color:#56d364}" +
    ".feedsvc-embed.feedsvc-theme-dark .feedsvc-trend-worsened{color:#ff7b72}" +
    ".feedsvc-embed .feedsvc-summary{margin:.3rem 0 0}" +
    ".feedsvc-embed .feedsvc-empty{color:var(--fe-muted);margin:0}";

  function injectStyle() {
    if (document.getElementById(STYLE_ID)) return;
    var style = document.createElement("style");
    style.id = STYLE_ID;
    style.textContent = CSS;
    (document.head || document.documentElement).appendChild(style);
  }

  function safeHttpUrl(value) {
    try {
      var url = new URL(String(value));
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

  function renderItem(item, categories, lang) {
    var shownLang = lang || item.lang;
    var li = el("li", "feedsvc-item");
    if (typeof item.lang === "string") li.setAttribute("lang", item.lang);
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

  function getJSON(url) {
    return fetch(url, { method: "GET", mode: "cors", credentials: "omit", headers: { Accept: "application/json" } })
      .then(function (response) {
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

    target.classList.add("feedsvc-embed");
    target.classList.add(data.theme === "dark" ? "feedsvc-theme-dark" : "feedsvc-theme-light");
    target.setAttribute("aria-busy", "true");

    var categories = getJSON(base + "/api/v1/categories").catch(function () { return []; });
    Promise.all([getJSON(base + "/api/v1/commentaries?" + params.toString()), categories])
      .then(function (results) {
        var bySlug = Object.create(null);
        (Array.isArray(results[1]) ? results[1] : []).forEach(function (c) { bySlug[c.slug] = c; });
        var items = (results[0] && Array.isArray(results[0].items)) ? results[0].items : [];
        var content;
        if (items.length) {
          content = el("ul", "feedsvc-list");
          items.forEach(function (item) { content.appendChild(renderItem(item, bySlug, lang)); });
        } else {
          content = el("p", "feedsvc-empty", words(lang).messages.no_commentaries);
        }
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

  function start() {
    injectStyle();
    var targets = document.querySelectorAll("[data-feedsvc-embed]");
    for (var i = 0; i < targets.length; i++) render(targets[i]);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
