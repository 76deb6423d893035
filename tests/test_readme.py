"""Every command the README shows runs as written, in order, in a sandbox: docs and defaults cannot drift apart.

The README's ``bash`` blocks are read as one scenario. A user's paths exist in
the sandbox (``song.mid``, ``midi_folder/``, ``~/midi/adl`` hold real MIDI
files, ``stores/mine`` and ``STORE`` are token stores, ``best_model_lm.pt`` is a
notebook checkpoint, ``~/models`` holds SkyTNT's small test model and LoRA;
``~`` is the sandbox's home), ``midilm`` is on the PATH as in an activated
``.venv`` (and ``.venv`` is the test's environment), and the bundled corpus is
prepared once per machine in the cache the tests share. Hub ids resolve
offline (``HF_HUB_OFFLINE=1``) in a Hugging Face cache the sandbox builds, where
SkyTNT's small test model stands in for the published ones. Commands that run
until stopped (training, the web app) are stopped the way a user stops them:
Ctrl-C once they have shown they work. A block the sandbox cannot run (several
GPUs or machines; the quickstart, which installs from the network, and the test
suite this test belongs to) is preceded by ``<!-- readme-test: skip, REASON -->``;
a test checks that each skip gives one.
"""

from __future__ import annotations

import codecs
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from .hub.conftest import SKYTNT, hub_cache

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
GOLDEN = Path(__file__).parent / "data" / "golden"
BLOCK = re.compile(r"(?:<!--\s*readme-test:(?P<directive>[^\n]*?)-->[ \t]*\n)?```bash\n(?P<body>.*?)```", re.S)
DIRECTIVE = re.compile(r"<!--\s*readme-test:")
SKIP = re.compile(r"\s*skip,\s*(?P<reason>\S.*?)\s*")
RUNS_UNTIL_STOPPED = re.compile(r"^(\S*midilm|torchrun .* -m midilm) (app|train)\b")
TRAINING_STARTED = re.compile(r"^train:", re.M)
TRAINING_SAVED = re.compile(r"^interrupted at step \d+; continue with: midilm train --resume", re.M)
SECONDS_OF_TRAINING_BEFORE_CTRL_C = 10
SECONDS_TO_START = 300
SECONDS_PER_COMMAND = 600
APP_OPEN = re.compile(r"^midilm app: open (?P<url>http\S+)", re.M)


@dataclass
class Block:
    commands: list[str]
    directive: str | None
    """The text of a ``<!-- readme-test: ... -->`` line right before the block, if any."""

    @property
    def skip_reason(self) -> str:
        match = SKIP.fullmatch(self.directive or "")
        return match.group("reason") if match else ""


def readme_blocks(text: str) -> list[Block]:
    """The README's bash blocks, each a list of commands (continuation lines joined, comments dropped)."""
    blocks = []
    for match in BLOCK.finditer(text):
        joined = match.group("body").replace("\\\n", "")  # the shell drops a backslash-newline
        commands = [_without_comment(line) for line in joined.splitlines()]
        blocks.append(Block([c for c in commands if c], match.group("directive")))
    return blocks


def _without_comment(line: str) -> str:
    """The line as the shell gets it, up to a ``#`` that starts a word outside quotes."""
    quote = ""
    for i, char in enumerate(line):
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i].strip()
    return line.strip()


def readme_problems(text: str) -> list[str]:
    """What keeps the README's blocks from being a scenario the test can run: each block runs or says why not."""
    blocks = readme_blocks(text)
    problems = []
    if len(blocks) != text.count("```bash"):
        problems.append(f"{text.count('```bash')} bash blocks, {len(blocks)} read")
    if len(DIRECTIVE.findall(text)) != sum(block.directive is not None for block in blocks):
        problems.append("a readme-test directive that is not the line right before a bash block")
    for block in blocks:
        if not block.commands:
            problems.append("a bash block with no command")
        if block.directive is not None and not block.skip_reason:
            problems.append(f"<!-- readme-test:{block.directive}-->: write <!-- readme-test: skip, REASON -->")
    return problems


