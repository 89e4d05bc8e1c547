"""Settings: TOML + environment, typed; errors name the key; secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from scanner.config import ConfigError, HostPort, Secret, load_settings
from scanner.relay import replies

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "maruhi.toml"


def test_defaults_without_file() -> None:
    """With no file the embedded defaults of the README apply."""
    s = load_settings(None, env={})
    assert s.relay.listen == HostPort("127.0.0.1", 10025)
    assert s.upstream.address == HostPort("127.0.0.1", 10026)
    assert s.store.data_dir == Path("var/maruhi")


def test_file_and_env_override(tmp_path: Path) -> None:
    """The environment overrides the file; values are typed."""
    f = tmp_path / "m.toml"
    f.write_text('[relay]\nmax_recipients = 5\n[upstream]\naddress = "10.0.0.1:25"\n')
    s = load_settings(f, env={"MARUHI_RELAY_MAX_RECIPIENTS": "7",
                              "MARUHI_UPSTREAM_PASSWORD": "pw", "MARUHI_UPSTREAM_USERNAME": "u"})
    assert s.relay.max_recipients == 7
    assert s.upstream.address == HostPort("10.0.0.1", 25)
    assert s.upstream.password == Secret("pw")


@pytest.mark.parametrize(("text", "needle"), [
    ("[relay]\nmax_recipents = 5\n", "[relay] unknown key 'max_recipents'"),
    ("[relai]\n", "unknown section [relai]"),
    ("[relay]\nmax_recipients = \"many\"\n", "[relay] max_recipients: expected a number"),
    ('[relay]\ntls_cert = "c.pem"\n', "[relay] tls_key is required"),
    ('[upstream]\ntls = "maybe"\n', "[upstream] tls: must be one of"),
])
def test_errors_name_the_key(tmp_path: Path, text: str, needle: str) -> None:
    """A bad or missing key is reported by section and name."""
    f = tmp_path / "m.toml"
    f.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_settings(f, env={})
    assert needle in str(err.value)


def test_secret_repr_hides_value() -> None:
    """repr/str of a Secret (and of settings holding one) never show the credential."""
    s = Secret("hunter2")
    assert repr(s) == "'**********'"
    assert "hunter2" not in str(s)
    assert s.reveal() == "hunter2"


def test_deploy_example_config_loads() -> None:
    """deploy/maruhi.toml (every key, commented) is valid."""
    load_settings(DEPLOY, env={})


@pytest.mark.parametrize(("code", "msg", "expected"), [
    (250, "2.0.0 Ok: queued", "250 2.0.0 Ok: queued"),
    (554, "5.7.1 no", "554 5.7.1 no"),
    (452, "4.3.1 full", "451 4.3.1 Upstream deferred (452), please try again later"),
    (421, "closing", "451 4.4.0 Upstream deferred (421), please try again later"),
])
def test_upstream_reply_table(code: int, msg: str, expected: str) -> None:
    """Upstream 2xx/5xx pass through; any 4xx becomes 451 so the client retries."""
    assert replies.upstream_reply(code, msg)[0] == expected


def test_reject_reply_names_rules_only() -> None:
    """The reject reply is 550 5.7.1 with rule ids."""
    assert replies.rejected(["a", "b"]) == (
        "550 5.7.1 Message refused by data-loss-prevention policy (a, b)")


def test_deploy_config_documents_every_key() -> None:
    """Every settings key appears in deploy/maruhi.toml under its section, after a comment."""
    import dataclasses
    import re
    import typing

    from scanner.config import Settings

    lines = DEPLOY.read_text().splitlines()
    section = ""
    documented: set[tuple[str, str]] = set()
    for i, line in enumerate(lines):
        head = re.match(r"^\[([\w.]+)\]", line)
        if head:
            section = head.group(1)
            if "." in section:  # a table key such as [relay.auth_users]
                parent, key = section.split(".", 1)
                if lines[i - 1].startswith("#"):
                    documented.add((parent, key))
            continue
        m = re.match(r"^#?\s?(\w+) = ", line)
        if m and i > 0 and lines[i - 1].startswith("#"):
            documented.add((section, m.group(1)))
    hints = typing.get_type_hints(Settings)
    expected = {(f.name, k.name)
                for f in dataclasses.fields(Settings) if f.name not in ("source", "components")
                for k in dataclasses.fields(hints[f.name])}
    assert expected - documented == set()


def test_web_flags_override_config() -> None:
    """--web HOST:PORT and --no-web set [web] listen; the default serves on 127.0.0.1:8025."""
    from scanner.cli.main import build_parser
    from scanner.cli.serve_cmd import settings_from_args

    parser = build_parser()
    assert settings_from_args(parser.parse_args(["serve"])).web.listen == HostPort(
        "127.0.0.1", 8025)
    assert settings_from_args(parser.parse_args(["serve", "--web", "0.0.0.0:9000"])
                              ).web.listen == HostPort("0.0.0.0", 9000)
    assert settings_from_args(parser.parse_args(["serve", "--no-web"])).web.listen is None
