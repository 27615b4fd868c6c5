"""Passwords in URLs are hidden in every message, parsed or not, and never travel."""

from __future__ import annotations

import pytest

from tuning_service.core.credentials import has_password, hide
from tuning_service.core.errors import InputError
from tuning_service.core.spec import SweepSpec
from tuning_service.store.engine import parse_url, redact


@pytest.mark.parametrize(
    ("given", "shown"),
    [
        ("postgresql://u:s3cret@db:5432/x", "postgresql://u:***@db:5432/x"),
        ("postgresql://u:p@ss/w:rd@db/x", "postgresql://u:***@db/x"),  # a password holding @, / and :
        ("postgresql://u:s3cret", "postgresql://u:***"),  # typed without a host: "s3cret" looks like a port
        (
            "postgresql://u@db/x?password=s3cret&sslmode=require",
            "postgresql://u@db/x?password=***&sslmode=require",
        ),
        ("http://me:s3cret@mlflow:5000", "http://me:***@mlflow:5000"),
        ("u:s3cret@db/x", "u:***@db/x"),
        ("postgresql://u@[::1]/x", "postgresql://u@[::1]/x"),
        ("postgresql://[::1]/x", "postgresql://[::1]/x"),
        ("sqlite:///tmp/results/tuning.db", "sqlite:///tmp/results/tuning.db"),
        ("not a url", "not a url"),
    ],
)
def test_a_password_is_hidden_whether_or_not_the_url_parses(given, shown):
    assert hide(given) == shown
    assert has_password(given) == (given != shown)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:s3cret@db:port/x",  # malformed: a port that is not a number
        "postgresql://u:s3cret@db:99999/x",
        "postgresql+oracle://u:s3cret@db/x",
        "postgresql://u:s3cret",
        "postgresql://u@db/?password=s3cret",
    ],
)
def test_a_bad_database_url_never_echoes_its_password(url):
    """Before: the malformed-URL line quoted the URL as given, password included."""
    with pytest.raises(InputError) as raised:
        parse_url(url)
    assert "s3cret" not in str(raised.value) and "***" in str(raised.value)


def test_redact_never_falls_back_to_the_url_as_given():
    """Before: a URL SQLAlchemy could not parse came back whole from redact()."""
    assert redact("postgresql://u:s3cret@db:port/x") == "postgresql://u:***@db:port/x"
    assert redact(parse_url("postgresql://u@db/x?password=s3cret")) == (
        "postgresql+psycopg://u@db/x?password=***"
    )


def test_an_mlflow_uri_with_a_password_is_refused_with_where_to_put_it(tmp_path):
    """It would be recorded with the sweep, pickled in Tune's state and shipped by `submit`."""
    spec = SweepSpec(mlflow="http://me:s3cret@mlflow.internal:5000", storage=str(tmp_path / "r"))
    with pytest.raises(
        InputError, match=r"--mlflow 'http://me:\*\*\*@mlflow.internal:5000' holds a password"
    ) as raised:
        spec.validate()
    assert "s3cret" not in str(raised.value) and "MLFLOW_TRACKING_PASSWORD" in str(raised.value)
    spec.replace(mlflow="http://me@mlflow.internal:5000").validate()
