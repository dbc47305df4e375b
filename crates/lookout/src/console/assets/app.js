// lookout console: progressive enhancement only. Every page works without this file; it adds
// local times, infinite scroll, live tail and live task pages. Text from the server is only
// ever put into the page with textContent (never innerHTML), so log lines stay inert.
"use strict";

(function () {
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  const localTime = (ms) => {
    const d = new Date(ms);
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
  };
  const offsetMinutes = -new Date().getTimezoneOffset();

  function localizeTimes(root) {
    root.querySelectorAll("time[data-ms]").forEach((t) => {
      if (!t.dataset.local) {
        t.textContent = localTime(Number(t.dataset.ms));
        t.title = t.getAttribute("datetime");
        t.dataset.local = "1";
      }
    });
  }

  function showZone() {
    const tz = document.getElementById("tz");
    if (!tz) return;
    const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || "local time";
    const sign = offsetMinutes >= 0 ? "+" : "-";
    const off = Math.abs(offsetMinutes);
    tz.textContent = `${zone} (UTC${sign}${pad(Math.floor(off / 60))}:${pad(off % 60)})`;
    document.querySelectorAll("input[data-tzo]").forEach((i) => (i.value = String(offsetMinutes)));
  }

  // ---- one event line, built like the server's markup
  function eventElement(ev, group, showStream) {
    const div = document.createElement("div");
    div.className = "event";
    div.id = "e-" + ev.id;
    div.dataset.ts = ev.ts;
    const link = document.createElement("a");
    link.className = "permalink";
    link.textContent = "#";
    link.title = "Permalink to this event";
    const q = new URLSearchParams({ group, stream: ev.stream, at: String(ev.ts) });
    link.href = "/console/logs/stream?" + q.toString() + "#e-" + ev.id;
    div.appendChild(link);
    const ts = document.createElement("span");
    ts.className = "ts";
    const t = document.createElement("time");
    t.dataset.ms = ev.ts;
    t.setAttribute("datetime", new Date(ev.ts).toISOString());
    ts.appendChild(t);
    div.appendChild(ts);
    if (showStream) {
      const s = document.createElement("a");
      s.className = "stream";
      s.textContent = ev.stream;
      s.href = "/console/logs/stream?" + new URLSearchParams({ group, stream: ev.stream }).toString();
      div.appendChild(s);
    }
    const msg = document.createElement("span");
    msg.className = "msg";
    msg.textContent = ev.message;
    div.appendChild(msg);
    const trimmed = ev.message.trim();
    if (trimmed.startsWith("{") || trimmed.startsWith("[")) {
      try {
        const pretty = JSON.stringify(JSON.parse(trimmed), null, 2);
        const det = document.createElement("details");
        det.className = "json";
        const sum = document.createElement("summary");
        sum.textContent = "JSON";
        const pre = document.createElement("pre");
        pre.textContent = pretty;
        det.append(sum, pre);
        div.appendChild(det);
      } catch (_) { /* not JSON after all */ }
    }
    localizeTimes(div);
    return div;
  }

  const nearBottom = (el) => el.scrollHeight - el.scrollTop - el.clientHeight < 40;

  // ---- a poller of /console/api/tail for one group (and maybe one stream)
  function tailer({ group, stream, pattern, since, onEvents, onError }) {
    const seen = new Set();
    let cursor = Number(since) || Date.now() - 60000;
    let timer = null;
    let running = false;
    let inFlight = false;
    async function poll() {
      if (!running || inFlight) return;
      inFlight = true;
      try {
        const q = new URLSearchParams({ group, since: String(cursor) });
        if (stream) q.set("stream", stream);
        if (pattern.value) q.set("pattern", pattern.value);
        const resp = await fetch("/console/api/tail?" + q.toString(), { cache: "no-store" });
        const body = await resp.json();
        if (!resp.ok) {
          onError(body.error || resp.statusText, resp.status);
        } else {
          const fresh = body.events.filter((e) => !seen.has(e.id));
          let newest = cursor;
          for (const e of body.events) newest = Math.max(newest, e.ts);
          if (newest > cursor) {
            // Ids older than the new cursor can no longer come back.
            for (const e of body.events) if (e.ts < newest) seen.delete(e.id);
            cursor = newest;
          }
          for (const e of fresh) if (e.ts >= cursor) seen.add(e.id);
          if (fresh.length) onEvents(fresh);
          onError(null);
        }
      } catch (err) {
        onError(String(err));
      } finally {
        inFlight = false;
        if (running) timer = setTimeout(poll, 700);
      }
    }
    return {
      start() { if (!running) { running = true; poll(); } },
      stop() { running = false; clearTimeout(timer); },
      restart() { clearTimeout(timer); running = true; inFlight = false; poll(); },
      get running() { return running; },
    };
  }

  // ---- live tail page
  function setupTail() {
    const root = document.getElementById("tail");
    if (!root) return;
    const lines = document.getElementById("tail-lines");
    const status = document.getElementById("tail-status");
    const pause = document.getElementById("tail-pause");
    const filter = document.getElementById("tail-filter");
    const pattern = { value: filter.value };
    const setStatus = (text, cls) => { status.textContent = text; status.className = cls; };
    const t = tailer({
      group: root.dataset.group,
      stream: root.dataset.stream,
      pattern,
      since: root.dataset.since,
      onEvents(events) {
        const stick = nearBottom(lines);
        for (const e of events) lines.appendChild(eventElement(e, root.dataset.group, !root.dataset.stream));
        while (lines.childElementCount > 5000) lines.firstElementChild.remove();
        if (stick) lines.scrollTop = lines.scrollHeight;
      },
      onError(err) {
        if (err) setStatus(err, "error");
        else if (t.running) setStatus("live", "live");
      },
    });
    pause.addEventListener("click", () => {
      if (t.running) {
        t.stop();
        pause.textContent = "Resume";
        setStatus("paused", "paused");
      } else {
        pause.textContent = "Pause";
        setStatus("live", "live");
        t.start();
      }
    });
    filter.addEventListener("keydown", (ev) => {
      if (ev.key !== "Enter") return;
      ev.preventDefault();
      pattern.value = filter.value.trim();
      const url = new URL(location.href);
      if (pattern.value) url.searchParams.set("pattern", pattern.value); else url.searchParams.delete("pattern");
      history.replaceState(null, "", url);
      pause.textContent = "Pause";
      t.restart();
    });
    document.getElementById("tail-clear").addEventListener("click", () => lines.replaceChildren());
    setStatus("connecting…", "");
    t.start();
  }

  // ---- infinite scroll on stream and search pages
  function setupScroll() {
    const list = document.getElementById("events");
    if (!list || !list.dataset.scroll) return;
    let busy = false;
    async function load(linkId, prepend) {
      const link = document.getElementById(linkId);
      if (!link || busy) return;
      busy = true;
      try {
        const resp = await fetch(link.href, { cache: "no-store" });
        const doc = new DOMParser().parseFromString(await resp.text(), "text/html");
        const more = doc.getElementById("events");
        const nextLink = doc.getElementById(linkId);
        const items = more ? Array.from(more.children).filter((e) => !document.getElementById(e.id)) : [];
        if (items.length) {
          const before = document.documentElement.scrollHeight;
          items.forEach((e) => document.adoptNode(e));
          if (prepend) {
            list.prepend(...items);
            window.scrollBy(0, document.documentElement.scrollHeight - before);
          } else {
            list.append(...items);
          }
          localizeTimes(list);
        }
        if (nextLink && items.length) link.href = nextLink.href;
        else if (prepend || list.dataset.scroll === "down") link.remove();
        else link.dataset.end = "1"; // at the newest for now; a later scroll asks again
      } finally {
        busy = false;
      }
    }
    let lastY = window.scrollY;
    window.addEventListener("scroll", () => {
      const y = window.scrollY;
      const goingUp = y < lastY;
      lastY = y;
      if (goingUp && y < 150 && list.dataset.scroll === "both") load("older", true);
      if (!goingUp && window.innerHeight + y > document.documentElement.scrollHeight - 150) load("newer", false);
    }, { passive: true });
    // The newest page of a stream opens at its bottom, like a terminal.
    if (list.dataset.scroll === "both" && !location.hash && !new URLSearchParams(location.search).get("token")) {
      window.scrollTo(0, document.documentElement.scrollHeight);
      lastY = window.scrollY;
    }
  }

  // ---- a running task's page: its logs and status, live
  function setupTask() {
    const root = document.getElementById("task");
    if (!root || root.dataset.status === "STOPPED") return;
    const tails = [];
    root.querySelectorAll("section.task-logs[data-live][data-group]").forEach((sec) => {
      let events = sec.querySelector(".events");
      const t = tailer({
        group: sec.dataset.group,
        stream: sec.dataset.stream,
        pattern: { value: "" },
        since: sec.dataset.since || "0",
        onEvents(list) {
          if (!events) {
            events = document.createElement("div");
            events.className = "events";
            sec.querySelectorAll("p.empty").forEach((p) => p.remove());
            sec.appendChild(events);
          }
          const stick = nearBottom(events);
          for (const e of list) if (!document.getElementById("e-" + e.id)) events.appendChild(eventElement(e, sec.dataset.group, false));
          if (stick) events.scrollTop = events.scrollHeight;
          const none = sec.querySelector(".none-yet");
          if (none) none.remove();
        },
        onError() { /* the stream may not exist yet */ },
      });
      tails.push(t);
      t.start();
    });
    const id = root.dataset.taskId;
    async function pollStatus() {
      try {
        const resp = await fetch("/console/api/tasks/" + encodeURIComponent(id), { cache: "no-store" });
        if (resp.ok) {
          const body = await resp.json();
          root.querySelectorAll(".meta .status").forEach((s) => (s.textContent = body.lastStatus));
          for (const c of body.containers) {
            const row = root.querySelector(`tr.container[data-name="${CSS.escape(c.name)}"]`);
            if (row) {
              row.querySelector(".status").textContent = c.lastStatus;
              row.querySelector(".exit-code").textContent = c.exitCode == null ? "" : String(c.exitCode);
            }
          }
          if (body.lastStatus === "STOPPED") {
            // One more round of logs, then the final page.
            setTimeout(() => location.reload(), 1200);
            return;
          }
        }
      } catch (_) { /* try again */ }
      setTimeout(pollStatus, 1000);
    }
    pollStatus();
  }

  document.addEventListener("DOMContentLoaded", () => {
    showZone();
    localizeTimes(document);
    setupTail();
    setupScroll();
    setupTask();
  });
})();
