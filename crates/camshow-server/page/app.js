// Camshow Deepfaker's browser page: plain JavaScript, no build step, nothing
// loaded from other sites. It only calls the server's /v1 API.
'use strict';

const $ = (id) => document.getElementById(id);

// A server off loopback needs its token: open the page as /#token=TOKEN once.
const token = (() => {
  const m = location.hash.match(/token=([0-9a-f]+)/);
  if (m) {
    sessionStorage.setItem('camshow-token', m[1]);
    history.replaceState(null, '', location.pathname);
  }
  return sessionStorage.getItem('camshow-token');
})();

function withToken(url) {
  if (!token) return url;
  return url + (url.includes('?') ? '&' : '?') + 'token=' + encodeURIComponent(token);
}

async function api(method, path, body) {
  const headers = {};
  if (token) headers.Authorization = 'Bearer ' + token;
  if (body && !(body instanceof FormData)) {
    headers['Content-Type'] = 'application/json';
    body = JSON.stringify(body);
  }
  const r = await fetch(path, { method, headers, body });
  const type = r.headers.get('Content-Type') || '';
  const data = type.includes('json') ? await r.json() : null;
  if (!r.ok) {
    const e = (data && data.error) || { message: r.status + ' ' + r.statusText };
    throw new Error(e.message);
  }
  return data;
}

function say(id, text, error) {
  const el = $(id);
  el.textContent = text;
  el.classList.toggle('error', !!error);
}

// What a test (or a curious user) can read from the console.
const camshow = (window.camshow = {
  sourceId: null,
  patch: {},
  stats: { sent: 0, received: 0, framesSwapped: 0, lastMeta: null, errors: [] },
});

// ---- health ---------------------------------------------------------------
api('GET', '/v1/health').then((h) => {
  $('health').textContent = h.ok ? 'engine ready' : 'engine not ready: see /v1/health';
  $('health').classList.add(h.ok ? 'ok' : 'bad');
}).catch((e) => { $('health').textContent = e.message; $('health').classList.add('bad'); });

// ---- source ---------------------------------------------------------------
$('source-upload').onclick = async () => {
  const files = $('source-file').files;
  if (!files.length) return say('source-status', 'choose one or more photos of one face first', true);
  const form = new FormData();
  for (const f of files) form.append('photo', f, f.name);
  say('source-status', 'checking and analysing…');
  try {
    const s = await api('POST', '/v1/sources', form);
    camshow.sourceId = s.id;
    $('source-faces').replaceChildren(...s.faces.map((f) => {
      const img = document.createElement('img');
      img.src = withToken(f.thumbnail);
      img.alt = 'face';
      return img;
    }));
    say('source-status', `source ready: ${s.faces.length} face(s) in ${s.photos} photo(s)`);
    $('live-start').disabled = false;
    $('job-start').disabled = false;
  } catch (e) {
    say('source-status', e.message, true);
  }
};

// ---- settings form, generated from /v1/capabilities -------------------------
async function buildSettings() {
  const [caps, current] = await Promise.all([api('GET', '/v1/capabilities'), api('GET', '/v1/settings')]);
  const form = $('settings-form');
  const chain = current.settings.processors || [];
  const shown = [];
  for (const o of caps.options) {
    if (o.key.startsWith('engine.') && !o.processor) shown.push([o.key, o]);
    if (o.processor) {
      chain.forEach((p, i) => {
        if (p.type === o.processor) shown.push([o.key.replace('processors[]', `processors[${i}]`), o]);
      });
    }
  }
  const value = (key) => key.split(/[.[\]]+/).filter(Boolean).reduce((v, k) => (v == null ? v : v[k]), current.settings);
  for (const [key, o] of shown) {
    if (!['boolean', 'number', 'integer', 'string'].includes(o.type)) continue;
    const label = document.createElement('label');
    label.textContent = key;
    label.title = o.description;
    let input;
    const now = value(key);
    if (o.choices && o.choices.length) {
      input = document.createElement('select');
      for (const c of o.choices) {
        const opt = document.createElement('option');
        opt.value = JSON.stringify(c);
        opt.textContent = c === null ? '(none)' : String(c);
        opt.selected = JSON.stringify(c) === JSON.stringify(now);
        input.append(opt);
      }
      input.onchange = () => change(key, JSON.parse(input.value));
    } else if (o.type === 'boolean') {
      input = document.createElement('input');
      input.type = 'checkbox';
      input.checked = !!now;
      input.onchange = () => change(key, input.checked);
    } else if (o.type === 'number' || o.type === 'integer') {
      input = document.createElement('input');
      input.type = 'number';
      if (o.minimum != null) input.min = o.minimum;
      if (o.maximum != null) input.max = o.maximum;
      input.step = o.type === 'integer' ? 1 : 'any';
      input.value = now == null ? '' : now;
      input.onchange = () => change(key, input.value === '' ? null : Number(input.value));
    } else {
      input = document.createElement('input');
      input.value = now == null ? '' : now;
      input.onchange = () => change(key, input.value === '' ? null : input.value);
    }
    input.id = 'opt-' + key;
    label.htmlFor = input.id;
    form.append(label, input);
  }
}

