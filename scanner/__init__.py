"""Maruhi (マル秘): pre-send data-loss prevention for outgoing e-mail.

The package follows the data flow of DESIGN.md: ``extract`` → ``normalize`` → ``match`` →
``policy`` (scope, decide), tied together by the pure ``scan`` function; adapters (``cli``,
later the relay, store and web app) sit around it and the core never imports them.
"""

__version__ = "0.1.0"
