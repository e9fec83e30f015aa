import Foundation

/// The review page: HTML, CSS and script in one file, the data as JSON inside it.
///
/// Keys: ↓/j next, ↑/k previous, Home/End, a accept, c needs correction, u undecided,
/// e export, / search. Decisions are stored per page (a hash of its data) in local storage.
func reviewPageHTML(entries: [ReviewEntry], title: String) throws -> String {
    let data = try reviewPageData(entries)
    // FNV-1a of the data: a new annotate run (other images or predictions) starts with no decisions.
    var hash: UInt64 = 0xcbf29ce484222325
    for byte in data.utf8 { hash = (hash ^ UInt64(byte)) &* 0x100000001b3 }
    let escapedTitle = title.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
    return """
    <!DOCTYPE html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <meta name="generator" content="refineseg annotate">
    <title>\(escapedTitle)</title>
    <style>
    * { box-sizing: border-box; }
    body { margin: 0; font: 14px/1.35 system-ui, sans-serif; color: #1d1d1f; background: #f4f4f6; }
    header { display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: center; padding: 8px 12px;
             background: #fff; border-bottom: 1px solid #ccc; }
    header h1 { font-size: 16px; margin: 0 8px 0 0; }
    header label { display: flex; gap: 4px; align-items: center; }
    header input, header select, header button { font: inherit; }
    #counts { color: #555; }
    #export { padding: 3px 10px; background: #1f6feb; color: #fff; border: 0; border-radius: 4px; cursor: pointer; }
    main { display: flex; height: calc(100vh - 90px); }
    #list { flex: 0 0 560px; overflow-y: auto; position: relative; border-right: 1px solid #ccc; }
    #spacer { position: relative; }
    .row { position: absolute; left: 0; right: 0; height: 100px; display: flex; gap: 8px; align-items: center;
           padding: 4px 8px; border-bottom: 1px solid #ddd; background: #fff; cursor: pointer; }
    .row.sel { background: #dde9ff; outline: 2px solid #1f6feb; outline-offset: -2px; }
    .row.accept { box-shadow: inset 6px 0 #2da44e; }
    .row.needs_correction { box-shadow: inset 6px 0 #d1242f; }
    .rank { width: 44px; text-align: right; color: #555; font-variant-numeric: tabular-nums; }
    .thumb { width: 88px; height: 88px; object-fit: contain; background: #222; image-rendering: pixelated; }
    .info { flex: 1; min-width: 0; font-variant-numeric: tabular-nums; }
    .name { font-weight: 600; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
    .decisions { display: flex; flex-direction: column; gap: 4px; }
    .decisions button { font: inherit; font-size: 12px; padding: 2px 6px; border: 1px solid #999; border-radius: 4px;
                        background: #fff; cursor: pointer; }
    .decisions button.on[data-d=accept] { background: #2da44e; color: #fff; border-color: #2da44e; }
    .decisions button.on[data-d=needs_correction] { background: #d1242f; color: #fff; border-color: #d1242f; }
    #detail { flex: 1; overflow: auto; padding: 12px; }
    #detail .pair { display: flex; flex-wrap: wrap; gap: 12px; }
    #detail figure { margin: 0; }
    #detail img { max-width: min(48vw, 512px); min-width: 256px; image-rendering: pixelated; background: #222; }
    #detail figcaption { color: #555; font-size: 12px; }
    #help { color: #555; font-size: 12px; }
    #status { color: #2da44e; }
    .empty { padding: 16px; color: #555; }
    </style>
    </head>
    <body>
    <header>
      <h1>\(escapedTitle)</h1>
      <label>Name <input id="search" type="search" placeholder="filter (/)" size="14"></label>
      <label>Show <select id="decisionFilter">
        <option value="all">all</option><option value="undecided">undecided</option>
        <option value="accept">accepted</option><option value="needs_correction">needs correction</option>
      </select></label>
      <label>Entropy ≥ <input id="minEntropy" type="number" min="0" max="1" step="0.01" value="0" style="width:5em"></label>
      <label>Sort <select id="sort">
        <option value="entropy-desc">most uncertain first</option><option value="entropy-asc">most certain first</option>
        <option value="area-desc">largest lesion area</option><option value="area-asc">smallest lesion area</option>
        <option value="components-desc">most components</option><option value="name-asc">name</option>
      </select></label>
      <button id="export" title="e">Export review-decisions.csv</button>
      <span id="counts"></span> <span id="status"></span>
      <div id="help">Keys: ↓/j next · ↑/k previous · a accept · c needs correction · u undecided · e export · / search.
        Overlay: the image with the predicted mask outline in red. Probability: black 0 → white 1.</div>
    </header>
    <main>
      <div id="list" tabindex="0"><div id="spacer"></div></div>
      <section id="detail"></section>
    </main>
    <script id="review-data" type="application/json">\(data)</script>
    <script>
    "use strict";
    const ENTRIES = JSON.parse(document.getElementById("review-data").textContent);
    const STORE = "refineseg-review-\(String(hash, radix: 16))";
    const ROW = 100;
    let decisions = {};
    try { decisions = JSON.parse(localStorage.getItem(STORE) || "{}"); } catch (e) { decisions = {}; }
    let view = [];      // indices into ENTRIES, filtered and sorted
    let sel = 0;        // position in view
    const $ = id => document.getElementById(id);
    const list = $("list"), spacer = $("spacer"), detail = $("detail");
    const esc = s => String(s).replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\\"": "&quot;", "'": "&#39;"}[c]));
    const path = (folder, name, suffix) => folder + "/" + encodeURIComponent(name) + suffix;
    const fmtArea = e => e.lesionArea + " px (" + (100 * e.lesionArea / (e.width * e.height)).toFixed(1) + " %)";

    function save() { try { localStorage.setItem(STORE, JSON.stringify(decisions)); } catch (e) {} }

    function rebuild(keepName) {
      const q = $("search").value.trim().toLowerCase();
      const f = $("decisionFilter").value;
      const minE = parseFloat($("minEntropy").value) || 0;
      view = [];
      ENTRIES.forEach((e, i) => {
        const d = decisions[e.name] || "undecided";
        if (q && !e.name.toLowerCase().includes(q)) return;
        if (f !== "all" && d !== f) return;
        if (e.meanEntropy < minE) return;
        view.push(i);
      });
      const [key, dir] = $("sort").value.split("-");
      const field = {entropy: "meanEntropy", area: "lesionArea", components: "components", name: "name"}[key];
      const sign = dir === "asc" ? 1 : -1;
      view.sort((a, b) => {
        const x = ENTRIES[a][field] ?? -1, y = ENTRIES[b][field] ?? -1;
        return x < y ? -sign : x > y ? sign : ENTRIES[a].rank - ENTRIES[b].rank;
      });
      const at = keepName ? view.findIndex(i => ENTRIES[i].name === keepName) : -1;
      sel = at >= 0 ? at : Math.min(sel, Math.max(0, view.length - 1));
      spacer.style.height = (view.length * ROW) + "px";
      render(); showDetail(); counts();
    }

    function counts() {
      let a = 0, c = 0;
      for (const e of ENTRIES) { const d = decisions[e.name]; if (d === "accept") a++; else if (d === "needs_correction") c++; }
      $("counts").textContent = ENTRIES.length + " images · " + a + " accepted · " + c + " need correction · "
        + (ENTRIES.length - a - c) + " undecided · showing " + view.length;
    }

    function render() {
      const first = Math.max(0, Math.floor(list.scrollTop / ROW) - 4);
      const last = Math.min(view.length, Math.ceil((list.scrollTop + list.clientHeight) / ROW) + 4);
      let html = "";
      for (let p = first; p < last; p++) {
        const e = ENTRIES[view[p]], d = decisions[e.name] || "";
        const thumbs = e.hasThumbnails
          ? '<img class="thumb" loading="lazy" alt="overlay" src="' + esc(path("thumbnails", e.name, ".overlay.png")) + '">'
          + '<img class="thumb" loading="lazy" alt="probability" src="' + esc(path("thumbnails", e.name, ".probability.png")) + '">'
          : "";
        html += '<div class="row ' + (p === sel ? "sel " : "") + d + '" style="top:' + (p * ROW) + 'px" data-p="' + p
          + '" data-name="' + esc(e.name) + '"><div class="rank">' + e.rank + '</div>' + thumbs
          + '<div class="info"><div class="name" title="' + esc(e.name) + '">' + esc(e.name) + '</div>'
          + 'entropy ' + e.meanEntropy.toFixed(4) + ' bits<br>area ' + fmtArea(e)
          + '<br>components ' + (e.components ?? "–") + '</div><div class="decisions">'
          + '<button data-d="accept" class="' + (d === "accept" ? "on" : "") + '">Accept</button>'
          + '<button data-d="needs_correction" class="' + (d === "needs_correction" ? "on" : "") + '">Needs correction</button>'
          + '</div></div>';
      }
      spacer.innerHTML = html || '<div class="empty">No image matches the filters.</div>';
    }

    function showDetail() {
      if (!view.length) { detail.innerHTML = ""; return; }
      const e = ENTRIES[view[sel]], d = decisions[e.name] || "undecided";
      detail.innerHTML = '<h2>' + esc(e.name) + '</h2><p>rank ' + e.rank + ' of ' + ENTRIES.length + ' · '
        + e.width + '×' + e.height + ' · mean entropy ' + e.meanEntropy.toFixed(4) + ' bits · lesion area ' + fmtArea(e)
        + ' · ' + (e.components ?? "–") + ' component(s) · decision: <b id="detailDecision">' + d.replace("_", " ") + '</b></p>'
        + (e.hasThumbnails
          ? '<div class="pair"><figure><img alt="overlay" src="' + esc(path("overlays", e.name, ".png"))
            + '"><figcaption>overlay (mask outline in red)</figcaption></figure>'
            + '<figure><img alt="probability" src="' + esc(path("probabilities", e.name, ".png"))
            + '"><figcaption>probability (black 0 → white 1)</figcaption></figure></div>'
          : '<p>No 2-D preview (a volume): open masks/ and probabilities/ of this name in a viewer.</p>');
    }

    function select(p) {
      if (!view.length) return;
      sel = Math.max(0, Math.min(view.length - 1, p));
      const top = sel * ROW;
      if (top < list.scrollTop) list.scrollTop = top;
      else if (top + ROW > list.scrollTop + list.clientHeight) list.scrollTop = top + ROW - list.clientHeight;
      render(); showDetail();
    }

    function decide(p, d) {
      if (p < 0 || p >= view.length) return;
      const name = ENTRIES[view[p]].name;
      if (d === "undecided" || decisions[name] === d) delete decisions[name]; else decisions[name] = d;
      save();
      const f = $("decisionFilter").value;
      if (f !== "all") rebuild(name); else { render(); showDetail(); counts(); }
    }

    function csvField(s) { return /[",\\n\\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s; }

    function exportCSV() {
      let csv = "rank,name,decision,mean_entropy_bits,lesion_area_px,components\\n";
      for (const e of ENTRIES) {
        csv += e.rank + "," + csvField(e.name) + "," + (decisions[e.name] || "undecided") + ","
          + e.meanEntropy.toFixed(6) + "," + e.lesionArea + "," + (e.components ?? "") + "\\n";
      }
      const a = document.createElement("a");
      a.href = URL.createObjectURL(new Blob([csv], {type: "text/csv"}));
      a.download = "review-decisions.csv";
      document.body.appendChild(a); a.click(); a.remove();
      setTimeout(() => URL.revokeObjectURL(a.href), 10000);
      $("status").textContent = "exported review-decisions.csv";
    }

    list.addEventListener("scroll", () => render());
    window.addEventListener("resize", () => render());
    spacer.addEventListener("click", ev => {
      const row = ev.target.closest(".row");
      if (!row) return;
      const p = +row.dataset.p;
      const button = ev.target.closest("button");
      sel = p;
      if (button) decide(p, button.dataset.d); else { render(); showDetail(); }
      list.focus();
    });
    for (const id of ["search", "decisionFilter", "minEntropy", "sort"]) {
      $(id).addEventListener("input", () => rebuild(view.length ? ENTRIES[view[sel]].name : null));
    }
    $("export").addEventListener("click", exportCSV);
    document.addEventListener("keydown", ev => {
      const typing = ev.target.matches("input, select");
      if (typing) { if (ev.key === "Escape" || ev.key === "Enter") { ev.target.blur(); list.focus(); } return; }
      if (ev.ctrlKey || ev.metaKey || ev.altKey) return;
      const page = Math.max(1, Math.floor(list.clientHeight / ROW));
      const actions = {
        ArrowDown: () => select(sel + 1), j: () => select(sel + 1), ArrowUp: () => select(sel - 1), k: () => select(sel - 1),
        PageDown: () => select(sel + page), PageUp: () => select(sel - page), Home: () => select(0), End: () => select(view.length - 1),
        a: () => decide(sel, "accept"), c: () => decide(sel, "needs_correction"), u: () => decide(sel, "undecided"),
        e: exportCSV, "/": () => $("search").focus(),
      };
      const act = actions[ev.key];
      if (act) { ev.preventDefault(); act(); }
    });
    rebuild(null);
    list.focus();
    </script>
    </body>
    </html>

    """
}
