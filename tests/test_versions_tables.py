"""`!versions` tables kept per inventory (``ferrychat.listing.VersionsTables``): a warm table is the
one made before, and whatever it was made of changing makes it again, equal to a fresh one."""
from datetime import datetime, timezone

from ferrychat import listing
from ferrychat.grammar import parse_versions
from gitops.inventory import Inventory
from gitops.model import Pin
from gitops.selection import select
from gitops.state.store import Records, Store
from gitops.feedback.events import live_key
from gitops.feedback.waits import live_states

CHAIN = ("dev", "qa", "stag", "prod")
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc).timestamp()


def inventory(versions: dict, commit="c1") -> Inventory:
    pins = tuple(Pin(app, env, version, False, None, "helmrelease", app)
                 for env in CHAIN for app, version in sorted(versions.items()))
    return Inventory(commit, pins)


def fresh(inv, query, newest, notes, refused, live, now, column=None):
    """The answer as `!versions` made it before tables were kept."""
    named = select(inv.pins, CHAIN, {}, query.pattern).pins
    chosen = select(named, CHAIN, newest, outdated=query.outdated, column=column)
    return listing.versions(query, chosen, newest, notes, live_states(live, chosen.pins), now, refused)


def asked(tables, inv, query, newest, live, now, calls, column=None):
    def newest_of(pins):
        calls.append(len(pins))
        return newest, [], ()
    return tables.versions(inv, query, CHAIN, column, newest_of, lambda pins: live_states(live, pins), now)


def test_a_warm_table_is_the_one_made_before_and_any_change_makes_it_again():
    tables, calls = listing.VersionsTables(), []
    apps = {f"app-{i:03}": "1.0.0" for i in range(120)}
    inv = inventory(apps)
    query = parse_versions("")
    first = asked(tables, inv, query, {"app-001": "1.1.0"}, {}, NOW, calls)
    assert first == fresh(inv, query, {"app-001": "1.1.0"}, [], (), {}, NOW)
    assert asked(tables, inv, query, {"app-001": "1.1.0"}, {}, NOW + 3600, calls) is first
    assert calls == [len(inv.pins)] * 2  # the registry is still asked each time (its cache decides)

    # the registry's newest moved, a Flux event came, a new commit, another filter: made again
    newest = {"app-001": "1.2.0"}
    again = asked(tables, inv, query, newest, {}, NOW, calls)
    assert again is not first and again == fresh(inv, query, newest, [], (), {}, NOW)
    live = {live_key("qa", "app-002"): {"state": "live", "version": "1.0.0",
                                        "received": "2026-12-01T11:57:00Z"}}
    with_live = asked(tables, inv, query, newest, live, NOW, calls)
    assert with_live == fresh(inv, query, newest, [], (), live, NOW)
    assert "live 3m" in with_live.body
    later = asked(tables, inv, query, newest, live, NOW + 3600, calls)  # the age it shows changed
    assert later == fresh(inv, query, newest, [], (), live, NOW + 3600) and "live 1h" in later.body
    moved = inventory({**apps, "app-003": "2.0.0"}, "c2")
    assert asked(tables, moved, query, newest, live, NOW, calls) == fresh(moved, query, newest, [], (), live, NOW)
    narrow = parse_versions("app-00* --outdated --env qa")
    assert asked(tables, moved, narrow, newest, {}, NOW, calls, "qa") == \
        fresh(moved, narrow, newest, [], (), {}, NOW, "qa")


def test_live_states_of_a_whole_table_are_one_read_of_the_state_file(tmp_path):
    store = Store(tmp_path / "state.sqlite")
    memory = Records(store)
    pins = inventory({f"app-{i:03}": "1.0.0" for i in range(100)}).pins
    memory[live_key("prod", "app-007")] = {"state": "live", "version": "1.0.0"}
    memory["flux/pending/prod/app-008"] = {"other": "record"}
    reads = []
    real = store.read
    store.read = lambda sql, args=(): reads.append(sql) or real(sql, args)
    found = live_states(memory, pins)
    assert found == {("app-007", "prod"): {"state": "live", "version": "1.0.0"}}
    assert len(reads) == 1
    assert live_states(memory, [p for p in pins if p.app == "app-007"]) == found  # a few: per pin
