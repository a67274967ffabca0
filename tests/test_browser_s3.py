"""The page over a logdir in a bucket (moto's S3 server on loopback): points appear live."""

from __future__ import annotations

import pytest

from kboard import SummaryWriter
from tests.test_browser import CHART_DATA, browser, open_page  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser


def test_each_flushed_point_appears_on_the_open_page(open_page, s3_endpoint: str) -> None:  # noqa: F811
    import fsspec

    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    if not fs.exists("kboard-browser"):
        fs.mkdir("kboard-browser")
    url = "s3://kboard-browser/logs"
    writer = SummaryWriter(f"{url}/worker0", flush_secs=3600)
    writer.add_scalar("loss", 1.0, 0)
    writer.flush()
    watched = open_page(url)
    page = watched.page
    watched.wait_for_charts(1)
    assert page.locator("#kb-logdir").text_content() == url
    for step in range(1, 6):
        writer.add_scalar("loss", 1.0 / (step + 1), step)
        writer.flush()
        page.wait_for_function(
            f"() => ({CHART_DATA})('loss').some(t => t.kind === 'raw' && t.x.includes({step}))",
            timeout=10_000,
        )
    raw = next(t for t in watched.chart("loss") if t["kind"] == "raw")
    assert raw["x"] == list(range(6)) and raw["y"][-1] == pytest.approx(1 / 6)
    # A second worker writing to the same bucket shows up as a new run.
    with SummaryWriter(f"{url}/worker1") as other:
        other.add_scalar("loss", 2.0, 0)
    page.wait_for_function(
        f"() => ({CHART_DATA})('loss').some(t => t.run === 'worker1')", timeout=10_000
    )
    writer.close()
    watched.assert_clean()
