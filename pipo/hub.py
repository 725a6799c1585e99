"""The Hugging Face hub, where a run needs it: a local directory, a cached model, or a hub reached in seconds.

GPU nodes often have no internet, and the hub client retries a failed request for minutes before it
gives up. A run checks once, up front, and says what to download and where to put it.

    python -m pipo.hub Qwen/Qwen3-0.6B-Base      # exit 0: usable here; 1: the message
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from urllib.parse import urlparse

from pipo.config import ConfigError


def hub_unreachable(timeout: float = 5.0) -> str | None:
    """Why the hub cannot be reached from here, or None if it can (one connection, no retries)."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return "HF_HUB_OFFLINE is set"
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        socket.create_connection((endpoint.hostname, endpoint.port or 443), timeout=timeout).close()
    except OSError as err:
        return f"{endpoint.hostname}: {err}"
    return None


def _cached(model: str) -> bool:
    from huggingface_hub import try_to_load_from_cache

    return isinstance(try_to_load_from_cache(model, "config.json"), str)


def require_model(model: str) -> None:
    """A model (``model.hf_id``) that a run can load here: a local directory, a hub id in the local
    cache, or a hub id with the hub reachable; otherwise a ``ConfigError`` naming what to download."""
    if Path(model).expanduser().is_dir() or _cached(model):
        return
    why = hub_unreachable()
    if why is None:
        return
    local = f"/models/{model.rstrip('/').split('/')[-1]}"
    raise ConfigError(
        f"model {model!r} is a Hugging Face hub id, it is not in the local cache, and the hub cannot be "
        f"reached ({why}). Where there is internet: huggingface-cli download {model} --local-dir {local}; "
        f"copy {local} here and give the directory: model.hf_id={local} (reproduce/smoke_gpu.sh: MODEL={local})"
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv and argv[0] in ("-h", "--help") else 2
    try:
        require_model(argv[0])
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
