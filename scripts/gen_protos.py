"""Generate node/rpc/_pb from proto/ (checked in; a test checks for drift).

    python scripts/gen_protos.py [--out DIR]

``-Inode/rpc/_pb=proto`` makes the generated imports package-absolute
(``from node.rpc._pb.consortium.v1 import node_pb2``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def generate(out: Path) -> None:
    from grpc_tools import protoc  # dev dependency only

    protos = sorted((ROOT / "proto").rglob("*.proto"))
    staging = out / "node" / "rpc" / "_pb"
    staging.mkdir(parents=True, exist_ok=True)
    args = [
        "grpc_tools.protoc",
        f"-Inode/rpc/_pb={ROOT / 'proto'}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        *[f"node/rpc/_pb/{p.relative_to(ROOT / 'proto')}" for p in protos],
    ]
    # protoc resolves virtual paths against -I; run from a dir where the
    # virtual path prefix maps onto the real proto tree.
    if protoc.main(args) != 0:
        sys.exit("protoc failed")
    for d in [staging, *[p for p in staging.rglob("*") if p.is_dir()]]:
        (d / "__init__.py").touch()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT)
    args = parser.parse_args()
    generate(args.out)


if __name__ == "__main__":
    main()
