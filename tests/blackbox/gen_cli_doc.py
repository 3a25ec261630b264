"""gen_cli_doc.py - rewrite the `pai CMD --help` blocks of docs/cli.md from
the binary (python3 tests/blackbox/gen_cli_doc.py [PAI_BIN]).
test_cli.py fails when the two differ."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PAI = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("PAI_BIN", os.path.join(REPO, "build", "pai"))
COMMANDS = ["up", "down", "login", "logout", "submit", "jobs", "job", "logs", "ssh", "exec", "stop",
            "delete", "wait", "tag", "nodes", "vcs", "usage", "notify", "users", "groups", "token", "store", "template"]

path = os.path.join(REPO, "docs", "cli.md")
doc = open(path).read()
for c in COMMANDS:
    head = "### `pai %s`\n\n```\n" % c
    start = doc.index(head) + len(head)
    end = doc.index("```", start)
    doc = doc[:start] + subprocess.run([PAI, c, "--help"], capture_output=True, text=True).stdout + doc[end:]
open(path, "w").write(doc)
print("rewrote %s" % path)
