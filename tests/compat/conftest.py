"""Fixtures of the black-box compatibility suite.

- `server`: one `lookout serve` shared by the whole session (tests use unique group names);
- `logs`: a boto3 CloudWatch Logs client for it (no retries, botocore validation on);
- `raw_logs`: the same without botocore's client-side parameter validation;
- `new_server`: a factory of private servers (crash/restart tests, other account ids), stopped at the end.
"""

from __future__ import annotations

import pytest

from lookout_harness import LookoutServer, ServerStartError, make_server, unique

_shared: list[LookoutServer] = []


@pytest.fixture(scope="session")
def server(tmp_path_factory) -> LookoutServer:
    srv = make_server(tmp_path_factory.mktemp("shared"))
    try:
        srv.start()
    except ServerStartError as e:
        pytest.fail(str(e), pytrace=False)
    _shared.append(srv)
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def _shared_server_still_alive(request):
    yield
    for srv in _shared:
        if srv.proc is not None and not srv.alive():
            out = srv.output()
            _shared.remove(srv)
            pytest.fail(f"the shared lookout server died during {request.node.nodeid}; output:\n{out}",
                        pytrace=False)


@pytest.fixture(scope="session")
def logs(server):
    return server.logs()


@pytest.fixture(scope="session")
def raw_logs(server):
    """A client whose parameters botocore does not validate: the server must."""
    return server.logs(validate=False)


@pytest.fixture
def group(logs) -> str:
    """A fresh, empty log group on the shared server."""
    name = unique("/compat/g")
    logs.create_log_group(logGroupName=name)
    return name


@pytest.fixture
def new_server(tmp_path):
    """Factory: new_server(account_id=..., region=...) starts a private server; all are stopped at
    the end of the test."""
    started: list[LookoutServer] = []

    def factory(**kw) -> LookoutServer:
        srv = make_server(tmp_path, **kw)
        started.append(srv)
        try:
            srv.start()
        except ServerStartError as e:
            pytest.fail(str(e), pytrace=False)
        return srv

    yield factory
    for srv in started:
        srv.stop()
