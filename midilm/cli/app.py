"""``midilm app``: the web app, on this machine only unless told otherwise."""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

HELP = """Start the web app: choose a model, set controls or upload a prompt MIDI, generate, listen to each sample,
see its piano roll, download MIDI and WAV, continue from a sample.

It listens on 127.0.0.1, so only this machine can open it. --host 0.0.0.0 opens it to the network and --share
to the internet through a Gradio tunnel; the page has no login, so anyone who reaches it can generate.

examples:
  midilm app                                   (the shipped model and the runs under runs/)
  midilm app --checkpoint runs/gpt --port 8000
  midilm app --host 0.0.0.0                    (reachable from other machines)
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--checkpoint",
        metavar="MODEL",
        help="model chosen when the page opens (run folder, LoRA run, weights file, exported or SkyTNT folder, or hf:OWNER/NAME)",
    )
    parser.add_argument("--lora-adapter", metavar="DIR", help="LoRA adapter chosen when the page opens (folded into the chosen model)")
    parser.add_argument("--runs", default="runs", metavar="DIR", help="folder whose runs the page offers (default: runs)")
    parser.add_argument("--out", metavar="DIR", help="folder for generated samples (default: a new temporary folder)")
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only; 0.0.0.0: every network)"
    )
    parser.add_argument("--port", type=int, default=7860, help="port to listen on (default: 7860)")
    parser.add_argument("--share", action="store_true", help="also publish a temporary public link through Gradio's tunnel")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")


def run(args: argparse.Namespace) -> int:
    from midilm.hub.sources import resolve

    for source in (args.checkpoint, args.lora_adapter):
        if source:
            resolve(source)  # a wrong path fails now, not at the first Generate (a hub id is downloaded now)
    from midilm.app.ui import AppSettings, build_app, launch

    out_dir = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="midilm-app-"))
    settings = AppSettings(
        out_dir=out_dir.resolve(), runs_dir=Path(args.runs), checkpoint=args.checkpoint, adapter=args.lora_adapter, device=args.device
    )
    app = build_app(settings)
    url = launch(app, settings, host=args.host, port=args.port, share=args.share)
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"note: listening on {args.host}: every machine that can reach this one can use the app (there is no login)")
    print(f"midilm app: open {url} (samples go to {out_dir}; Ctrl-C stops)", flush=True)
    app.block_thread()  # until Ctrl-C, which closes the server
    return 0
