"""Which database the admin commands open: the default, sqlite:///footfall.db, is a file in the current folder.

`footfall server` and `server migrate` set a server up and may create it; `keys`, `zones` and `retention` work
on the server's database and refuse to create one in whatever folder the user happens to be in."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from footfall.cli import app


@pytest.fixture()
def empty_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The current folder, with no database in it and no DATABASE_URL set."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    return tmp_path


def migrated(database: Path) -> tuple[CliRunner, dict[str, str]]:
    """A runner and the environment that points it at ``database``, made and migrated."""
    runner, env = CliRunner(), {"DATABASE_URL": f"sqlite:///{database}"}
    assert runner.invoke(app, ["server", "migrate"], env=env).exit_code == 0
    return runner, env


def refused_in_one_line(result: Result, words: str) -> None:
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and words in lines[0], result.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["keys", "create", "--role", "viewer", "--name", "ops"],
        ["keys", "list"],
        ["keys", "revoke", "1"],
        ["zones", "set", "mall-1", "fc-north", "--kind", "food_court"],
        ["server", "retention", "--days", "7"],
    ],
    ids=lambda command: " ".join(command[:2]),
)
def test_admin_commands_do_not_create_a_database_in_the_current_folder(command: list[str], empty_folder: Path) -> None:
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 2, result.output
    assert f"error: no database at {empty_folder / 'footfall.db'}" in result.stderr
    assert "--database-url" in result.stderr and "Traceback" not in result.output
    assert not list(empty_folder.iterdir()), "the command left files behind"


def test_migrate_creates_the_default_database_and_says_where(empty_folder: Path) -> None:
    runner = CliRunner()
    migrated = runner.invoke(app, ["server", "migrate"])
    assert migrated.exit_code == 0, migrated.output
    database = empty_folder / "footfall.db"
    assert database.is_file()
    assert f"created the SQLite database {database}" in migrated.stderr

    # Where the database now is, keys work on it, and nothing says "created" again.
    created = runner.invoke(app, ["keys", "create", "--role", "viewer", "--name", "ops"])
    assert created.exit_code == 0, created.output
    assert created.stdout.strip().startswith("ffk_")
    assert "created the SQLite database" not in created.stderr
    listed = runner.invoke(app, ["keys", "list"])
    assert listed.exit_code == 0 and "viewer" in listed.stdout


def test_a_given_database_url_may_create_the_file_and_names_it(empty_folder: Path, tmp_path: Path) -> None:
    database = tmp_path / "elsewhere" / "site.db"
    database.parent.mkdir()
    result = CliRunner().invoke(
        app,
        ["zones", "set", "mall-1", "fc-north", "--kind", "food_court"],
        env={"DATABASE_URL": f"sqlite:///{database}"},
    )
    assert result.exit_code == 0, result.output
    assert database.is_file() and not (empty_folder / "footfall.db").exists()
    assert f"created the SQLite database {database}" in result.stderr


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        (["mall-1", "fc-north", "--name", "Food\x00court"], "--name: control characters"),
        (["mall-1", "fc-north", "--floor", "L1\nL2"], "--floor: control characters"),
        (["mall-1", "fc-north", "--name", ""], "--name: String should have at least 1 character"),
        (["mall 1", "fc-north"], "site 'mall 1': letters, digits"),
        (["mall-1", "x" * 65, "--kind", "food_court"], "zone 'xxxx"),
        (["mall-1", "fc-north", "--kind", "cafe"], "--kind 'cafe' is not one of"),
    ],
)
def test_zones_set_refuses_what_the_api_refuses(empty_folder: Path, arguments: list[str], words: str) -> None:
    """`footfall zones set` wrote a zone the API would have refused (a NUL in its name, a 500 on PostgreSQL; a site
    id no agent can send), through its own copy of the API's write."""
    runner, env = migrated(empty_folder / "site.db")
    refused_in_one_line(runner.invoke(app, ["zones", "set", *arguments], env=env), words)
    listed = runner.invoke(app, ["zones", "set", "mall-1", "fc-north", "--floor", "L2"], env=env)
    assert listed.exit_code == 0 and "name='fc-north' kind=unknown floor=L2" in listed.stdout, listed.output


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        (["--role", "agent", "--name", "y", "--agent", "box 1/ü"], "--agent 'box 1/ü': letters, digits"),
        (["--role", "agent", "--name", "y", "--site", "Riverside Mall"], "--site 'Riverside Mall': letters, digits"),
        (["--role", "viewer", "--name", "n" * 5000], "--name: String should have at most"),
        (["--role", "viewer", "--name", "ops\x00"], "--name: control characters"),
    ],
)
def test_keys_create_refuses_what_the_api_refuses(empty_folder: Path, arguments: list[str], words: str) -> None:
    """Found by attack: `keys create --agent 'box 1/ü' --site 'Riverside Mall'` printed a key whose agent and site no
    agent config can name, so every ingest with it was refused later, far from the cause; and a 5,000-character name
    went in where the API takes at most 200. The CLI checks what POST /api/v1/admin/keys checks."""
    runner, env = migrated(empty_folder / "keys.db")
    refused_in_one_line(runner.invoke(app, ["keys", "create", *arguments], env=env), words)
    assert runner.invoke(app, ["keys", "list"], env=env).stdout == ""


