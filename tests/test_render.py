"""Replies that fit a chat window: tables in code blocks, long lists cut with a count."""
from ferrychat.render import overview, pinned, table
from gitops.model import Pin, PinLocation


def pin(app, env, version, is_range=False):
    return Pin(app, env, version, is_range, PinLocation(f"apps/{env}/{app}.yaml", 0, ("v",)),
               "helmrelease", app)


def test_table_aligns_and_cuts_with_a_count():
    text = table(["app", "dev"], [[f"app{i:03}", "1.0.0"] for i in range(50)], limit=10, more="apps")
    lines = text.splitlines()
    assert lines[0] == "```" and lines[1] == "app     dev"
    assert lines[2] == "app000  1.0.0"
    assert len(lines) == 1 + 1 + 10 + 1 + 1
    assert lines[-1] == "… and 40 more apps."


def test_cells_mark_ranges_newer_versions_and_absence():
    assert pinned(pin("a", "dev", "1.0.0"), newest="1.1.0") == "1.0.0*"
    assert pinned(pin("a", "dev", "1.1.0"), newest="1.1.0") == "1.1.0"
    assert pinned(pin("a", "dev", ">=1.0.0", is_range=True), newest="1.1.0") == "~>=1.0.0"
    assert pinned(None) == "-"
    assert pinned(Pin("a", "dev", None, False, None, "helmrelease", "a")) == "(latest)"


def test_overview_of_a_thousand_apps_stays_short():
    pins = [pin(f"app{i:04}", env, "1.0.0") for i in range(1000) for env in ("dev", "prod")]
    text = overview(pins, ["dev", "prod"], {}, notes=["Registry r did not answer within 5 s."])
    assert text.startswith("1000 apps across dev, prod:")
    assert "… and 960 more apps (use `!versions <app>`)." in text
    assert text.endswith("Registry r did not answer within 5 s.")
    assert len(text.splitlines()) < 50
