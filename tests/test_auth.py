"""Serving to a team: the token on every route, the Host allowlist, and a path prefix."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bench.server import free_port
from kboard.server.auth import choose_token, is_loopback, normalize_prefix
from kboard.server.views import plotly_js_version
from tests import test_browser

from .conftest import scalar_event, write_events

TOKEN = "s3cret-Token_42"
browser = test_browser.browser


@pytest.fixture()
def logdir(tmp_path: Path) -> Path:
    write_events(
        tmp_path / "run" / "events.out.tfevents.1",
        [scalar_event("loss", step, 1.0 / (step + 1)) for step in range(5)],
    )
    return tmp_path


def every_route(app, prefix: str = "") -> list[str]:
    """A request path for every GET rule of the app (placeholders filled in)."""
    fill = {"kind": "scalars", "version": plotly_js_version(), "filename": "js/app.js"}
    paths = []
    for rule in app.url_map.iter_rules():
        if "GET" not in (rule.methods or set()):
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", lambda m: fill[m.group(1)], rule.rule)
        paths.append(f"{prefix}{path}?run=run&tag=loss&step=0")
    assert any("/api/stream" in p for p in paths) and any("/api/export" in p for p in paths)
    assert any("/static/" in p for p in paths) and len(paths) > 15
    return sorted(paths)


@pytest.mark.parametrize("prefix", ["", "/kboard"])
def test_without_the_token_every_route_is_401(make_app, logdir: Path, prefix: str) -> None:
    app = make_app(logdir, token=TOKEN, path_prefix=prefix)
    client = app.test_client()
    for path in every_route(app, prefix):
        response = client.get(path)
        assert response.status_code == 401, path
        assert response.is_json and "token" in response.get_json()["error"], path
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="kboard"'
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert TOKEN not in response.get_data(as_text=True)


def test_a_wrong_token_is_401_in_every_place(make_app, logdir: Path) -> None:
    app = make_app(logdir, token=TOKEN)
    client = app.test_client()
    wrong = [TOKEN[:-1], TOKEN + "x", TOKEN.upper(), "", "é" + TOKEN]
    for bad in wrong:
        assert client.get("/api/runs", query_string={"token": bad}).status_code == 401
        headers = {"Authorization": f"Bearer {bad}"}
        assert client.get("/api/runs", headers=headers).status_code == 401
        client.set_cookie("kboard-token-80", bad)
        assert client.get("/api/stream").status_code == 401
        assert client.get("/api/export").status_code == 401
    # The right token under another scheme, or in another port's cookie, does not count.
    assert client.get("/api/runs", headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
    client.set_cookie("kboard-token-6006", TOKEN)
    assert client.get("/api/runs").status_code == 401


def test_the_token_works_by_query_cookie_and_bearer(make_app, logdir: Path) -> None:
    app = make_app(logdir, token=TOKEN, path_prefix="/kboard")
    client = app.test_client()
    # By query: the answer keeps it in an HttpOnly, SameSite=Strict cookie for the prefix.
    response = client.get("/kboard/", query_string={"token": TOKEN})
    assert response.status_code == 200
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"kboard-token-80={TOKEN};")
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/kboard/" in cookie
    # By cookie: the page's own requests carry nothing else.
    assert client.get("/kboard/api/runs").status_code == 200
    with client.get("/kboard/static/js/app.js") as response:
        assert response.status_code == 200
    # By bearer, with no cookie; no cookie is set for it.
    fresh = app.test_client()
    response = fresh.get("/kboard/api/runs", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200 and "Set-Cookie" not in response.headers
    assert [r["name"] for r in response.get_json()["runs"]] == ["run"]
    response = fresh.get("/kboard/api/export", headers={"Authorization": f"bearer {TOKEN}"})
    assert response.status_code == 200 and response.data.startswith(b"run,tag,step")


def test_a_browser_without_the_token_gets_a_form_not_the_page(make_app, logdir: Path) -> None:
    client = make_app(logdir, token=TOKEN).test_client()
    html = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    response = client.get("/", headers={"Accept": html})
    assert response.status_code == 401 and response.mimetype == "text/html"
    body = response.get_data(as_text=True)
    assert '<input name="token"' in body and "<script" not in body and "app.js" not in body


def test_loopback_needs_no_token_and_other_hosts_get_one() -> None:
    for host in ("127.0.0.1", "::1", "[::1]", "localhost", "127.0.0.2"):
        assert is_loopback(host) and choose_token(host, None, False) == (None, False)
    for host in ("0.0.0.0", "::", "192.168.1.5", "gpu7.lan"):
        assert not is_loopback(host)
        token, generated = choose_token(host, None, False)
        assert generated and token and len(token) >= 32
        assert choose_token(host, None, True) == (None, False)  # --no-auth
    assert choose_token("127.0.0.1", TOKEN, False) == (TOKEN, False)  # given: always required
    assert choose_token("0.0.0.0", None, False)[0] != choose_token("0.0.0.0", None, False)[0]
    with pytest.raises(ValueError):
        choose_token("0.0.0.0", "has space", False)


def test_path_prefixes_are_normalised() -> None:
    assert normalize_prefix("/kboard") == normalize_prefix("kboard/") == "/kboard"
    assert normalize_prefix("/a/b/") == "/a/b" and normalize_prefix("/") == ""
    for bad in ("/../x", "/a?b", "/a#b"):
        with pytest.raises(ValueError):
            normalize_prefix(bad)


def test_allowed_hosts_keep_the_host_check_on_all_interfaces(make_app, logdir: Path) -> None:
    anyone = make_app(logdir, host="0.0.0.0").test_client()
    assert anyone.get("/api/runs", headers={"Host": "evil.example:6006"}).status_code == 200
    app = make_app(logdir, host="0.0.0.0", allowed_hosts=["GPU7.lan", "10.0.0.5"])
    client = app.test_client()
    for host, status in [
        ("evil.example:6006", 403),
        ("gpu7.lan:6006", 200),
        ("10.0.0.5", 200),
        ("localhost:6006", 200),
        ("0.0.0.0:6006", 403),
    ]:
        assert client.get("/api/runs", headers={"Host": host}).status_code == status, host


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes, dict]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def test_serving_beyond_loopback_prints_a_token_once_and_requires_it(
    logdir: Path, kboard_server
) -> None:
    server = kboard_server("serve", "--logdir", logdir, "--host", "0.0.0.0", "--port", "0")
    match = re.search(r"serving at http://0\.0\.0\.0:\d+/\?token=([\w-]+) ", server.output())
    assert match, server.output()
    token = match.group(1)
    base = f"http://127.0.0.1:{server.port}"
    assert get(base + "/api/runs")[0] == 401
    assert get(base + "/api/stream")[0] == 401
    assert get(base + "/api/runs", {"Authorization": "Bearer nope"})[0] == 401
    status, body, _ = get(base + "/api/runs", {"Authorization": f"Bearer {token}"})
    assert status == 200 and json.loads(body)["runs"][0]["name"] == "run"
    status, _, headers = get(f"{base}/?token={token}")
    assert status == 200 and "HttpOnly" in headers["Set-Cookie"]
    server.stop()
    assert server.output().count(token) == 1  # printed once, never logged


def test_a_given_token_is_never_printed_and_no_auth_warns(logdir: Path, kboard_server) -> None:
    env = {**__import__("os").environ, "KBOARD_TOKEN": TOKEN}
    server = kboard_server("serve", "--logdir", logdir, "--port", "0", env=env)
    assert get(server.url + "/api/runs")[0] == 401  # a given token applies on loopback too
    assert get(server.url + f"/api/runs?token={TOKEN}")[0] == 200
    server.stop()
    assert TOKEN not in server.output()
    server = kboard_server(
        "serve", "--logdir", logdir, "--host", "0.0.0.0", "--port", "0", "--no-auth"
    )
    assert get(f"http://127.0.0.1:{server.port}/api/runs")[0] == 200
    assert "WARNING: --no-auth" in server.output() and "token=" not in server.output()


def test_loopback_serving_stays_token_free(logdir: Path, kboard_server) -> None:
    server = kboard_server("serve", "--logdir", logdir, "--port", str(free_port()))
    assert "token" not in server.output()
    assert get(server.url + "/api/runs")[0] == 200 and get(server.url + "/")[0] == 200


def test_a_real_server_under_a_path_prefix(logdir: Path, kboard_server) -> None:
    server = kboard_server("serve", "--logdir", logdir, "--port", "0", "--path-prefix", "/kboard")
    assert f":{server.port}/kboard/ " in server.output()
    status, body, _ = get(server.url + "/kboard/")
    page = body.decode()
    assert status == 200
    for script in re.findall(r'src="([^"]+)"', page):
        assert script.startswith("/kboard/"), script
        assert get(server.url + script)[0] == 200, script
    status, body, _ = get(server.url + "/kboard/api/scalars?tag=loss")
    assert status == 200 and json.loads(body)["series"][0]["steps"] == [0, 1, 2, 3, 4]
    assert get(server.url + "/api/runs")[0] == 404
    assert get(server.url + "/")[0] == 404
    # /kboard (no slash) leads to /kboard/, where the page's relative URLs resolve.
    with urllib.request.urlopen(server.url + "/kboard", timeout=10) as response:
        assert response.url.endswith("/kboard/") and response.status == 200


@pytest.mark.browser
def test_the_page_under_a_prefix_with_a_token_draws_and_stays_live(
    browser, logdir: Path, kboard_server
) -> None:
    server = kboard_server(
        "serve", "--logdir", logdir, "--port", "0", "--path-prefix", "/team/kboard",
        "--token", TOKEN, "--reload-interval", "0.5",
    )  # fmt: skip
    context = browser.new_context()
    try:
        page = context.new_page()
        failed: list[str] = []
        page.on("requestfailed", lambda r: failed.append(r.url))
        page.on("response", lambda r: r.status >= 400 and failed.append(f"{r.status} {r.url}"))
        page.goto(f"{server.url}/team/kboard/?token={TOKEN}")
        page.wait_for_function(
            "() => [...document.querySelectorAll('.kb-card .js-plotly-plot')].some(p => p.data)",
            timeout=15_000,
        )
        page.locator('.kb-live[data-state="live"]').wait_for()
        assert TOKEN not in page.url and page.url.startswith(f"{server.url}/team/kboard/")
        write_events(
            logdir / "run" / "events.out.tfevents.1", [scalar_event("loss", 5, 0.1)], append=True
        )
        page.wait_for_function(
            """() => { const p = document.querySelector('.kb-card .js-plotly-plot');
                       return p && p.data && p.data.some(t => Array.from(t.x).includes(5)); }""",
            timeout=10_000,
        )
        assert failed == []
        cookies = context.cookies()
        assert [(c["httpOnly"], c["sameSite"], c["path"]) for c in cookies] == [
            (True, "Strict", "/team/kboard/")
        ]
    finally:
        context.close()
