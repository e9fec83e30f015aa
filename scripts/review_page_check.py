#!/usr/bin/env python3
"""Drives the review page that `refineseg annotate` writes in a real headless Chromium.

    python3 scripts/review_page_check.py ANNOTATE_OUT [--screenshot FILE] [--chromium PATH]

Talks the Chrome DevTools Protocol over --remote-debugging-pipe (file descriptors 3 and 4,
messages separated by NUL bytes), so it needs nothing beyond Python's standard library.
It loads OUT/review.html from disk and checks, failing with one line on the first mismatch:
  - the page fetches nothing but files under OUT (no network, no external scripts or fonts);
  - its rows are in review.csv's order (most uncertain first) and every thumbnail loads;
  - a real mouse click on "Needs correction" of the first row and the keys j, a (next row,
    accept) mark those rows; the decision filter then shows just the row that needs correction;
  - End selects the last image while the list keeps only the rows in view in the page;
  - a click on the export button downloads review-decisions.csv holding those decisions.
With --screenshot it saves a PNG of the page (after the decisions). Exit status 0 on success,
1 on a failed check (or a browser that does not answer), 2 when no Chromium is installed.
"""
import argparse
import csv
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time


class Browser:
    def __init__(self, binary, profile):
        r_ours, w_theirs = os.pipe()      # Chromium writes to fd 4, we read r_ours
        r_theirs, w_ours = os.pipe()      # we write w_ours, Chromium reads fd 3

        def child_fds():
            # Place the pipe ends at 3 and 4 (dup2 leaves the copies inheritable); the
            # originals stay close-on-exec, as does every other descriptor of ours.
            a, b = os.dup(r_theirs), os.dup(w_theirs)
            os.dup2(a, 3)
            os.dup2(b, 4)

        self.proc = subprocess.Popen(
            [binary, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions",
             "--user-data-dir=" + profile, "--window-size=1400,900", "about:blank"],
            preexec_fn=child_fds, close_fds=False,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        os.close(r_theirs)
        os.close(w_theirs)
        self.reader = os.fdopen(r_ours, "rb", buffering=0)
        self.writer = os.fdopen(w_ours, "wb", buffering=0)
        self.buffer = b""
        self.next_id = 0
        self.events = []
        self.session = None

    def _read_message(self, deadline):
        while b"\0" not in self.buffer:
            if time.time() > deadline:
                raise TimeoutError("no answer from Chromium")
            chunk = self.reader.read(65536)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe")
            self.buffer += chunk
        raw, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method, params=None, session=True, timeout=30):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session and self.session:
            message["sessionId"] = self.session
        self.writer.write(json.dumps(message).encode() + b"\0")
        deadline = time.time() + timeout
        while True:
            m = self._read_message(deadline)
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, method, timeout=30, predicate=lambda p: True):
        deadline = time.time() + timeout
        while True:
            for i, m in enumerate(self.events):
                if m.get("method") == method and predicate(m.get("params", {})):
                    return self.events.pop(i)["params"]
            self.events.append(self._read_message(deadline))

    def evaluate(self, expression):
        r = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True})
        if "exceptionDetails" in r:
            raise RuntimeError(f"script error in {expression!r}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def click(self, selector):
        box = self.evaluate(f"""(() => {{ const el = document.querySelector({json.dumps(selector)});
            if (!el) return null; el.scrollIntoView({{block: 'nearest'}}); const r = el.getBoundingClientRect();
            return [r.left + r.width / 2, r.top + r.height / 2]; }})()""")
        if box is None:
            raise Check(f"nothing to click: {selector}")
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call("Input.dispatchMouseEvent", {"type": kind, "x": box[0], "y": box[1], "button": "left", "clickCount": 1})

    def key(self, char):
        code = {"ArrowDown": 40, "End": 35, "Home": 36}.get(char) or ord(char.upper())
        base = {"key": char, "windowsVirtualKeyCode": code}
        self.call("Input.dispatchKeyEvent", {"type": "keyDown", **base, **({"text": char} if len(char) == 1 else {})})
        self.call("Input.dispatchKeyEvent", {"type": "keyUp", **base})

    def close(self):
        try:
            self.call("Browser.close", session=False, timeout=5)
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Check(Exception):
    pass


def expect(condition, message):
    if not condition:
        raise Check(message)


def run(out, screenshot, binary):
    out = os.path.abspath(out)
    with open(os.path.join(out, "review.csv"), newline="") as f:
        ranked = [row["name"] for row in csv.DictReader(f)]
    expect(len(ranked) >= 2, f"{out}/review.csv: the check needs at least 2 annotated images")
    with tempfile.TemporaryDirectory(prefix="review-check-") as tmp:
        downloads = os.path.join(tmp, "downloads")
        os.makedirs(downloads)
        b = Browser(binary, os.path.join(tmp, "profile"))
        try:
            targets = b.call("Target.getTargets", session=False)["targetInfos"]
            page = next(t for t in targets if t["type"] == "page")
            b.session = b.call("Target.attachToTarget", {"targetId": page["targetId"], "flatten": True}, session=False)["sessionId"]
            b.call("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": downloads, "eventsEnabled": True}, session=False)
            b.call("Page.enable")
            b.call("Network.enable")
            b.call("Runtime.enable")
            b.call("Page.navigate", {"url": "file://" + out + "/review.html"})
            b.wait_event("Page.loadEventFired")
            # Give lazy thumbnails a moment, then require every visible one to have loaded.
            deadline = time.time() + 10
            while time.time() < deadline and not b.evaluate("[...document.querySelectorAll('.row img')].every(i => i.complete)"):
                time.sleep(0.1)

            names = b.evaluate("[...document.querySelectorAll('#spacer .row')].map(r => r.dataset.name)")
            expect(names == ranked[:len(names)] and len(names) == min(len(ranked), len(names)) and names,
                   f"rows in the page {names[:5]} are not review.csv's order {ranked[:5]}")
            broken = b.evaluate("[...document.querySelectorAll('.row img')].filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
            expect(not broken, f"thumbnails that did not load: {broken[:3]}")
            errors = [e for e in b.events if e.get("method") == "Runtime.exceptionThrown"]
            expect(not errors, f"script error in the page: {errors[:1]}")

            # A real click on the first row's "Needs correction", then j (next row) and a (accept).
            b.click('#spacer .row[data-p="0"] button[data-d="needs_correction"]')
            b.key("j")
            b.key("a")
            marked = b.evaluate("[...document.querySelectorAll('#spacer .row')].slice(0, 3).map(r => r.className)")
            expect("needs_correction" in marked[0] and "accept" in marked[1] and "accept" not in marked[2]
                   and "needs_correction" not in marked[2], f"rows after click and keys: {marked}")
            expect("sel" in marked[1], f"keyboard selection did not move to the second row: {marked}")
            if screenshot:
                shot = b.call("Page.captureScreenshot", {"format": "png"})["data"]
                import base64
                with open(screenshot, "wb") as f:
                    f.write(base64.b64decode(shot))

            # The decision filter shows only the row that needs correction; back to all.
            b.evaluate("(() => { const s = document.getElementById('decisionFilter'); s.value = 'needs_correction';"
                       " s.dispatchEvent(new Event('input')); })()")
            filtered = b.evaluate("[...document.querySelectorAll('#spacer .row')].map(r => r.dataset.name)")
            expect(filtered == [ranked[0]], f"decision filter 'needs correction' shows {filtered}, expected {[ranked[0]]}")
            b.evaluate("(() => { const s = document.getElementById('decisionFilter'); s.value = 'all';"
                       " s.dispatchEvent(new Event('input')); })()")

            # End jumps to the last image; the list renders only the rows in view (5,000 images).
            b.key("End")
            last = b.evaluate("(() => { const r = document.querySelector('#spacer .row.sel'); return r && r.dataset.name; })()")
            expect(last == ranked[-1], f"End selected {last}, expected the last image {ranked[-1]}")
            rendered = b.evaluate("document.querySelectorAll('#spacer .row').length")
            expect(rendered <= 40, f"{rendered} rows in the DOM: the list should render only the rows in view")
            b.key("Home")

            b.click("#export")
            b.wait_event("Browser.downloadProgress", timeout=20, predicate=lambda p: p.get("state") == "completed")
            path = os.path.join(downloads, "review-decisions.csv")
            deadline = time.time() + 5
            while not os.path.exists(path) and time.time() < deadline:
                time.sleep(0.1)
            files = os.listdir(downloads)
            expect(os.path.exists(path), f"no review-decisions.csv downloaded (download folder holds {files})")
            with open(path, newline="") as f:
                text = f.read()
            rows = list(csv.DictReader(io.StringIO(text)))
            expect([r["name"] for r in rows] == ranked, "review-decisions.csv does not list every image in review.csv's order")
            got = {r["name"]: r["decision"] for r in rows}
            want = {n: "undecided" for n in ranked}
            want[ranked[0]] = "needs_correction"
            want[ranked[1]] = "accept"
            expect(got == want, f"review-decisions.csv decisions {got} != {want}")

            requests = [e["params"]["request"]["url"] for e in b.events if e.get("method") == "Network.requestWillBeSent"]
            outside = [u for u in requests if not (u.startswith("file://" + out + "/") or u.startswith(("blob:", "data:")))]
            expect(not outside, f"the page fetched something outside {out}: {outside[:3]}")
            return {"images": len(ranked), "rows_rendered": len(names), "requests": len(requests),
                    "decisions_head": text.splitlines()[:3]}
        finally:
            b.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", help="folder written by `refineseg annotate` (holds review.html)")
    ap.add_argument("--screenshot", help="write a PNG of the page here")
    ap.add_argument("--chromium", help="browser binary (default: chromium, chromium-browser or google-chrome on PATH)")
    args = ap.parse_args()
    binary = args.chromium or next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                                    if shutil.which(n)), None)
    if not binary:
        print("chromium not found (Debian: apt-get install chromium)", file=sys.stderr)
        sys.exit(2)
    try:
        result = run(args.out, args.screenshot, binary)
    except Check as e:
        print(f"review page check failed: {e}", file=sys.stderr)
        sys.exit(1)
    except (RuntimeError, TimeoutError, OSError) as e:
        print(f"review page check failed: could not drive chromium ({binary}): {e}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
