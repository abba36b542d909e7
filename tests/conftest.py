"""Shared fixtures: a real content repository, a real index, a real app."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from kb import create_app
from kb.search import SearchIndex
from kb.sheet import Sheet
from kb.store import ContentStore, Person
from kb.users import create_user
from tests.pgcluster import PgCluster, pg_bin_dir

ROOT = Path(__file__).resolve().parent.parent
STARTER = ROOT / "entries"
ALICE = Person("Alice Agent", "alice@example.com")
TARA = Person("Tara Trainer", "tara@example.com")


def entry_text(title: str, answer: str = "We are on it.", phone: str = "- Say sorry.",
               **meta) -> str:
    """A small valid entry file for tests."""
    lines = [f"title: {title}"]
    for key, value in meta.items():
        if isinstance(value, (list, tuple)):
            lines.append(f"{key}:")
            lines.extend(f"  - {v}" for v in value)
        else:
            lines.append(f"{key}: {value}")
    body = textwrap.dedent(answer).strip()
    text = "---\n" + "\n".join(lines) + "\n---\n" + body + "\n"
    if phone:
        text += "\n## On the phone\n\n" + phone + "\n"
    return text


SMALL_SHEET = {
    "item-arrived-damaged.md": entry_text(
        "Item arrived damaged", "I'm sorry your {{ item }} arrived damaged. "
        "We will send a new one for order {{ order_number }}.",
        phrasings=["the box came smashed", "it was cracked when I opened it"],
        tags="[delivery, damaged]", category="Orders and delivery",
        last_reviewed="2026-10-01", review_every_days=180),
    "refund-status.md": entry_text(
        "Refund status", "Your refund of {{ amount }} was sent on {{ date }}.",
        phrasings=["where is my money", "still waiting for my refund"],
        tags="[refund]", category="Returns and refunds"),
    "wrong-colour.md": entry_text(
        "Colour differs from the website", "Screens show colours a little differently.",
        phrasings=["it looks different in real life", "the shade is off"],
        tags="[product, colour]", category="Orders and delivery"),
    "_sheet/greeting.md": "Hello {{ customer_name }},\n",
    "_sheet/closing.md": "Kind regards,\n\n{{ agent_name }}  \n{{ company_name }}\n",
    "_sheet/phone_opening.md": "Thanks for calling {{ company_name }}, this is {{ agent_name }}.\n",
    "_sheet/synonyms.txt": "# groups\nrefund, money back, reimbursement\nbroken, damaged, smashed\n"
                           "colour, color, shade\n",
    "_sheet/placeholders.yml": "customer_name: {label: Customer name, example: Ana}\n"
                               "agent_name: {label: Your name}\n"
                               "company_name: {label: Company, default: Northwind Home}\n"
                               "order_number: {label: Order number}\n"
                               "item: {label: Item}\namount: {label: Amount}\n"
                               "date: {label: Date}\n",
}


@pytest.fixture
def store(tmp_path) -> ContentStore:
    return ContentStore.create(tmp_path / "content", SMALL_SHEET, "Start", author=TARA)


@pytest.fixture
def sheet(store) -> Sheet:
    return Sheet(store)


@pytest.fixture
def index(tmp_path, sheet) -> SearchIndex:
    ix = SearchIndex(tmp_path / "index", sheet)
    ix.open()
    sheet.after_commit = ix.catch_up
    yield ix
    ix.close()


@pytest.fixture(scope="session")
def starter_index(tmp_path_factory) -> SearchIndex:
    """The real starter sheet from entries/, indexed."""
    base = tmp_path_factory.mktemp("starter")
    store = ContentStore.open_or_create(base / "content", STARTER)
    ix = SearchIndex(base / "index", Sheet(store))
    ix.open()
    yield ix
    ix.close()


PASSWORD = "correct-horse-1"
PEOPLE = {"alice": "agent", "tara": "trainer", "adam": "admin"}


# -- the database: every test that uses it runs on SQLite and on a real PostgreSQL ---------


def pytest_addoption(parser):
    parser.addoption("--db", choices=("all", "sqlite", "postgresql"), default="all",
                     help="which databases the database tests run on (default: both)")


def pytest_generate_tests(metafunc):
    if "db_kind" in metafunc.fixturenames:
        choice = metafunc.config.getoption("db")
        kinds = ["sqlite", "postgresql"] if choice == "all" else [choice]
        if metafunc.definition.get_closest_marker("browser"):
            kinds = kinds[:1]  # the pages, not the database, are under test there
        metafunc.parametrize("db_kind", kinds)


@pytest.fixture(scope="session")
def pg_cluster():
    """A throwaway PostgreSQL cluster (Debian's package), started once per test run."""
    bin_dir = pg_bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL is not installed (Debian package postgresql; "
                    "scripts/test.sh installs it)")
    cluster = PgCluster(bin_dir)
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def database_url(request, db_kind):
    """None means the default SQLite file in the instance folder."""
    if db_kind == "sqlite":
        yield None
        return
    cluster = request.getfixturevalue("pg_cluster")
    url = cluster.fresh_database()
    yield url
    cluster.drop_database(url)


def write_seed(seed: Path) -> Path:
    for rel, text in SMALL_SHEET.items():
        (seed / rel).parent.mkdir(parents=True, exist_ok=True)
        (seed / rel).write_text(text)
    return seed


@pytest.fixture
def app(tmp_path, database_url):
    seed = write_seed(tmp_path / "seed")
    config = {"INSTANCE_DIR": str(tmp_path / "instance"), "SEED_DIR": str(seed),
              "TESTING": True}
    if database_url:
        config["DATABASE_URL"] = database_url
    app = create_app(config)
    db = app.extensions["kb_db"]
    for name, role in PEOPLE.items():
        create_user(db, name, PASSWORD, role=role, display_name=name.title() + " Example",
                    email=f"{name}@example.com")
    yield app
    app.extensions["kb"].index.close()
    db.dispose()


def csrf_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    if not match:
        match = re.search(r'name="csrf-token" content="([^"]+)"', html)
    assert match, "no CSRF token on the page"
    return match.group(1)


def login(client, username: str, password: str = PASSWORD):
    page = client.get("/login").get_data(as_text=True)
    return client.post("/login", data={"username": username, "password": password,
                                       "csrf_token": csrf_from(page)})


def post_form(client, url: str, data: dict, page_url: str | None = None):
    """POST a form the way a browser does: with the CSRF token from the page."""
    html = client.get(page_url or url).get_data(as_text=True)
    return client.post(url, data={"csrf_token": csrf_from(html), **data})


@pytest.fixture
def anon(app):
    return app.test_client()


@pytest.fixture
def client(app):
    """Signed in as alice, an agent."""
    c = app.test_client()
    assert login(c, "alice").status_code == 302
    return c


@pytest.fixture
def trainer(app):
    c = app.test_client()
    assert login(c, "tara").status_code == 302
    return c


@pytest.fixture
def admin(app):
    c = app.test_client()
    assert login(c, "adam").status_code == 302
    return c


@pytest.fixture
def runner(app):
    return app.test_cli_runner()
