"""Version strings as the four engines report them, parsed into raw / major.minor / full."""

import pytest

from inventory.engines.base import UNKNOWN_VERSION, VersionInfo, engine_class
from tests import fakedb

MYSQL_VERSIONS = [
    ("8.0.36", "8.0", "8.0.36"),
    ("8.4.0-log", "8.4", "8.4.0"),
    ("5.7.44-log", "5.7", "5.7.44"),
    ("8.0.36-0ubuntu0.22.04.1", "8.0", "8.0.36"),
    ("8.0.35-27", "8.0", "8.0.35"),  # Percona Server
    ("10.11.19-MariaDB-0+deb12u1", "10.11", "10.11.19"),
    ("11.4.2-MariaDB-ubu2404", "11.4", "11.4.2"),
    ("10.6.12-MariaDB-log", "10.6", "10.6.12"),
    # MariaDB before 11 behind the old handshake, as proxies and replicas still report it.
    ("5.5.5-10.6.12-MariaDB-log", "10.6", "10.6.12"),
    ("5.5.5-10.3.39-MariaDB-0ubuntu0.20.04.2", "10.3", "10.3.39"),
]

POSTGRESQL_VERSIONS = [
    (
        "PostgreSQL 15.19 (Debian 15.19-0+deb12u1) on x86_64-pc-linux-gnu, compiled by gcc "
        "(Debian 12.2.0-14+deb12u1) 12.2.0, 64-bit",
        "15.19",
        "15.19",
    ),
    (
        "PostgreSQL 16.4 on aarch64-unknown-linux-gnu, compiled by aarch64-unknown-linux-gnu-gcc "
        "(GCC) 9.5.0, 64-bit",
        "16.4",
        "16.4",
    ),
    (
        "PostgreSQL 9.6.24 on x86_64-pc-linux-gnu, compiled by gcc (GCC) 4.8.5 20150623 "
        "(Red Hat 4.8.5-44), 64-bit",
        "9.6",
        "9.6.24",
    ),
    (
        "PostgreSQL 17beta1 on x86_64-pc-linux-gnu, compiled by gcc (GCC) 13.2.1 20240316, 64-bit",
        "17.0",
        "17",
    ),
    ("PostgreSQL 12.0", "12.0", "12.0"),
]

SQLSERVER_VERSIONS = [
    (fakedb.SQLSERVER_2016_VERSION, "13.0", "13.0.6300.2"),
    (fakedb.SQLSERVER_2017_VERSION, "14.0", "14.0.3456.2"),
    (fakedb.SQLSERVER_2019_VERSION, "15.0", "15.0.4198.2"),
    (fakedb.SQLSERVER_2022_VERSION, "16.0", "16.0.4115.5"),
    (
        "Microsoft SQL Server 2022 (RTM) - 16.0.1000.6 (X64) \n\tOct  8 2022 05:58:25 \n"
        "\tCopyright (C) 2022 Microsoft Corporation\n"
        "\tDeveloper Edition (64-bit) on Linux (Ubuntu 22.04.1 LTS) <X64>",
        "16.0",
        "16.0.1000.6",
    ),
    (
        "Microsoft SQL Azure (RTM) - 12.0.2000.8 \n\tMay 28 2024 10:43:43 \n"
        "\tCopyright (C) 2022 Microsoft Corporation\n",
        "12.0",
        "12.0.2000.8",
    ),
]