function change(key, v) {
  camshow.patch[key] = v;
  if (live.ws && live.ws.readyState === WebSocket.OPEN) {
    live.ws.send(JSON.stringify({ type: 'settings', settings: { [key]: v } }));
  }
}

buildSettings().catch((e) => say('live-status', 'settings: ' + e.message, true));

// ---- live -----------------------------------------------------------------
const live = { ws: null, stream: null, timer: null, sentAt: new Map(), lastUrl: null, rtts: [], arrivals: [] };

function pct(a, p) {
  if (!a.length) return 0;
  const s = [...a].sort((x, y) => x - y);
  return s[Math.min(s.length - 1, Math.round((s.length - 1) * p))];
}

$('live-start').onclick = async () => {
  say('live-status', 'starting the camera…');
  try {
    live.stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  } catch (e) {
    return say('live-status', 'no camera: ' + e.message, true);
  }
  $('camera').srcObject = live.stream;
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const url = withToken(`${proto}//${location.host}/v1/live?source=${camshow.sourceId}&fps=15&mirror=${$('live-mirror').checked}`);
  const ws = new WebSocket(url);
  ws.binaryType = 'blob';
  live.ws = ws;
  let meta = null;
  ws.onopen = () => {
    say('live-status', 'live');
    $('live-stop').disabled = false;
    $('live-start').disabled = true;
    if (Object.keys(camshow.patch).length) ws.send(JSON.stringify({ type: 'settings', settings: camshow.patch }));
    live.timer = setInterval(sendFrame, 1000 / 15);
  };
  ws.onmessage = (ev) => {
    if (typeof ev.data === 'string') {
      const m = JSON.parse(ev.data);
      if (m.type === 'frame') meta = m;
      else if (m.type === 'error') { camshow.stats.errors.push(m); say('live-status', m.message, true); }
      else if (m.type === 'end') say('live-status', 'the session ended');
      return;
    }
    // A swapped frame (JPEG with its provenance label).
    const url = URL.createObjectURL(ev.data);
    $('swapped').src = url;
    if (live.lastUrl) URL.revokeObjectURL(live.lastUrl);
    live.lastUrl = url;
    camshow.stats.received += 1;
    const now = performance.now();
    live.arrivals.push(now);
    if (live.arrivals.length > 30) live.arrivals.shift();
    if (meta) {
      camshow.stats.lastMeta = meta;
      if (meta.faces_swapped > 0) camshow.stats.framesSwapped += 1;
      const sent = live.sentAt.get(meta.input);
      if (sent !== undefined) {
        live.rtts.push(now - sent);
        if (live.rtts.length > 100) live.rtts.shift();
      }
      for (const k of live.sentAt.keys()) if (k <= meta.input) live.sentAt.delete(k);
      live.answered = meta.input;
    }
    const a = live.arrivals;
    const fps = a.length > 1 ? ((a.length - 1) * 1000) / (a[a.length - 1] - a[0]) : 0;
    $('live-stats').textContent = `${fps.toFixed(1)} fps · round trip p50 ${pct(live.rtts, 0.5).toFixed(0)} ms, p95 ${pct(live.rtts, 0.95).toFixed(0)} ms · server ${meta ? meta.latency_ms.toFixed(0) : '?'} ms` + (meta && meta.safety_hold ? ' · held by the safety gate' : '');
  };
  ws.onclose = (ev) => {
    stopLive();
    if (ev.code !== 1000 && ev.code !== 1005) say('live-status', `disconnected (${ev.code} ${ev.reason})`, true);
  };
};

