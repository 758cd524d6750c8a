"""Start a local mesh of N real node processes on 127.0.0.1.

    python scripts/mesh.py --n 8 --topology random --degree 3 [--dir DIR]

Generates members and keys, starts ``ccnode serve`` processes on ephemeral
ports, wires the topology, waits until every node answers, prints the
addresses, and keeps running until Ctrl-C or SIGTERM, then stops every
child (a child whose launcher is killed shuts itself down too).
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from node.core.trust import MemberKind
from node.mesh import TOPOLOGIES, Mesh


def specs(n: int) -> list[tuple[str, MemberKind]]:
    """A government first, then platforms, with an NGO every fourth node."""
    out = [("gov.example/ct", MemberKind.GOVERNMENT)]
    for i in range(1, n):
        kind = MemberKind.NGO if i % 4 == 3 else MemberKind.PLATFORM
        out.append((f"{kind.value}-{i}.example", kind))
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--n", type=int, default=3)
    p.add_argument("--topology", choices=TOPOLOGIES, default="line")
    p.add_argument("--degree", type=int, default=3, help="for --topology random")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--dir", type=Path, help="keep node directories here")
    p.add_argument("--ready-file", type=Path, help="write 'ready' here once all nodes answer")
    args = p.parse_args(argv)

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    root = args.dir or Path(tempfile.mkdtemp(prefix="ccnode-mesh-"))
    with Mesh.create(root, specs(args.n), args.topology, degree=args.degree, seed=args.seed) as m:
        m.start()
        for n in m.nodes:
            peers = ", ".join(p.id for p in n.config.peers)
            print(
                f"{n.config.id:28} {n.address:22} pid {n.process.pid if n.process else '-'}"
                f"  peers: {peers}",
                flush=True,
            )
        if args.ready_file:
            args.ready_file.write_text("ready\n")
        print(f"mesh of {args.n} ({args.topology}) running in {root}; Ctrl-C to stop", flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    print("mesh stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
