"""The weekly newsletter, sent by feedsvc itself.

Subscribers sign up with double opt-in (``subscribers``), through links signed with the
store's key (``links``) and a proof of work instead of a CAPTCHA; addresses are normalised
and look-alikes refused (``addresses``); mail goes out over SMTP (``mailer``), written by
feedsvc.render.mail. Nothing here answers HTTP: feedsvc.http.routes.newsletter does.
"""
