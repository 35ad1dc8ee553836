"""Push: telling others that something changed (WebSub hub pings, webhooks).

Senders run in the background and never delay or fail the write that caused them.
"""