def test_keys_revoke_of_an_id_no_database_holds_is_a_clear_error(empty_folder: Path) -> None:
    runner, env = migrated(empty_folder / "keys.db")
    for key_id in ("99999999999999999999999", "0", "-3"):  # the first was an OverflowError traceback
        result = runner.invoke(app, ["keys", "revoke", key_id], env=env)
        assert result.exit_code == 2 and "Traceback" not in result.output, (key_id, result.output)


def test_an_unreachable_database_is_named_without_its_password(empty_folder: Path) -> None:
    """A typo in DATABASE_URL under systemd wrote the password into the journal: 'cannot open database
    postgresql://u:S3cretPw@...'."""
    result = CliRunner().invoke(app, ["keys", "list", "--database-url", "postgresql://u:S3cretPw@127.0.0.1:1/db"])
    assert result.exit_code == 2 and "cannot open database" in result.stderr, result.output
    assert "S3cretPw" not in result.output and "postgresql://u:***@127.0.0.1:1/db" in result.stderr, result.stderr


@pytest.mark.parametrize("port", ["99999", "0", "-1"])
def test_server_refuses_a_port_no_socket_can_have(empty_folder: Path, port: str) -> None:
    result = CliRunner().invoke(app, ["server", "--database-url", "sqlite:///x.db", "--port", port])
    assert result.exit_code == 2 and "Traceback" not in result.output and "--port" in result.output, result.output


@pytest.mark.parametrize(
    ("host", "words"),
    [
        ("999.1.1.1", "--host '999.1.1.1': not an address or name of this machine"),
        ("a..b", "--host 'a..b': not an address or name of this machine"),
        ("192.0.2.1", "cannot listen on --host 192.0.2.1 --port"),  # TEST-NET-1: no interface here has it
    ],
)
def test_server_refuses_a_host_it_cannot_listen_on_before_touching_the_database(
    empty_folder: Path, host: str, words: str
) -> None:
    # Found by attack: uvicorn said only "[Errno -2] Name or service not known", after the database was migrated.
    result = CliRunner().invoke(app, ["server", "--database-url", "sqlite:///x.db", "--host", host])
    refused_in_one_line(result, words)
    assert not (empty_folder / "x.db").exists()


def test_server_refuses_a_port_another_program_listens_on(empty_folder: Path) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = CliRunner().invoke(app, ["server", "--database-url", "sqlite:///x.db", "--port", str(port)])
    refused_in_one_line(result, f"cannot listen on --host 127.0.0.1 --port {port} (Address already in use)")


def _spare_port() -> int:
    import socket

    with socket.socket() as spare:
        spare.bind(("127.0.0.1", 0))
        return int(spare.getsockname()[1])


def test_the_listen_check_takes_every_address_uvicorn_can_listen_on(monkeypatch: pytest.MonkeyPatch) -> None:
    """Found in review: '' (every interface) was refused; '::' was refused while another program held 0.0.0.0 on
    the port (asyncio binds '::' IPv6-only, and serves); on a machine with IPv6 switched off, 'localhost' (::1 among
    its addresses) was an OSError traceback. Each is what asyncio, under uvicorn, accepts."""
    import errno
    import socket

    from footfall.server.commands import _check_listen_address

    _check_listen_address("", _spare_port())
    with socket.socket() as ipv4_holder:
        ipv4_holder.bind(("0.0.0.0", 0))
        ipv4_holder.listen()
        if socket.has_ipv6:
            _check_listen_address("::", ipv4_holder.getsockname()[1])

    real = socket.socket

    class WithoutIPv6(real):  # type: ignore[misc, valid-type]  # ipv6.disable=1: the kernel offers no AF_INET6
        def __init__(self, family: int = socket.AF_INET, *args: object, **kwargs: object) -> None:
            if family == socket.AF_INET6:
                raise OSError(errno.EAFNOSUPPORT, "Address family not supported by protocol")
            super().__init__(family, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(socket, "socket", WithoutIPv6)
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda *_args, **_kwargs: [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", 0, 0, 0)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 0)),
        ],
    )
    _check_listen_address("localhost", 0)


@pytest.mark.parametrize(
    ("variable", "value", "words"),
    [
        ("FOOTFALL_K_ANON", "abc", "FOOTFALL_K_ANON='abc': Input should be a valid integer"),
        ("FOOTFALL_QUERY_TIMEOUT_S", "nan", "FOOTFALL_QUERY_TIMEOUT_S='nan': Input should be a finite number"),
    ],
)
def test_a_bad_environment_variable_is_named_with_its_value(
    empty_folder: Path, monkeypatch: pytest.MonkeyPatch, variable: str, value: str, words: str
) -> None:
    """The error named the settings field (`k_anonymity: ...`), which no user wrote, and 'nan' read as 'should be
    less than or equal to 3600'."""
    monkeypatch.setenv(variable, value)
    result = CliRunner().invoke(app, ["keys", "list", "--database-url", f"sqlite:///{empty_folder / 'x.db'}"])
    assert result.exit_code == 2 and words in result.stderr, result.output
