"""The dependency choice documented in README: the Fyers SDK with its own pins, and the newest official
OpenAlgo client that installs beside it."""
import importlib.metadata as md


def test_fyers_sdk_and_openalgo_client_import_at_the_chosen_versions():
    import openalgo
    from fyers_apiv3.FyersWebsocket import data_ws

    assert hasattr(data_ws, "FyersDataSocket")
    assert hasattr(openalgo, "api")
    assert md.version("fyers-apiv3") == "3.2.0"
    assert md.version("openalgo") == "1.0.12"
    assert md.version("websocket-client") == "1.6.1"
    major = int(md.version("setuptools").split(".")[0])
    assert major < 82, "setuptools 82+ removed pkg_resources, which the Fyers SDK imports"


def test_apprise_is_in_the_range_requirements_give():
    """notify/ relies on Apprise 2's json:// payload (title, message, type) and Apprise.instantiate."""
    major, minor = (int(x) for x in md.version("apprise").split(".")[:2])
    assert (2, 2) <= (major, minor) < (3, 0)
