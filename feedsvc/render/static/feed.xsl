<?xml version="1.0" encoding="UTF-8"?>
<!--
  feed.xsl: shows feedsvc's RSS 2.0 and Atom 1.0 documents as a readable page when a browser
  opens them (<?xml-stylesheet type="text/xsl" href="/feed.xsl"?>). XSLT 1.0, no extensions.

  Safety: every value from the feed is written with xsl:value-of or as an attribute value,
  so it is escaped; nothing uses disable-output-escaping, and links are only made from
  http(s) URLs. Content HTML is never rendered: only titles, dates, authors and the
  plain-text summary are shown.

  Words: the page speaks the feed's language (its <language> or xml:lang). The template
  "word" below holds the English words; feedsvc serves this file with that template
  written from its message catalogue (feedsvc/render/browser.py), every language in it.
-->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:atom="http://www.w3.org/2005/Atom"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    exclude-result-prefixes="atom dc">

  <xsl:output method="html" encoding="UTF-8" indent="no" doctype-system="about:legacy-compat"/>

  <xsl:variable name="months" select="'JanFebMarAprMayJunJulAugSepOctNovDec'"/>
  <xsl:variable name="lang" select="string(rss/channel/language | atom:feed/@xml:lang)"/>
  <!-- The primary language subtag, lower case: the key of the words. -->
  <xsl:variable name="l" select="translate(substring-before(concat($lang, '-'), '-'),
      'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')"/>

  <!--@words-->
  <xsl:template name="word">
    <xsl:param name="key"/>
    <xsl:choose>
      <xsl:when test="$key = 'feed_in_title'">{title} (feed)</xsl:when>
      <xsl:when test="$key = 'web_feed'">This is a web feed.</xsl:when>
      <xsl:when test="$key = 'feed_copy_before'">Copy this page's address</xsl:when>
      <xsl:when test="$key = 'feed_copy_after'">into your feed reader to get new commentaries as they are published.</xsl:when>
      <xsl:when test="$key = 'visit_website'">Visit the website.</xsl:when>
      <xsl:when test="$key = 'month1'">January</xsl:when>
      <xsl:when test="$key = 'month2'">February</xsl:when>
      <xsl:when test="$key = 'month3'">March</xsl:when>
      <xsl:when test="$key = 'month4'">April</xsl:when>
      <xsl:when test="$key = 'month5'">May</xsl:when>
      <xsl:when test="$key = 'month6'">June</xsl:when>
      <xsl:when test="$key = 'month7'">July</xsl:when>
      <xsl:when test="$key = 'month8'">August</xsl:when>
      <xsl:when test="$key = 'month9'">September</xsl:when>
      <xsl:when test="$key = 'month10'">October</xsl:when>
      <xsl:when test="$key = 'month11'">November</xsl:when>
      <xsl:when test="$key = 'month12'">December</xsl:when>
    </xsl:choose>
  </xsl:template>
  <!--words@-->

  <!-- "7 March 2026": a day, a month's number and a year, the month named in the feed's language. -->
  <xsl:template name="day">
    <xsl:param name="d"/>
    <xsl:param name="m"/>
    <xsl:param name="y"/>
    <xsl:value-of select="number($d)"/>
    <xsl:text> </xsl:text>
    <xsl:call-template name="word">
      <xsl:with-param name="key" select="concat('month', number($m))"/>
    </xsl:call-template>
    <xsl:text> </xsl:text>
    <xsl:value-of select="$y"/>
  </xsl:template>

  <xsl:template match="/">
    <xsl:variable name="title" select="string(rss/channel/title | atom:feed/atom:title)"/>
    <xsl:variable name="self" select="string(rss/channel/atom:link[@rel='self']/@href | atom:feed/atom:link[@rel='self']/@href)"/>
    <xsl:variable name="home" select="string(rss/channel/link | atom:feed/atom:link[@rel='alternate' and @type='text/html']/@href)"/>
    <html>
      <xsl:if test="$lang">
        <xsl:attribute name="lang"><xsl:value-of select="$lang"/></xsl:attribute>
      </xsl:if>
      <head>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <xsl:variable name="titled">
          <xsl:call-template name="word"><xsl:with-param name="key" select="'feed_in_title'"/></xsl:call-template>
        </xsl:variable>
        <title>
          <xsl:value-of select="substring-before($titled, '{title}')"/>
          <xsl:value-of select="$title"/>
          <xsl:value-of select="substring-after($titled, '{title}')"/>
        </title>
        <style>
          body { font: 16px/1.5 system-ui, sans-serif; max-width: 46rem; margin: 0 auto; padding: 1rem; color: #1d1d1f; }
          .note { background: #fff8dc; border: 1px solid #e8d9a0; border-radius: 6px; padding: .75rem 1rem; }
          .note code { word-break: break-all; }
          article { border-top: 1px solid #ddd; padding: .75rem 0; }
          article h2 { font-size: 1.15rem; margin: 0 0 .25rem; }
          .meta { color: #555; font-size: .9rem; margin: 0 0 .25rem; }
          .summary { margin: 0; }
        </style>
      </head>
      <body>
        <header>
          <h1 dir="auto"><xsl:value-of select="$title"/></h1>
          <p dir="auto"><xsl:value-of select="rss/channel/description | atom:feed/atom:subtitle"/></p>
          <p class="note">
            <strong><xsl:call-template name="word"><xsl:with-param name="key" select="'web_feed'"/></xsl:call-template></strong>
            <xsl:text> </xsl:text>
            <xsl:call-template name="word"><xsl:with-param name="key" select="'feed_copy_before'"/></xsl:call-template>
            <xsl:if test="$self"> (<code><xsl:value-of select="$self"/></code>)</xsl:if>
            <xsl:text> </xsl:text>
            <xsl:call-template name="word"><xsl:with-param name="key" select="'feed_copy_after'"/></xsl:call-template>
            <xsl:if test="$home">
              <xsl:text> </xsl:text>
              <xsl:call-template name="link">
                <xsl:with-param name="href" select="$home"/>
                <xsl:with-param name="text">
                  <xsl:call-template name="word"><xsl:with-param name="key" select="'visit_website'"/></xsl:call-template>
                </xsl:with-param>
              </xsl:call-template>
            </xsl:if>
          </p>
        </header>
        <main>
          <xsl:apply-templates select="rss/channel/item | atom:feed/atom:entry"/>
        </main>
      </body>
    </html>
  </xsl:template>

  <!-- RSS 2.0 item; <description> holds HTML-escaped plain text, so it is unescaped once
       and then written as text (escaped again by the serializer). -->
  <xsl:template match="item">
    <article>
      <h2 dir="auto">
        <xsl:call-template name="link">
          <xsl:with-param name="href" select="link"/>
          <xsl:with-param name="text" select="title"/>
        </xsl:call-template>
      </h2>
      <p class="meta">
        <xsl:if test="pubDate">
          <!-- "Sat, 07 Mar 2026 10:00:00 +0300": the day, month and year as written. -->
          <xsl:variable name="date" select="normalize-space(pubDate)"/>
          <time>
            <xsl:call-template name="day">
              <xsl:with-param name="d" select="substring($date, 6, 2)"/>
              <xsl:with-param name="m" select="string-length(substring-before($months, substring($date, 9, 3))) div 3 + 1"/>
              <xsl:with-param name="y" select="substring($date, 13, 4)"/>
            </xsl:call-template>
          </time>
        </xsl:if>
        <xsl:if test="dc:creator">
          <xsl:text> · </xsl:text>
          <span dir="auto">
            <xsl:for-each select="dc:creator">
              <xsl:if test="position() &gt; 1">, </xsl:if>
              <xsl:value-of select="."/>
            </xsl:for-each>
          </span>
        </xsl:if>
      </p>
      <xsl:if test="normalize-space(description)">
        <p class="summary" dir="auto">
          <xsl:call-template name="unescape">
            <xsl:with-param name="text" select="string(description)"/>
          </xsl:call-template>
        </p>
      </xsl:if>
    </article>
  </xsl:template>

  <!-- Atom 1.0 entry; the first alternate link is the entry's own page. -->
  <xsl:template match="atom:entry">
    <xsl:variable name="date" select="string(atom:published | atom:updated[not(../atom:published)])"/>
    <article>
      <xsl:if test="@xml:lang">
        <xsl:attribute name="lang"><xsl:value-of select="@xml:lang"/></xsl:attribute>
      </xsl:if>
      <h2 dir="auto">
        <xsl:call-template name="link">
          <xsl:with-param name="href" select="string(atom:link[@rel='alternate' or not(@rel)][1]/@href)"/>
          <xsl:with-param name="text" select="atom:title"/>
        </xsl:call-template>
      </h2>
      <p class="meta">
        <xsl:if test="$date">
          <time datetime="{$date}">
            <xsl:call-template name="day">
              <xsl:with-param name="d" select="substring($date, 9, 2)"/>
              <xsl:with-param name="m" select="substring($date, 6, 2)"/>
              <xsl:with-param name="y" select="substring($date, 1, 4)"/>
            </xsl:call-template>
          </time>
        </xsl:if>
        <xsl:if test="atom:author">
          <xsl:text> · </xsl:text>
          <span dir="auto">
            <xsl:for-each select="atom:author">
              <xsl:if test="position() &gt; 1">, </xsl:if>
              <xsl:value-of select="atom:name"/>
            </xsl:for-each>
          </span>
        </xsl:if>
      </p>
      <!-- type="html": HTML-escaped plain text, unescaped once as in RSS -->
      <xsl:if test="normalize-space(atom:summary)">
        <p class="summary" dir="auto">
          <xsl:choose>
            <xsl:when test="atom:summary/@type = 'html'">
              <xsl:call-template name="unescape">
                <xsl:with-param name="text" select="string(atom:summary)"/>
              </xsl:call-template>
            </xsl:when>
            <xsl:otherwise><xsl:value-of select="atom:summary"/></xsl:otherwise>
          </xsl:choose>
        </p>
      </xsl:if>
    </article>
  </xsl:template>

  <!-- A link only for http(s) URLs (never javascript: or data:); otherwise just the text. -->
  <xsl:template name="link">
    <xsl:param name="href"/>
    <xsl:param name="text"/>
    <xsl:variable name="url" select="normalize-space($href)"/>
    <xsl:choose>
      <xsl:when test="starts-with($url, 'https://') or starts-with($url, 'http://')">
        <a href="{$url}"><xsl:value-of select="$text"/></a>
      </xsl:when>
      <xsl:otherwise><xsl:value-of select="$text"/></xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <!-- Undo one level of HTML escaping (&lt; &gt; &amp;, in that order) as plain text. -->
  <xsl:template name="unescape">
    <xsl:param name="text"/>
    <xsl:variable name="lt">
      <xsl:call-template name="replace">
        <xsl:with-param name="text" select="$text"/>
        <xsl:with-param name="from" select="'&amp;lt;'"/>
        <xsl:with-param name="to" select="'&lt;'"/>
      </xsl:call-template>
    </xsl:variable>
    <xsl:variable name="gt">
      <xsl:call-template name="replace">
        <xsl:with-param name="text" select="string($lt)"/>
        <xsl:with-param name="from" select="'&amp;gt;'"/>
        <xsl:with-param name="to" select="'&gt;'"/>
      </xsl:call-template>
    </xsl:variable>
    <xsl:call-template name="replace">
      <xsl:with-param name="text" select="string($gt)"/>
      <xsl:with-param name="from" select="'&amp;amp;'"/>
      <xsl:with-param name="to" select="'&amp;'"/>
    </xsl:call-template>
  </xsl:template>

  <xsl:template name="replace">
    <xsl:param name="text"/>
    <xsl:param name="from"/>
    <xsl:param name="to"/>
    <xsl:choose>
      <xsl:when test="contains($text, $from)">
        <xsl:value-of select="substring-before($text, $from)"/>
        <xsl:value-of select="$to"/>
        <xsl:call-template name="replace">
          <xsl:with-param name="text" select="substring-after($text, $from)"/>
          <xsl:with-param name="from" select="$from"/>
          <xsl:with-param name="to" select="$to"/>
        </xsl:call-template>
      </xsl:when>
      <xsl:otherwise><xsl:value-of select="$text"/></xsl:otherwise>
    </xsl:choose>
  </xsl:template>
</xsl:stylesheet>