// At most two frames in flight: the server answers the newest and drops the rest.
function sendFrame() {
  const ws = live.ws;
  const video = $('camera');
  if (!ws || ws.readyState !== WebSocket.OPEN || !video.videoWidth) return;
  const inFlight = camshow.stats.sent - (live.answered || 0);
  if (inFlight >= 2 && performance.now() - (live.lastSend || 0) < 1000) return;
  const canvas = $('grab');
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext('2d').drawImage(video, 0, 0);
  live.lastSend = performance.now();
  canvas.toBlob((blob) => {
    if (!blob || ws.readyState !== WebSocket.OPEN) return;
    camshow.stats.sent += 1;
    live.sentAt.set(camshow.stats.sent, performance.now());
    ws.send(blob);
  }, 'image/jpeg', 0.85);
}

function stopLive() {
  clearInterval(live.timer);
  live.timer = null;
  if (live.ws && live.ws.readyState === WebSocket.OPEN) live.ws.close(1000);
  live.ws = null;
  if (live.stream) live.stream.getTracks().forEach((t) => t.stop());
  live.stream = null;
  $('live-stop').disabled = true;
  $('live-start').disabled = !camshow.sourceId;
}

$('live-stop').onclick = () => { stopLive(); say('live-status', 'stopped'); };
$('live-mirror').onchange = () => {
  if (live.ws && live.ws.readyState === WebSocket.OPEN) live.ws.send(JSON.stringify({ type: 'mirror', on: $('live-mirror').checked }));
};

// ---- jobs -----------------------------------------------------------------
let job = null;

$('job-start').onclick = async () => {
  const file = $('job-file').files[0];
  if (!file) return say('job-status', 'choose a video or picture first', true);
  const form = new FormData();
  form.append('source_id', camshow.sourceId);
  form.append('settings', JSON.stringify(camshow.patch));
  form.append('target', file, file.name);
  $('job-result').hidden = true;
  say('job-status', 'uploading…');
  try {
    const j = await api('POST', '/v1/jobs', form);
    job = j.id;
    $('job-cancel').disabled = false;
    follow(j.id);
  } catch (e) {
    say('job-status', e.message, true);
  }
};

function follow(id) {
  const events = new EventSource(withToken(`/v1/jobs/${id}/events`));
  const show = (ev) => {
    const v = JSON.parse(ev.data);
    const p = v.progress || {};
    $('job-progress').max = p.total || 1;
    $('job-progress').value = p.done || 0;
    $('job-text').textContent = `${v.state}` + (v.fps ? ` · ${v.fps.toFixed(1)} fps` : '') + (v.eta_seconds != null ? ` · ${Math.ceil(v.eta_seconds)} s left` : '');
    if (v.state === 'done') {
      $('job-result').href = withToken(v.result);
      $('job-result').hidden = false;
      say('job-status', 'done: the result is labelled AI-generated');
    } else if (v.state === 'failed') {
      say('job-status', v.error ? v.error.message : 'failed', true);
    } else if (v.state === 'cancelled') {
      say('job-status', 'cancelled');
    }
  };
  events.addEventListener('status', show);
  events.addEventListener('end', (ev) => { show(ev); events.close(); $('job-cancel').disabled = true; });
  events.onerror = () => events.close();
}

$('job-cancel').onclick = async () => {
  if (!job) return;
  try { await api('DELETE', `/v1/jobs/${job}`); } catch (e) { say('job-status', e.message, true); }
};
