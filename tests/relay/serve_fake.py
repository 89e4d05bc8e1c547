"""``python -m tests.relay.serve_fake serve ARGS``: ``maruhi serve`` with the FAKE scan hooks.

For subprocess tests (SIGTERM drain, SIGKILL during holds) that need verdicts chosen by the test
message's X-Test-Verdict header; everything else is the real ``maruhi serve`` code path.
"""

from __future__ import annotations

import sys

from scanner.cli.main import build_parser
from scanner.cli.serve_cmd import run
from tests.relay.conftest import FAKE_HOOKS

if __name__ == "__main__":
    args = build_parser().parse_args(sys.argv[1:])
    sys.exit(run(args, hooks=FAKE_HOOKS))
