"""A scheduler address is checked before any connection is tried (#17): a malformed one was an
engine failure (exit 3) followed by distributed's traceback from a half-built client."""

from __future__ import annotations

import pytest
from _cli import invoke, one_error_line
from typer.testing import CliRunner

from calibkit.engine.dask_executor import check_address
from calibkit.errors import UsageError


@pytest.mark.parametrize(
    "address", ["tcp://10.0.0.5:8786", "scheduler:8786", "tls://[::1]:8786", " tcp://h:1 "]
)
def test_addresses_that_read_protocol_host_port(address: str) -> None:
    assert check_address(address) == address.strip()


@pytest.mark.parametrize("address", ["notanaddress", "tcp://host", "tcp://:8786", "a b:1", ""])
def test_malformed_addresses_are_usage_errors(address: str) -> None:
    with pytest.raises(UsageError, match="is not a scheduler address"):
        check_address(address)


def test_the_cli_says_it_in_one_line() -> None:
    pytest.importorskip("distributed")
    result = invoke(
        CliRunner(), "ece", "sample_data/digits_hard_test.npz", "--scheduler", "notanaddress"
    )
    message = one_error_line(result)
    assert (
        message == "--scheduler: 'notanaddress' is not a scheduler address such as tcp://host:8786"
    )
