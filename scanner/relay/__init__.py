"""The before-queue SMTP relay adapter (``maruhi serve``): wire, upstream, scan pool, replies."""
