/* The check-in page on a phone with a poor connection (SPEC C4, issue 6.2; docs/checkins.md).
 *
 * - Every photo uploads as soon as it is chosen, into an upload slot, in chunks; after a dropped
 *   connection the slot says how many bytes arrived and the upload resumes from there.
 * - The draft (what was typed, the chosen files' upload ids) lives in localStorage and the files
 *   themselves in IndexedDB until they are uploaded: a reload or a dead network loses nothing.
 * - The submit carries a client key made once per check-in: resending it after a timeout creates
 *   nothing twice. Offline, the submit waits and goes out when the phone is back online.
 */
(function () {
  "use strict";
  var form = document.getElementById("checkin-form");
  if (!form || !window.fetch) return; // without fetch the form posts the files itself
  var $ = function (sel) { return form.querySelector(sel); };
  var ds = form.dataset;
  var CHUNK = parseInt(ds.chunk, 10) || 262144;
  var DRAFT_KEY = "salesloop.checkin.draft." + ds.user;
  var FIELDS = ["lead", "action_type", "result_type", "result_text", "location_text", "latitude", "longitude", "to_stage", "move_reason"];
  var csrf = ($("input[name=csrfmiddlewaretoken]") || {}).value || "";
  var statusLine = $(".checkin__status");
  var list = $(".evidence-list");
  var draft = null;
  var sending = false;

  function newKey() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID().replace(/-/g, "");
    return (Date.now().toString(36) + Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2)).slice(0, 32);
  }
  function save() { try { localStorage.setItem(DRAFT_KEY, JSON.stringify(draft)); } catch (e) { /* full: the page still works */ } }
  function say(text, error) {
    statusLine.hidden = !text;
    statusLine.textContent = text || "";
    statusLine.classList.toggle("notice--error", !!error);
  }
  function sleep(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }

  // ---- the files, kept in IndexedDB until uploaded ---------------------------------------------
  var dbPromise = null;
  function db() {
    if (!window.indexedDB) return Promise.reject(new Error("no IndexedDB"));
    if (!dbPromise) {
      dbPromise = new Promise(function (resolve, reject) {
        var open = indexedDB.open("salesloop-checkin", 1);
        open.onupgradeneeded = function () { open.result.createObjectStore("files"); };
        open.onsuccess = function () { resolve(open.result); };
        open.onerror = function () { reject(open.error); };
      });
    }
    return dbPromise;
  }
  function idb(mode, action) {
    return db().then(function (d) {
      return new Promise(function (resolve, reject) {
        var req = action(d.transaction("files", mode).objectStore("files"));
        req.onsuccess = function () { resolve(req.result); };
        req.onerror = function () { reject(req.error); };
      });
    });
  }
  function filePut(key, blob) { return idb("readwrite", function (s) { return s.put(blob, key); }).catch(function () {}); }
  function fileGet(key) { return idb("readonly", function (s) { return s.get(key); }).catch(function () { return null; }); }
  function fileDrop(key) { return idb("readwrite", function (s) { return s.delete(key); }).catch(function () {}); }
  var blobs = {}; // this page's copies, in case IndexedDB is unavailable (private mode)

  // ---- the draft ------------------------------------------------------------------------------------
  function fieldValue(name) {
    var els = form.querySelectorAll("[name=" + name + "]");
    for (var i = 0; i < els.length; i++) {
      var el = els[i];
      if (el.type === "radio") { if (el.checked) return el.value; } else return el.value;
    }
    return "";
  }
  function setField(name, value) {
    var els = form.querySelectorAll("[name=" + name + "]");
    for (var i = 0; i < els.length; i++) {
      var el = els[i];
      if (el.type === "radio") el.checked = el.value === value; else if (value !== undefined) el.value = value;
    }
  }
  function capture() {
    if (draft.pending) return;
    FIELDS.forEach(function (name) { draft.fields[name] = fieldValue(name); });
    save();
  }

  function load() {
    var stored = null;
    try { stored = JSON.parse(localStorage.getItem(DRAFT_KEY) || "null"); } catch (e) { stored = null; }
    var pageLead = ds.pageLead || "";
    var serverErrors = form.querySelector(".field__error, .notice--error");
    if (stored && (stored.pending || !pageLead || stored.fields.lead === pageLead) && !serverErrors) {
      draft = stored;
      FIELDS.forEach(function (name) { if (name !== "lead" || !pageLead) setField(name, draft.fields[name]); });
      if (draft.pending) { lockForm(true); } else if (draft.uploads.length || draft.fields.result_text) say(ds.msgRestored);
    } else {
      draft = { client_key: $("input[name=client_key]").value || newKey(), fields: {}, uploads: [], pending: false };
      capture();
    }
    $("input[name=client_key]").value = draft.client_key;
    draft.uploads.forEach(function (entry) {
      // a reload stopped whatever was running: ask the slot how much arrived before sending more
      entry.running = false;
      entry.unsure = !!entry.id;
      render(entry);
      if (!entry.done && !entry.error) resume(entry);
    });
    if (draft.pending) send();
  }

  // ---- uploads ----------------------------------------------------------------------------------
  function render(entry) {
    var li = list.querySelector("[data-key='" + entry.key + "']");
    if (!li) {
      li = document.createElement("li");
      li.dataset.key = entry.key;
      li.innerHTML = "<span class='evidence-list__name'></span><button type='button' class='button button--small button--quiet'></button><progress max='1' value='0'></progress>";
      li.querySelector("button").textContent = ds.msgRemove;
      li.querySelector("button").addEventListener("click", function () { removeEntry(entry); });
      list.appendChild(li);
    }
    li.querySelector(".evidence-list__name").textContent = entry.name;
    var bar = li.querySelector("progress");
    bar.max = entry.size; bar.value = entry.received;
    li.dataset.state = entry.done ? "done" : entry.error ? "error" : "uploading";
    var err = li.querySelector(".evidence-list__error");
    if (entry.error && !err) { err = document.createElement("span"); err.className = "evidence-list__error"; li.appendChild(err); }
    if (err) err.textContent = entry.error || "";
  }
  function removeEntry(entry) {
    if (draft.pending) return;
    draft.uploads = draft.uploads.filter(function (e) { return e.key !== entry.key; });
    save(); fileDrop(entry.key);
    var li = list.querySelector("[data-key='" + entry.key + "']");
    if (li) li.remove();
  }

  function api(method, url, body, type) {
    var headers = { "X-CSRFToken": csrf, "Accept": "application/json" };
    if (type) headers["Content-Type"] = type;
    return fetch(url, { method: method, headers: headers, body: body, credentials: "same-origin" }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) { return { status: response.status, data: data }; });
    });
  }
  function firstMessage(data) {
    var detail = data && data.detail;
    if (Array.isArray(detail) && detail.length) return detail.map(function (d) { return d.msg; }).join("; ");
    return typeof detail === "string" ? detail : "";
  }

  async function resume(entry) {
    if (entry.running) return;
    entry.running = true;
    var blob = blobs[entry.key] || await fileGet(entry.key);
    if (!blob && entry.id) {
      // the file is gone from this phone (private mode, storage cleared): perhaps it all arrived
      try {
        var known = await api("GET", ds.uploads + "/" + entry.id);
        if (known.status === 200 && known.data.complete) { entry.received = known.data.received; entry.done = true; }
      } catch (e) { /* offline: decided below */ }
    }
    if (!blob && !entry.done) { entry.error = ds.msgAgain; entry.running = false; save(); render(entry); return; }
    var wait = 1000;
    while (!entry.done && !entry.error) {
      try {
        if (!entry.id) {
          var opened = await api("POST", ds.uploads, JSON.stringify({ client_key: entry.key, kind: entry.kind, file_name: entry.name, size: entry.size }), "application/json");
          if (opened.status >= 500) throw new Error("server");
          if (opened.status !== 200 && opened.status !== 201) { entry.error = firstMessage(opened.data) || ("HTTP " + opened.status); break; }
          entry.id = opened.data.id; entry.received = opened.data.received; entry.done = opened.data.complete;
        } else if (entry.unsure) {
          var asked = await api("GET", ds.uploads + "/" + entry.id);
          if (asked.status >= 500) throw new Error("server");
          if (asked.status !== 200) { entry.error = firstMessage(asked.data) || ("HTTP " + asked.status); break; }
          entry.received = asked.data.received; entry.done = asked.data.complete; entry.unsure = false;
        } else {
          var end = Math.min(entry.received + CHUNK, entry.size);
          var sent = await api("PUT", ds.uploads + "/" + entry.id + "?offset=" + entry.received, blob.slice(entry.received, end), "application/octet-stream");
          if (sent.status >= 500) throw new Error("server");
          if (sent.status === 422) {
            // an offset the server does not expect: ask it where to resume; anything else is final
            var problem = (sent.data.detail || [])[0] || {};
            if ((problem.loc || []).indexOf("offset") >= 0) { entry.unsure = true; continue; }
            entry.error = firstMessage(sent.data); break;
          }
          if (sent.status !== 200) { entry.error = firstMessage(sent.data) || ("HTTP " + sent.status); break; }
          entry.received = sent.data.received; entry.done = sent.data.complete;
        }
        wait = 1000;
      } catch (e) {
        // the network dropped: wait, then ask the slot how much arrived before sending more
        entry.unsure = !!entry.id;
        if (!draft.pending) say(ds.msgRetry);
        save(); render(entry);
        await sleep(wait);
        wait = Math.min(wait * 2, 15000);
      }
      save(); render(entry);
    }
    entry.running = false;
    if (entry.done) { fileDrop(entry.key); delete blobs[entry.key]; if (!draft.pending) say(""); }
    save(); render(entry);
  }

  form.querySelectorAll("input[type=file]").forEach(function (input) {
    input.addEventListener("change", function () {
      Array.prototype.forEach.call(input.files, function (file) {
        var entry = { key: newKey(), kind: input.dataset.kind, name: file.name || "photo.jpg", size: file.size, received: 0, id: null, done: false, error: "" };
        blobs[entry.key] = file;
        draft.uploads.push(entry);
        save(); render(entry);
        filePut(entry.key, file).then(function () { resume(entry); });
      });
      input.value = ""; // the files travel through the upload slots, not with the form
    });
  });

  // ---- the submit ---------------------------------------------------------------------------------
  function lockForm(locked) {
    form.querySelectorAll("input, select, textarea, button").forEach(function (el) {
      if (el.type !== "hidden") el.disabled = locked;
    });
  }
  // where an API error about a field is shown on this page
  var ERROR_PLACES = { reason: "to_stage", move_reason: "to_stage", status: "to_stage", latitude: "location_text", longitude: "location_text", client_key: "" };
  function clearErrors() { form.querySelectorAll(".js-error").forEach(function (el) { el.remove(); }); }
  function showErrors(data) {
    clearErrors();
    var problems = (data && data.detail) || [];
    if (!Array.isArray(problems)) problems = [{ loc: [], msg: String(problems) }];
    problems.forEach(function (p) {
      var field = (p.loc || [])[1] || "";
      // a gate's refusal names what the lead lacks (attachment.pain_points …): shown by the move
      var gate = data.explanation && data.explanation.kind === "stage_move_refused";
      field = gate ? "to_stage" : ERROR_PLACES[field] !== undefined ? ERROR_PLACES[field] : field;
      var where = field ? form.querySelector("[data-field='" + field + "']") : null;
      var el = document.createElement("p");
      el.className = "field__error js-error"; el.setAttribute("role", "alert"); el.textContent = p.msg;
      if (where) where.appendChild(el); else statusLine.after(el);
    });
  }

  async function send() {
    if (sending) return;
    sending = true;
    while (draft.pending) {
      var unfinished = draft.uploads.filter(function (e) { return !e.done && !e.error; });
      var broken = draft.uploads.filter(function (e) { return e.error; });
      if (broken.length) { draft.pending = false; save(); lockForm(false); say(broken[0].name + ": " + broken[0].error, true); break; }
      if (unfinished.length) { say(ds.msgWaiting); unfinished.forEach(resume); await sleep(700); continue; }
      say(ds.msgSending);
      var f = draft.fields;
      var body = {
        client_key: draft.client_key, lead_id: parseInt(f.lead, 10) || 0, action_type: f.action_type || "",
        result_type: f.result_type || "", result_text: f.result_text || "", location_text: f.location_text || "",
        evidence: draft.uploads.map(function (e) { return e.id; }), move_reason: f.move_reason || ""
      };
      if (f.latitude && f.longitude) { body.latitude = f.latitude; body.longitude = f.longitude; }
      if (f.to_stage) body.to_stage = f.to_stage;
      try {
        var answer = await api("POST", ds.api, JSON.stringify(body), "application/json");
        if (answer.status === 200 || answer.status === 201) {
          try { localStorage.removeItem(DRAFT_KEY); } catch (e) { /* nothing kept */ }
          draft.pending = false;
          window.location.assign(ds.dayUrl + "?date=" + answer.data.day + "&done=" + answer.data.id);
          break;
        }
        if (answer.status >= 500) throw new Error("server");
        // refused (422), or the lead is not ours (404/403): nothing was saved; edit and send again
        draft.pending = false; save(); lockForm(false);
        say(ds.msgRefused, true);
        showErrors(answer.data);
        break;
      } catch (e) {
        say(ds.msgOffline, true);
        await new Promise(function (resolve) {
          var done = function () { window.removeEventListener("online", done); resolve(); };
          window.addEventListener("online", done);
          setTimeout(done, 5000);
        });
      }
    }
    sending = false;
  }

  form.addEventListener("input", capture);
  form.addEventListener("change", capture);
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (draft.pending) return;
    capture();
    if (!form.reportValidity()) return;
    clearErrors();
    draft.pending = true; save(); lockForm(true);
    send();
  });
  window.addEventListener("online", function () { if (draft.pending) send(); });

  var locate = $(".checkin__locate");
  if (locate && navigator.geolocation) {
    locate.hidden = false;
    locate.addEventListener("click", function () {
      navigator.geolocation.getCurrentPosition(function (pos) {
        setField("latitude", pos.coords.latitude.toFixed(6));
        setField("longitude", pos.coords.longitude.toFixed(6));
        if (!fieldValue("location_text")) setField("location_text", pos.coords.latitude.toFixed(5) + ", " + pos.coords.longitude.toFixed(5));
        capture();
      }, function () { /* refused or unavailable: the text field stays */ }, { timeout: 10000, maximumAge: 60000 });
    });
  }
  load();
  // interactive: every handler is bound and the draft restored (bench/checkin_page.py waits for it)
  form.dataset.ready = String(Math.round(performance.now()));
})();
