"""The operator's settings from its environment: ports.

Cases: each server's port (the Alertmanager receiver's, metrics, liveness) is 0 (off) by default
and 1 to 65535 when set; past 65535 (which binding would refuse with an OverflowError naming
nothing), negative, or not a number is a ConfigError naming the variable; two servers on one port
are refused naming both variables.
"""

from __future__ import annotations

import pytest

from debugcap.errors import ConfigError
from debugcap.operator.config import DebugcapConfig

WEBHOOK, METRICS, LIVENESS = ("DEBUGCAP_OPERATOR_ALERT_WEBHOOK_PORT", "DEBUGCAP_OPERATOR_METRICS_PORT",
                              "DEBUGCAP_OPERATOR_LIVENESS_PORT")
TOKEN = {"DEBUGCAP_OPERATOR_ALERT_WEBHOOK_TOKEN_FILE": "/etc/debugcap/alert-token/token"}


def test_ports_are_off_by_default_and_taken_from_1_to_65535() -> None:
    config = DebugcapConfig.from_env({})
    assert (config.alert_webhook_port, config.metrics_port, config.liveness_port) == (0, 0, 0)
    config = DebugcapConfig.from_env({WEBHOOK: "65535", METRICS: "1", LIVENESS: "8080", **TOKEN})
    assert (config.alert_webhook_port, config.metrics_port, config.liveness_port) == (65535, 1, 8080)


@pytest.mark.parametrize("variable", [WEBHOOK, METRICS, LIVENESS])
@pytest.mark.parametrize(("value", "says"), [("99999", "=99999 is not a port: use 1 to 65535, or 0 to turn it off"),
                                             ("65536", "=65536 is not a port"), ("-1", "='-1' must be at least 0"),
                                             ("http", "='http' is not a whole number")])
def test_a_port_out_of_range_names_its_variable(variable: str, value: str, says: str) -> None:
    with pytest.raises(ConfigError) as err:
        DebugcapConfig.from_env({variable: value, **TOKEN})
    assert str(err.value).startswith(variable + says)


def test_two_servers_on_one_port_are_refused_naming_both() -> None:
    with pytest.raises(ConfigError) as err:
        DebugcapConfig.from_env({WEBHOOK: "9090", METRICS: "9090", **TOKEN})
    assert str(err.value).startswith(f"{METRICS} and {WEBHOOK} are both 9090")
    with pytest.raises(ConfigError, match=f"^{LIVENESS} and {METRICS} are both 8080"):
        DebugcapConfig.from_env({METRICS: "8080", LIVENESS: "8080"})
