"""The route handlers, one module per audience: the public read API (api), feeds, pages
for people and embeds for other sites, writes and webhooks for token holders, and ops."""
