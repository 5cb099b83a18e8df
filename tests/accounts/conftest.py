"""Real external instances for account sync tests: the local MariaDB and PostgreSQL.

Every fixture creates its accounts and databases under a random prefix and drops them
afterwards, so runs can overlap without touching each other's objects.
"""

import secrets

import MySQLdb
import psycopg
import pytest

from tests.inventory.factories import CredentialFactory, InstanceFactory

PASSWORD = "Mon-" + secrets.token_hex(8)


class MariaDB:
    """Root session on the local MariaDB, remembering what to drop."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.connection = MySQLdb.connect(
            host="127.0.0.1", port=3306, user="root", password="", autocommit=True
        )
        self.users: set[str] = set()
        self.roles: set[str] = set()
        self.databases: set[str] = set()

    def run(self, *statements: str) -> None:
        with self.connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)

    def user(self, name: str, host: str = "%") -> str:
        account = f"'{self.prefix}{name}'@'{host}'"
        self.users.add(account)
        return account

    def role(self, name: str) -> str:
        self.roles.add(f"{self.prefix}{name}")
        return f"{self.prefix}{name}"

    def database(self, name: str) -> str:
        self.databases.add(name)
        return name

    def close(self) -> None:
        for account in self.users:
            self.run(f"DROP USER IF EXISTS {account}")
        for role in self.roles:  # DROP USER leaves roles alone
            self.run(f"DROP ROLE IF EXISTS `{role}`")
        for name in self.databases:
            self.run(f"DROP DATABASE IF EXISTS `{name}`")
        self.connection.close()


@pytest.fixture
def mariadb():
    server = MariaDB(prefix=f"wfs{secrets.token_hex(2)}_")
    monitor = server.user("monitor")
    server.run(
        f"CREATE USER {monitor} IDENTIFIED BY '{PASSWORD}'", f"GRANT SELECT ON mysql.* TO {monitor}"
    )
    yield server
    server.close()


@pytest.fixture
def mariadb_instance(db, mariadb):
    credential = CredentialFactory(username=f"{mariadb.prefix}monitor", secret=PASSWORD)
    return InstanceFactory(engine="mysql", host="127.0.0.1", port=3306, credential=credential)


class PostgreSQL:
    """Superuser session on the local PostgreSQL, remembering what to drop."""

    def __init__(self, prefix: str):
        self.prefix = prefix
        self.connection = psycopg.connect(
            host="127.0.0.1", user="postgres", dbname="postgres", autocommit=True
        )
        self.roles: list[str] = []
        self.databases: list[str] = []

    def run(self, *statements: str, database: str | None = None) -> None:
        if database:
            with psycopg.connect(
                host="127.0.0.1", user="postgres", dbname=database, autocommit=True
            ) as conn:
                for statement in statements:
                    conn.execute(statement)
            return
        for statement in statements:
            self.connection.execute(statement)

    def role(self, name: str) -> str:
        self.roles.append(f"{self.prefix}{name}")
        return f"{self.prefix}{name}"

    def database(self, name: str) -> str:
        self.databases.append(f"{self.prefix}{name}")
        return f"{self.prefix}{name}"

    def close(self) -> None:
        for name in self.databases:
            self.run(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        for name in reversed(self.roles):
            self.run(f'DROP ROLE IF EXISTS "{name}"')
        self.connection.close()


@pytest.fixture
def postgres():
    server = PostgreSQL(prefix=f"wfs{secrets.token_hex(2)}_")
    monitor = server.role("monitor")
    server.run(f"CREATE ROLE {monitor} LOGIN PASSWORD '{PASSWORD}' IN ROLE whalefall_password_auth")
    yield server
    server.close()


@pytest.fixture
def postgres_instance(db, postgres):
    credential = CredentialFactory(username=f"{postgres.prefix}monitor", secret=PASSWORD)
    return InstanceFactory(
        engine="postgresql",
        host="127.0.0.1",
        port=5432,
        database_name="postgres",
        credential=credential,
    )
