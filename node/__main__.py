from node.cli import run

run()
