"""config.py reads everything from the environment: admins, ACLs, backend, storage."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_config(**env):
    code = ("import json, config; print(json.dumps({k: getattr(config, k) for k in "
            "('BACKEND', 'BOT_ADMINS', 'ACCESS_CONTROLS', 'BOT_DATA_DIR', 'CORE_PLUGINS', "
            "'BOT_EXTRA_PLUGIN_DIR', 'AUTOINSTALL_DEPS', 'BOT_ASYNC_POOLSIZE')}))")
    run = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={"PATH": "/usr/bin:/bin", **env}, timeout=60)
    return run


def test_admins_and_acls_come_from_the_environment():
    acl = {"FerryDeploy:deploy": {"allowusers": ["U01ALICE", "U02BOB"]}}
    run = load_config(FERRY_ADMINS="U0ADMIN1, U0ADMIN2", FERRY_ACCESS_CONTROLS=json.dumps(acl),
                      FERRY_DATA_DIR="/srv/ferry")
    config = json.loads(run.stdout)
    assert config["BACKEND"] == "FerrySlack"  # SlackV3 with the API base URL (backends/ferryslack)
    assert config["BOT_ADMINS"] == ["U0ADMIN1", "U0ADMIN2"]
    assert config["ACCESS_CONTROLS"]["FerryDeploy:deploy"] == {"allowusers": ["U01ALICE", "U02BOB"]}
    assert config["ACCESS_CONTROLS"]["FerryLocks:*"] == {"allowusers": ["U0ADMIN1", "U0ADMIN2"],
                                                         "allowmuc": False}
    assert config["BOT_DATA_DIR"] == "/srv/ferry"
    assert "VersionChecker" not in config["CORE_PLUGINS"]
    assert config["BOT_EXTRA_PLUGIN_DIR"] == str(ROOT / "plugins")
    assert config["AUTOINSTALL_DEPS"] is False


def test_broken_acl_json_stops_the_bot_with_a_reason():
    run = load_config(FERRY_ACCESS_CONTROLS="{not json")
    assert run.returncode != 0
    assert "FERRY_ACCESS_CONTROLS is not a JSON object of Errbot ACLs" in run.stderr


def test_admins_are_user_ids_not_patterns():
    """Errbot matches BOT_ADMINS as globs: `*` would make everyone an admin. The start stops."""
    for admins in ("*", "U0ADMIN1,*", "U0*", "alice", "@alice", "U0ADMIN1 U0ADMIN2"):
        run = load_config(FERRY_ADMINS=admins)
        assert run.returncode != 0, admins
        assert "is not a chat user ID: list admins by ID (Slack: U… or W…" in run.stderr, run.stderr
        assert "Traceback" not in run.stderr
    assert json.loads(load_config(FERRY_ADMINS="U0ADMIN1,W0GRID").stdout)["BOT_ADMINS"] == ["U0ADMIN1", "W0GRID"]
    # the text console (make demo) names its users @name
    assert json.loads(load_config(FERRY_BACKEND="Text", FERRY_ADMINS="@demo").stdout)["BOT_ADMINS"] == ["@demo"]
    assert load_config(FERRY_BACKEND="Text", FERRY_ADMINS="*").returncode != 0


def test_errbots_own_commands_are_for_admins_by_default():
    config = json.loads(load_config(FERRY_ADMINS="U0ADMIN1").stdout)
    acls = config["ACCESS_CONTROLS"]
    admins = {"allowusers": ["U0ADMIN1"], "allowmuc": False}
    for plugin in ("Utils", "ChatRoom", "Flows", "Health", "Webserver", "FerryHelp", "Plugins", "Backup"):
        assert acls[f"{plugin}:*"] == admins, plugin
    assert acls["FerryHelp:help"] == {} and "Help" not in config["CORE_PLUGINS"] and "CommandNotFoundFilter" not in config["CORE_PLUGINS"]
    # Errbot takes the first pattern that matches: a custom rule for one command comes before
    # its plugin's, and a catch-all comes last
    custom = {"*:*": {"allowrooms": ["C0DEPLOYS"]}, "Utils:whoami": {}}
    order = list(json.loads(load_config(FERRY_ADMINS="U0ADMIN1",
                                        FERRY_ACCESS_CONTROLS=json.dumps(custom)).stdout)["ACCESS_CONTROLS"])
    assert order.index("Utils:whoami") < order.index("Utils:*") < order.index("*:*") == len(order) - 1
    assert load_config(FERRY_ACCESS_CONTROLS="[1, 2]").returncode != 0


def test_command_threads_from_the_environment():
    """Enough threads that commands needing no registry never queue behind slow ones (issue 19,
    item 4: test_slow_dependency.py); a wrong value stops the start with one line."""
    assert json.loads(load_config().stdout)["BOT_ASYNC_POOLSIZE"] == 32
    assert json.loads(load_config(FERRY_WORKERS="64").stdout)["BOT_ASYNC_POOLSIZE"] == 64
    run = load_config(FERRY_WORKERS="lots")
    assert run.returncode != 0 and "FERRY_WORKERS must be a whole number" in run.stderr
