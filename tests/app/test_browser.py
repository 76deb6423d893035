"""The app in a real browser: ``midilm app`` in a subprocess, driven by Debian's headless Chromium.

Playwright drives the system browser (``executable_path``); no browser is ever
downloaded. Without /usr/bin/chromium the test is skipped, unless
MIDILM_REQUIRE_BROWSER=1 (set by CI), where it fails.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from midilm.app.forms import MAX_PROMPT_BYTES

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START_SECONDS = 120
GENERATE_MS = 120_000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class AppServer:
    """``midilm app`` in a subprocess, its output collected by a thread."""

    def __init__(self, args: list[str], gradio_cache: Path) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "GRADIO_ANALYTICS_ENABLED": "False", "GRADIO_TEMP_DIR": str(gradio_cache)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "midilm", "app", *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        self.lines: list[str] = []
        threading.Thread(target=lambda: self.lines.extend(self.process.stdout), daemon=True).start()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for_url(self) -> str:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline and self.process.poll() is None:
            found = re.search(r"midilm app: open (http://\S+)", self.output)
            if found:
                return found.group(1)
            time.sleep(0.2)
        raise AssertionError(f"midilm app printed no URL within {START_SECONDS} s:\n{self.output}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def unavailable(reason: str) -> None:
    if os.environ.get("MIDILM_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason}, and MIDILM_REQUIRE_BROWSER=1")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("playwright is not installed (pip install -e '.[dev]')")

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def server(runs_dir: Path, tiny_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppServer]:
    out = tmp_path_factory.mktemp("app-samples")
    args = ["--checkpoint", str(tiny_run), "--runs", str(runs_dir), "--out", str(out), "--port", str(free_port()), "--device", "cpu"]
    app = AppServer(args, gradio_cache=tmp_path_factory.mktemp("gradio-cache"))  # not the shared /tmp/gradio
    yield app
    app.stop()
    assert "Traceback" not in app.output, app.output


@pytest.fixture
def page(browser, server: AppServer):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(server.wait_for_url())
    page.get_by_role("button", name="Generate").wait_for()
    yield page
    assert "Traceback" not in page.content()
    page.close()


def set_number(page, label: str, value: int) -> None:
    field = page.get_by_label(label, exact=True)
    field.fill(str(value))
    field.press("Enter")


def test_upload_a_prompt_generate_listen_download_and_continue(page, prompt_path: Path) -> None:
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Prompt MIDI").click()
    page.locator("input[type=file]").first.set_input_files(str(prompt_path))
    expect(page.locator("#prompt-info")).to_contain_text("bach_bwv1.6.mid: 499 events")
    set_number(page, "Keep the first N events", 30)
    set_number(page, "number input for Events to generate", 16)
    set_number(page, "number input for At least", 16)
    set_number(page, "number input for At most (seconds)", 0)  # the tiny model's 16 events may span minutes
    page.get_by_role("button", name="Generate").click()

    expect(page.locator("audio[src]")).to_have_count(1, timeout=GENERATE_MS)
    expect(page.locator("#status")).to_contain_text("1 sample(s), 16 events in")
    expect(page.locator("#status")).not_to_contain_text("seed 0)")  # an empty seed draws a fresh one
    midi_link = page.locator("a[download='sample-00.mid']").first
    wav_link = page.locator("a[download='sample-00.wav']").first
    assert page.request.get(midi_link.get_attribute("href")).body()[:4] == b"MThd"
    assert page.request.get(wav_link.get_attribute("href")).body()[:4] == b"RIFF"
    expect(page.locator("img[src*='sample-00.png']")).to_be_visible()  # the piano roll

    page.get_by_role("button", name="Continue from this sample").first.click()
    expect(page.locator("#prompt-info")).to_contain_text("sample-00.mid: ")


@pytest.mark.parametrize(
    ("name", "size_bytes", "message"),
    [
        ("notes.mid", 0, "Rejected. notes.mid: not a MIDI file"),  # midilm's check, under the upload
        ("notes.txt", 0, "Invalid file type: notes.txt"),  # Gradio's checks, as a notice
        ("big.mid", MAX_PROMPT_BYTES + 1, 'exceed the maximum allowed size of 5.0 Mb: "big.mid"'),
    ],
)
def test_uploads_that_are_not_midi_or_too_large_are_rejected_in_the_page(
    page, tmp_path: Path, name: str, size_bytes: int, message: str
) -> None:
    from playwright.sync_api import expect

    upload = tmp_path / name
    upload.write_bytes(b"these are my notes, not a MIDI file".ljust(size_bytes, b" "))
    page.get_by_role("tab", name="Prompt MIDI").click()
    page.locator("input[type=file]").first.set_input_files(str(upload))
    expect(page.get_by_text(message)).to_be_visible()


def test_generate_after_a_rejected_upload_explains_itself(page, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    upload = tmp_path / "notes.mid"
    upload.write_bytes(b"these are my notes, not a MIDI file")
    page.get_by_role("tab", name="Prompt MIDI").click()
    page.locator("input[type=file]").first.set_input_files(str(upload))
    expect(page.get_by_text("Rejected. notes.mid: not a MIDI file")).to_be_visible()
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("#status")).to_contain_text("Nothing generated. Upload a prompt MIDI file first")
    expect(page.get_by_text("Error", exact=True)).to_have_count(0)  # no bare red pill; the server printed no traceback either


def test_a_piece_grows_in_its_piano_roll_while_sampling_and_stop_keeps_it(page) -> None:
    from playwright.sync_api import expect

    set_number(page, "number input for Samples", 8)  # 8 x 2048 events: far more than the seconds before Stop
    set_number(page, "number input for Events to generate", 2048)
    set_number(page, "number input for At least", 2048)
    set_number(page, "number input for At most (seconds)", 0)
    page.get_by_role("button", name="Generate").click()
    expect(page.locator("img[src*='.png']").first).to_be_visible(timeout=GENERATE_MS)  # a live roll, drawn while sampling
    expect(page.locator("#status")).not_to_contain_text("sample(s)")  # sampling goes on
    page.get_by_role("button", name="Stop").click()
    expect(page.locator("#status")).to_contain_text("8 sample(s)", timeout=GENERATE_MS)
    expect(page.get_by_text("stopped with the Stop button").first).to_be_visible()
    expect(page.locator("audio[src]")).to_have_count(8, timeout=GENERATE_MS)  # the WAVs are rendered after sampling


def test_accompany_a_chorale_voice_in_its_tab(page, prompt_path: Path) -> None:
    from playwright.sync_api import expect

    page.get_by_role("tab", name="Accompany and rewrite").click()
    page.locator("#song-file input[type=file]").set_input_files(str(prompt_path))
    expect(page.locator("#song-info")).to_contain_text(prompt_path.name)
    page.get_by_role("checkbox", name=re.compile("^track 1: ")).check()  # keep the soprano; piano and bass are added by default
    page.get_by_role("button", name="Write", exact=True).click()  # two pieces by default
    expect(page.locator("#around-status")).not_to_contain_text("Nothing written")

    expect(page.locator("#around-status")).to_contain_text("2 sample(s)", timeout=GENERATE_MS)
    expect(page.locator("audio[src]")).to_have_count(2, timeout=GENERATE_MS)
    midi_link = page.locator("a[download$='.mid']").first
    assert page.request.get(midi_link.get_attribute("href")).body()[:4] == b"MThd"
    expect(page.locator("img[src*='.png']").first).to_be_visible()  # kept and new notes in the piano roll