def test_every_block_is_read_and_every_skip_says_why() -> None:
    text = README.read_text()
    assert readme_problems(text) == []
    blocks = readme_blocks(text)
    assert sum(not block.skip_reason for block in blocks) >= 8, "most blocks run"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("<!-- readme-test: skip -->\n```bash\nmidilm x\n```\n", "write <!-- readme-test: skip, REASON -->"),
        ("<!-- readme-test: skip,  -->\n```bash\nmidilm x\n```\n", "write <!-- readme-test: skip, REASON -->"),
        ("<!-- readme-test: run -->\n```bash\nmidilm x\n```\n", "write <!-- readme-test: skip, REASON -->"),
        ("<!-- readme-test: skip, GPUs -->\n\nmore text\n```bash\nmidilm x\n```\n", "not the line right before a bash block"),
        ("```bash\n# only a comment\n```\n", "a bash block with no command"),
    ],
)
def test_a_skip_without_reason_or_out_of_place_is_caught(text: str, problem: str) -> None:
    assert any(problem in found for found in readme_problems(text))


def test_a_skip_with_its_reason_runs_nothing_and_a_plain_block_runs() -> None:
    text = (
        "<!-- readme-test: skip, needs 4 GPUs -->\n```bash\ntorchrun a \\\n  b  # c\n```\n"
        '```bash\n# a comment\nmidilm info ~/x.mid  # d\nmidilm generate --instruments "a #1"#2 # e\n```\n'
    )
    skipped, ran = readme_blocks(text)
    assert (skipped.skip_reason, skipped.commands) == ("needs 4 GPUs", ["torchrun a   b"])
    assert (ran.skip_reason, ran.commands) == ("", ["midilm info ~/x.mid", 'midilm generate --instruments "a #1"#2'])
    assert readme_problems(text) == []


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A working folder and home with the files and models the README's commands name."""
    import torch

    from midilm.data import PrepareOptions, prepare
    from midilm.model import build_model, preset_config

    root = tmp_path_factory.mktemp("readme")
    home = root / "home"
    (root / ".venv").symlink_to(sys.prefix, target_is_directory=True)
    chorales = sorted(GOLDEN.glob("bach_*.mid"))
    shutil.copy(chorales[0], root / "song.mid")
    for folder in (root / "midi_folder" / "a", home / "midi" / "adl" / "baroque", home / "midi" / "lakh"):
        folder.mkdir(parents=True)
    for i, path in enumerate(sorted(GOLDEN.glob("*.mid"))):  # edge_* are bad or odd files, which prepare reports
        if not path.name.startswith("edge_"):
            shutil.copy(path, root / "midi_folder" / ("a" if i % 2 else "") / path.name)
        shutil.copy(path, home / "midi" / "adl" / ("baroque" if i % 3 else "") / path.name)
        shutil.copy(path, home / "midi" / "lakh" / path.name)
    prepare(chorales, root / "stores" / "mine", PrepareOptions(workers=1), progress=False)
    (root / "STORE").symlink_to("stores/mine", target_is_directory=True)
    for share in (1, 2, 3):  # the other machines' shares of `prepare ~/midi/lakh --shard i/4`
        prepare([home / "midi" / "lakh"], root / "shards" / str(share), PrepareOptions(workers=1, shard=f"{share}/4"), progress=False)
    notebook = build_model(preset_config("seed", "tiny"))  # saved as the design notebook saves best_model_lm.pt
    torch.save({"model_state_dict": notebook.state_dict(), "vocab_size": notebook.config.vocab_size}, root / "best_model_lm.pt")
    shutil.copytree(SKYTNT / "model", home / "models" / "tv2o-medium")
    shutil.copytree(SKYTNT / "lora", home / "models" / "a-skytnt-lora")
    hub_cache(home / ".cache" / "huggingface" / "hub", "skytnt/midi-model-tv2o-medium", SKYTNT / "model")
    return root


