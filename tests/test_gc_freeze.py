"""The daemon freezes what it holds for its lifetime, so a full garbage collection walks
only what came after; rules reloaded after start are frozen too (a full collection that
walks 10,000 unfrozen rules stalls the loop for about half a second)."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import free_socket, write_config

RULES = 600

# in a process of its own: gc.freeze() is process-wide, and the test process must get its
# garbage back
CHILD = textwrap.dedent("""
    import asyncio, gc, json, sys
    from pathlib import Path
    from alertd.config import load
    from alertd.runtime.daemon import Daemon

    async def main():
        config, errors = load(sys.argv[1])
        assert not errors, errors
        daemon = Daemon(config, freeze_gc=True)
        await daemon.start()
        gc.collect()
        before = {"tracked": len(gc.get_objects()), "frozen": gc.get_freeze_count()}
        Path(sys.argv[2]).write_text(Path(sys.argv[3]).read_text())
        assert daemon.rules.reload(), daemon.rules.errors
        gc.collect()  # only what is not frozen: what the loop would walk
        after = {"tracked": len(gc.get_objects()), "frozen": gc.get_freeze_count(),
                 "rules": len(daemon.runner.ruleset)}
        await daemon.stop()
        print(json.dumps({"before": before, "after": after}))

    asyncio.run(main())
""")


def rules_file(n: int) -> str:
    rules = [{"id": f"door-{i}", "source": {"webhook": f"door-{i % 20}"},
              "when": f"event.site == 'store-{i}' and event.state == 'open'",
              "notify": {"to": ["oncall", "+15551230{:03d}".format(i % 1000)],
                         "message": f"Door {{{{ event.sensor }}}} at store {i} is {{{{ event.state }}}}."}}
             for i in range(n)]
    return json.dumps({"rules": rules})  # JSON is YAML


def test_rules_reloaded_after_start_are_frozen_and_the_old_ones_freed(tmp_path: Path):
    with free_socket() as sock:
        port = sock.getsockname()[1]
    config = write_config(tmp_path, port)
    (tmp_path / "rules").mkdir(exist_ok=True)
    (tmp_path / "doors.yaml").write_text(rules_file(RULES))  # written into rules/ after start
    done = subprocess.run([sys.executable, "-c", CHILD, str(config), str(tmp_path / "rules" / "doors.yaml"),
                           str(tmp_path / "doors.yaml")], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    before, after = figures["before"], figures["after"]
    assert after["rules"] == RULES
    # the new rules (tens of objects each) went to the frozen generation...
    assert after["frozen"] - before["frozen"] > 10 * RULES, figures
    # ...so what a full collection walks did not grow with them
    assert after["tracked"] - before["tracked"] < 2 * RULES, figures