ORACLE_VERSIONS = [
    (
        "Oracle Database 11g Enterprise Edition Release 11.2.0.1.0 - 64bit Production",
        "11.2",
        "11.2.0.1.0",
    ),
    (
        "Oracle Database 12c Enterprise Edition Release 12.2.0.1.0 - 64bit Production",
        "12.2",
        "12.2.0.1.0",
    ),
    # BANNER of 18c and later: the release is always N.0.0.0.0.
    (
        "Oracle Database 19c Enterprise Edition Release 19.0.0.0.0 - Production",
        "19.0",
        "19.0.0.0.0",
    ),
    # BANNER_FULL carries the patched version on a second line.
    (
        "Oracle Database 19c Enterprise Edition Release 19.0.0.0.0 - Production\n"
        "Version 19.3.0.0.0",
        "19.3",
        "19.3.0.0.0",
    ),
    (
        "Oracle Database 21c Express Edition Release 21.0.0.0.0 - Production\nVersion 21.3.0.0.0",
        "21.3",
        "21.3.0.0.0",
    ),
    (
        "Oracle Database 23ai Free Release 23.0.0.0.0 - Develop, Learn, and Run for Free\n"
        "Version 23.5.0.24.07",
        "23.5",
        "23.5.0.24.07",
    ),
    (
        "Oracle Database 23ai Enterprise Edition Release 23.0.0.0.0 - for Oracle Cloud and "
        "Engineered Systems\nVersion 23.4.0.24.05",
        "23.4",
        "23.4.0.24.05",
    ),
    # The TNS row of an 11g V$VERSION.
    ("TNS for Linux: Version 11.2.0.1.0 - Production", "11.2", "11.2.0.1.0"),
]


def _cases(engine, versions):
    return [
        pytest.param(engine, raw, mm, full, id=f"{engine}-{mm}-{n}")
        for n, (raw, mm, full) in enumerate(versions)
    ]


@pytest.mark.parametrize(
    ("engine", "raw", "major_minor", "full"),
    _cases("mysql", MYSQL_VERSIONS)
    + _cases("postgresql", POSTGRESQL_VERSIONS)
    + _cases("sqlserver", SQLSERVER_VERSIONS)
    + _cases("oracle", ORACLE_VERSIONS),
)
def test_a_reported_version_is_parsed(engine, raw, major_minor, full):
    info = engine_class(engine).parse_version(raw)

    assert info == VersionInfo(raw=raw.strip(), major_minor=major_minor, full=full)


UNPARSABLE = [
    "",
    "   ",
    "not a version",
    "MySQL",
    "PostgreSQL",
    "Microsoft SQL Server vNext",
    "Oracle Database 23ai Free",
    "v8",
]


@pytest.mark.parametrize("engine", ["mysql", "postgresql", "sqlserver", "oracle"])
@pytest.mark.parametrize("raw", UNPARSABLE)
def test_an_unparsable_version_is_kept_raw_and_marked_unknown(engine, raw):
    info = engine_class(engine).parse_version(raw)

    assert info == VersionInfo(raw=raw.strip(), major_minor=UNKNOWN_VERSION, full="")


@pytest.mark.parametrize("engine", ["mysql", "postgresql", "sqlserver", "oracle"])
def test_a_missing_version_is_unknown(engine):
    assert engine_class(engine).parse_version(None) == VersionInfo("", UNKNOWN_VERSION, "")


@pytest.mark.parametrize("engine", ["mysql", "postgresql", "sqlserver", "oracle"])
def test_the_raw_version_is_bounded_to_what_the_model_stores(engine):
    raw = "x" * 2000

    assert engine_class(engine).parse_version(raw).raw == "x" * 500


def test_a_mysql_version_keeps_the_old_handshake_prefix_in_the_raw_text():
    info = engine_class("mysql").parse_version("5.5.5-10.6.12-MariaDB-log")

    assert info.raw == "5.5.5-10.6.12-MariaDB-log"
    assert info.major_minor == "10.6"


def test_a_genuine_mysql_5_5_5_is_not_taken_for_mariadb():
    assert engine_class("mysql").parse_version("5.5.5").full == "5.5.5"


def test_a_two_part_mysql_version_has_no_patch_level():
    # Aurora MySQL reports "8.0.mysql_aurora.3.05.2".
    info = engine_class("mysql").parse_version("8.0.mysql_aurora.3.05.2")

    assert (info.major_minor, info.full) == ("8.0", "8.0")