def environment(sandbox: Path, midilm_home: Path) -> dict[str, str]:
    """The user's shell: an activated ``.venv``, the sandbox's home, the caches the README names, offline."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("HF_")}
    return {
        **env,
        "HOME": str(sandbox / "home"),
        "MIDILM_HOME": str(midilm_home),
        "HF_HOME": str(sandbox / "home" / ".cache" / "huggingface"),
        "HF_HUB_OFFLINE": "1",
        "PATH": f"{sandbox / '.venv' / 'bin'}{os.pathsep}{env['PATH']}",
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
    }


class Output:
    """A process's stdout and stderr, read as they come."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.text = ""
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        for chunk in iter(lambda: os.read(process.stdout.fileno(), 4096), b""):
            self.text += decoder.decode(chunk).replace("\r", "\n")

    def finished(self) -> str:
        self._thread.join()
        return self.text


def run_command(command: str, cwd: Path, env: dict[str, str]) -> float:
    """Run one README command as a user does and return its seconds; one that runs until stopped
    (training, the app) gets Ctrl-C once it has shown that it works."""
    start = time.monotonic()
    process = subprocess.Popen(  # the shell expands ~ and hands over, so that Ctrl-C reaches the command alone, as in a terminal
        f"exec {command}", shell=True, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    output = Output(process)
    interrupted = bool(RUNS_UNTIL_STOPPED.match(command)) and _stop_when_working(command, process, output)
    try:
        process.wait(timeout=SECONDS_PER_COMMAND)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        pytest.fail(f"{command!r} did not finish in {SECONDS_PER_COMMAND} s:\n{output.finished()[-3000:]}")
    text = output.finished()
    assert process.returncode in _exits(command, interrupted, text), f"{command!r} exited {process.returncode}:\n{text[-3000:]}"
    if interrupted and " train" in command:
        assert TRAINING_SAVED.search(text), f"{command!r} saved nothing on Ctrl-C:\n{text[-3000:]}"
    return time.monotonic() - start


def _exits(command: str, interrupted: bool, text: str) -> tuple[int, ...]:
    """Exit statuses of a command that worked: 130 after Ctrl-C, and torchrun's own 1 after it
    (torchrun passes the signal on to its workers, then raises SignalException itself)."""
    if not interrupted:
        return (0,)
    if command.startswith("torchrun") and "SignalException" in text:
        return (0, 1, 130)
    return (0, 130)


def _stop_when_working(command: str, process: subprocess.Popen, output: Output) -> bool:
    """Press Ctrl-C once the app's page answers, or a while after training starts; False if it ended first."""
    app = " app" in command
    deadline = time.monotonic() + SECONDS_TO_START
    while process.poll() is None:
        opened = APP_OPEN.search(output.text)
        if app and opened and _page_answers(opened.group("url")):
            break
        if not app and TRAINING_STARTED.search(output.text):
            time.sleep(SECONDS_OF_TRAINING_BEFORE_CTRL_C)
            break
        if time.monotonic() > deadline:
            os.killpg(process.pid, signal.SIGKILL)
            pytest.fail(f"{command!r} did not start working in {SECONDS_TO_START} s:\n{output.finished()[-3000:]}")
        time.sleep(1)
    if process.poll() is not None:
        return False
    os.killpg(process.pid, signal.SIGINT)
    return True


def _page_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_every_readme_command_runs_as_written(sandbox: Path, bundled_corpus_home: Path) -> None:
    env = environment(sandbox, bundled_corpus_home)
    commands = [command for block in readme_blocks(README.read_text()) if not block.skip_reason for command in block.commands]
    seconds = []
    for command in commands:
        print(f"$ {command}", flush=True)
        seconds.append(run_command(command, sandbox, env))
    print("\n".join(f"{s:6.1f} s  {command}" for command, s in zip(commands, seconds, strict=True)))
    assert len(commands) >= 30
    assert (sandbox / "runs" / "gpt" / "last").is_dir() and (sandbox / "exports" / "default" / "model.json").is_file()
