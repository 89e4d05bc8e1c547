"""The mailbox poller: watches Sent Items, journal and Drafts folders (EWS, Graph, IMAP), scans
what users sent with the same ``scan()`` as the relay, records disclosures and tags items.

``source`` is the small backend interface, ``loop`` the per-folder poll loop with cursors,
dedupe and backoff, ``actions`` what to do with a verdict per folder kind, and ``imap``/``ews``/
``graph`` the three backends. A poller detects and records; it cannot stop a message that was
already submitted (see docs/poller.md).
"""
