"""The embedded default's span file stays within its cap: rotated, oldest dropped."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from shared.telemetry import JsonLinesSpanExporter


def test_the_span_file_is_rotated_at_its_cap_and_keeps_a_fixed_number_of_backups(tmp_path):
    path = tmp_path / "spans.jsonl"
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(
        JsonLinesSpanExporter(path, max_bytes=4_000, backups=2)))
    tracer = provider.get_tracer("test")
    for n in range(200):
        with tracer.start_as_current_span(f"span {n}", attributes={"n": n}):
            pass
    provider.shutdown()
    files = sorted(p.name for p in tmp_path.glob("spans.jsonl*") if not p.name.endswith(".lock"))
    assert files == ["spans.jsonl", "spans.jsonl.1", "spans.jsonl.2"]
    assert all((tmp_path / f).stat().st_size <= 4_000 for f in files)
    assert '"span 199"' in path.read_text()  # the newest spans are in the live file
    lines = (tmp_path / "spans.jsonl.2").read_text().splitlines()
    assert lines and all(line.startswith("{") for line in lines)  # whole lines only
