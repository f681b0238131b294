"""config.py reads everything from the environment: admins, ACLs, backend, storage."""
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def load_config(**env):
    code = ("import json, config; print(json.dumps({k: getattr(config, k) for k in "
            "('BACKEND', 'BOT_ADMINS', 'ACCESS_CONTROLS', 'BOT_DATA_DIR', 'CORE_PLUGINS', "
            "'BOT_EXTRA_PLUGIN_DIR', 'AUTOINSTALL_DEPS')}))")
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
