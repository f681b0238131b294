"""`!versions` filters as a pure function over pins: a glob over app names, the apps behind (the
registry's newest release or the previous environment of the chain), one environment's column."""
from gitops.model import Pin
from gitops.selection import behind, select

CHAIN = ("dev", "qa", "stag", "prod")
NEWEST = {"team-a-web": "2.0.0", "team-a-api": "1.4.0", "team-b-db": "5.0.0", "ranged": "3.0.0",
          "unknown": "1.0.0"}


def pin(app, env, version, is_range=False, unknown=False):
    return Pin(app, env, version, is_range, None, "helmrelease", app, unknown=unknown)


PINS = (
    # team-a-web: prod behind the registry and behind stag
    pin("team-a-web", "dev", "2.0.0"), pin("team-a-web", "qa", "2.0.0"),
    pin("team-a-web", "stag", "2.0.0"), pin("team-a-web", "prod", "1.9.0"),
    # team-a-api: up to date everywhere it runs (not in prod)
    pin("team-a-api", "dev", "1.4.0"), pin("team-a-api", "qa", "v1.4.0"),
    # team-b-db: qa is behind dev, though dev is the registry's newest? no: the registry is ahead
    pin("team-b-db", "dev", "5.0.0"), pin("team-b-db", "qa", "4.2.0"),
    pin("team-b-db", "stag", "5.0.0"), pin("team-b-db", "prod", "5.0.0"),
    # a range and an unknown version are never behind: Ferry cannot say what they resolve to
    pin("ranged", "dev", ">=1.0.0", is_range=True), pin("ranged", "prod", "~2", is_range=True),
    pin("unknown", "dev", "${VERSION}", unknown=True),
)


def test_no_filter_keeps_everything_and_counts_the_apps_behind():
    chosen = select(PINS, CHAIN, NEWEST)
    assert chosen.pins == PINS and chosen.environments == CHAIN
    assert chosen.apps == ("ranged", "team-a-api", "team-a-web", "team-b-db", "unknown")
    assert chosen.behind_registry == ("team-a-web", "team-b-db")
    assert chosen.behind_previous == ("team-a-web", "team-b-db")


def test_a_glob_matches_app_names_the_fnmatch_way_ignoring_case():
    assert select(PINS, CHAIN, NEWEST, "team-a-*").apps == ("team-a-api", "team-a-web")
    assert select(PINS, CHAIN, NEWEST, "TEAM-?-DB").apps == ("team-b-db",)
    assert select(PINS, CHAIN, NEWEST, "team-[ab]-w*").apps == ("team-a-web",)
    assert select(PINS, CHAIN, NEWEST, "*-db").apps == ("team-b-db",)
    assert select(PINS, CHAIN, NEWEST, "team-a").apps == ()  # no wildcard: the whole name
    assert select(PINS, CHAIN, NEWEST, "team-a-web").apps == ("team-a-web",)


def test_outdated_keeps_the_apps_behind_with_all_their_kept_pins():
    chosen = select(PINS, CHAIN, NEWEST, outdated=True)
    assert chosen.apps == ("team-a-web", "team-b-db")
    assert len(chosen.pins) == 8  # every environment of them, for context


def test_one_column_still_compares_with_the_previous_environment_of_the_chain():
    prod = select(PINS, CHAIN, NEWEST, column="prod")
    assert prod.environments == ("prod",)
    assert {p.environment for p in prod.pins} == {"prod"}
    assert prod.apps == ("ranged", "team-a-web", "team-b-db")
    late = select(PINS, CHAIN, {}, outdated=True, column="prod")  # no registry answer at all
    assert late.apps == ("team-a-web",) and late.behind_previous == ("team-a-web",)
    assert late.behind_registry == ()
    qa = select(PINS, CHAIN, {}, outdated=True, column="qa")
    assert qa.apps == ("team-b-db",)  # qa 4.2.0 is behind dev 5.0.0; v1.4.0 equals 1.4.0


def test_filters_combine():
    chosen = select(PINS, CHAIN, NEWEST, "team-a-*", outdated=True, column="prod")
    assert chosen.apps == ("team-a-web",) and [p.version for p in chosen.pins] == ["1.9.0"]
    assert select(PINS, CHAIN, NEWEST, "team-b-*", outdated=True, column="prod").apps == ()


def test_behind_needs_two_versions_it_can_read():
    assert behind(pin("x", "prod", "1.0.0"), "1.1.0", pin("x", "stag", "1.0.0")) == (True, False)
    assert behind(pin("x", "prod", "1.0.0"), None, pin("x", "stag", "1.2.0")) == (False, True)
    assert behind(pin("x", "prod", "latest"), "1.1.0", None) == (False, False)
    assert behind(pin("x", "prod", "1.0.0"), "1.1.0-rc.1", None) == (True, False)
    assert behind(pin("x", "prod", "1.0.0"), "1.0.0", pin("x", "stag", ">=2", is_range=True)) == (False, False)
